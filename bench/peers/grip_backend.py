#!/usr/bin/python3
"""A GRIP origin for the Pushpin peer (bench/peers/pushpin.py): Python stdlib only.

Pushpin proxies every client request to this origin, which tells it what to do (GRIP):
  GET /sub/<topic> (SSE)       -> 200 text/event-stream with `Grip-Hold: stream` and
                                  `Grip-Channel: <topic>`: pushpin sends the head, holds the
                                  stream open and appends every `http-stream` item published to
                                  channel <topic>.
  POST /sub/<topic> (WebSocket-over-HTTP, the route's `over_http`: body of
  application/websocket-events)
                               -> OPEN: answer OPEN and a control message
                                  `c:{"type":"subscribe","channel":"<topic>"}` (with
                                  `Sec-WebSocket-Extensions: grip`), after which pushpin sends
                                  every `ws-message` item published to <topic> to the client.
                                  CLOSE: answer CLOSE (the client's code back); DISCONNECT or
                                  anything else: an empty event list.
  GET /healthz                 -> 200 "ok" (pushpin's readiness, through the proxy).
After subscribing, the origin is not on the data path: publications go from the publisher to
pushpin's control port and from pushpin to the clients.

  grip_backend.py [--port N]   (0: the kernel picks; the line "grip_backend listening on
                                127.0.0.1:PORT" on stdout says which)

One thread (asyncio): every answer is computed at once from the request alone, so thousands of
subscribers arriving together cost no thread each.
"""

import argparse
import asyncio
import json
import re
import sys

SUB_RE = re.compile(r"^/sub/([A-Za-z0-9_.:-]+)$")


def parse_events(body):
    """WebSocket-over-HTTP events: [(TYPE, content bytes)]. Each is `TYPE[ HEXLEN]\r\n` and,
    with a length, that many bytes of content followed by \r\n. Raises ValueError."""
    events, i = [], 0
    while i < len(body):
        end = body.index(b"\r\n", i)
        head = body[i:end].decode("ascii")
        i = end + 2
        name, _, size = head.partition(" ")
        content = b""
        if size:
            n = int(size, 16)
            content = body[i:i + n]
            if len(content) != n or body[i + n:i + n + 2] != b"\r\n":
                raise ValueError("truncated %s event" % name)
            i += n + 2
        events.append((name, content))
    return events


def event(name, content=None):
    if content is None:
        return name.encode("ascii") + b"\r\n"
    return b"%s %x\r\n%s\r\n" % (name.encode("ascii"), len(content), content)


def respond(status, headers, body):
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
    head = ["HTTP/1.1 %d %s" % (status, reason)]
    head += ["%s: %s" % kv for kv in headers]
    head.append("Content-Length: %d" % len(body))
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def answer(method, path, headers, body):
    """The response (bytes) to one request; see the module's docstring."""
    text = [("Content-Type", "text/plain")]
    if method == "GET" and path == "/healthz":
        return respond(200, text, b"ok")
    m = SUB_RE.match(path)
    if not m:
        return respond(404, text, b"not found\n")
    if method == "GET":
        return respond(200, [("Content-Type", "text/event-stream"), ("Grip-Hold", "stream"),
                             ("Grip-Channel", m.group(1)), ("Cache-Control", "no-cache")], b"")
    kind = headers.get("content-type", "").split(";")[0].strip()
    if method != "POST" or kind != "application/websocket-events":
        return respond(404, text, b"not found\n")
    try:
        events = parse_events(body)
    except (ValueError, UnicodeDecodeError) as e:
        return respond(400, text, str(e).encode() + b"\n")
    out = b""
    for name, content in events:
        if name == "OPEN":
            control = json.dumps({"type": "subscribe", "channel": m.group(1)})
            out += event("OPEN") + event("TEXT", b"c:" + control.encode())
        elif name == "CLOSE":
            out += event("CLOSE", content)
    return respond(200, [("Content-Type", "application/websocket-events"),
                         ("Sec-WebSocket-Extensions", "grip")], out)


async def serve_connection(reader, writer):
    """HTTP/1.1 keep-alive: requests with Content-Length bodies, answered in order."""
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                break
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3:
                break
            method, target = parts[0], parts[1]
            headers = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            body = await reader.readexactly(length) if length else b""
            writer.write(answer(method, target, headers, body))
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def run(port):
    server = await asyncio.start_server(serve_connection, "127.0.0.1", port, backlog=4096)
    print("grip_backend listening on 127.0.0.1:%d" % server.sockets[0].getsockname()[1],
          flush=True)
    async with server:
        await server.serve_forever()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    try:
        asyncio.run(run(args.port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
