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

Threads: one per connection (ThreadingHTTPServer); handlers share nothing.
"""

import argparse
import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive towards pushpin's zurl

    def log_message(self, *args):
        pass

    def _send(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/healthz":
            return self._send(200, [("Content-Type", "text/plain")], b"ok")
        m = SUB_RE.match(self.path)
        if not m:
            return self._send(404, [("Content-Type", "text/plain")], b"not found\n")
        self._send(200, [("Content-Type", "text/event-stream"), ("Grip-Hold", "stream"),
                         ("Grip-Channel", m.group(1)), ("Cache-Control", "no-cache")], b"")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        m = SUB_RE.match(self.path)
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if not m or kind != "application/websocket-events":
            return self._send(404, [("Content-Type", "text/plain")], b"not found\n")
        try:
            events = parse_events(body)
        except (ValueError, UnicodeDecodeError) as e:
            return self._send(400, [("Content-Type", "text/plain")], str(e).encode() + b"\n")
        out = b""
        for name, content in events:
            if name == "OPEN":
                control = json.dumps({"type": "subscribe", "channel": m.group(1)})
                out += event("OPEN") + event("TEXT", b"c:" + control.encode())
            elif name == "CLOSE":
                out += event("CLOSE", content)
        self._send(200, [("Content-Type", "application/websocket-events"),
                         ("Sec-WebSocket-Extensions", "grip")], out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 1024
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("grip_backend listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
