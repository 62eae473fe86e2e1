"""The wire log: with RINGCAST_WIRE_LOG=FILE, the Python test clients append every /ws message and
every topic, broker and ops SSE event they receive to FILE, one JSON object a line:

    {"kind": "ws", "route": "/ws", "message": {...the parsed text message...}}
    {"kind": "sse", "route": "/v1/topics/news/events", "message": {"event", "id"?, "data"}}

so `node tests/node/ringcast_schemas.mjs FILE` can check all of it against docs/schemas. Two taps:
the raw sockets of harness.connect() (every raw-socket HTTP, SSE and WebSocket client of the
suites: the tap follows the requests it sends and parses the responses it receives, whatever
the test reads of them) and the Python `websockets` library (its connect() gets a protocol class
whose recv() logs). Without the variable nothing is tapped. Thread-safety: one lock for the file;
a tapped socket belongs to one thread, like any socket.
"""

import codecs
import json
import os
import re
import socket
import struct
import threading
import urllib.parse

LOG = os.environ.get("RINGCAST_WIRE_LOG", "")
_lock = threading.Lock()

# SSE routes whose events have schemas; WebSocket routes likewise.
SSE_ROUTES = re.compile(r"^(/v1/topics/[^/?]+/events|/api/v1/stream|/dashboard/ops)$")
WS_ROUTES = ("/ws",)


def enabled():
    return bool(LOG)


def write(kind, route, message):
    line = json.dumps({"kind": kind, "route": route, "message": message}, ensure_ascii=False)
    data = (line + "\n").encode("utf-8")
    with _lock:  # one write() of a whole line with O_APPEND: lines never interleave
        fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)


# The log exists as soon as a tapped process starts, traffic or not: CTest's validator
# (wire_schemas.py) tells a complete run from a partial one by which tests left a log.
if LOG:
    os.close(os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))


def log_ws_text(route, text):
    try:
        message = json.loads(text)
    except ValueError:
        message = {"not_json": text[:1000]}  # fails every schema, as it should
    write("ws", route, message)


class SseParser:
    """Feeds body bytes; logs each complete event as {event, id?, data}."""

    def __init__(self, route):
        self.route = route
        self.text = ""
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a character may span reads

    def feed(self, data):
        self.text += self.decoder.decode(data).replace("\r\n", "\n")
        while "\n\n" in self.text:
            block, self.text = self.text.split("\n\n", 1)
            event, event_id, data = "message", None, None
            for line in block.split("\n"):
                if not line or line.startswith(":"):
                    continue
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "event":
                    event = value
                elif field == "id":
                    event_id = value
                elif field == "data":
                    data = value if data is None else data + "\n" + value
            if data is None:
                continue  # a comment (": ping") or a retry: line
            message = {"event": event}
            if event_id is not None:
                message["id"] = event_id
            try:
                message["data"] = json.loads(data)
            except ValueError:
                message["unparsable_data"] = data[:1000]
            write("sse", self.route, message)


class ResponseTap:
    """Follows the HTTP/1.1 responses (and a WebSocket after a 101) received on one socket."""

    def __init__(self):
        self.routes = []  # (method, path) of the requests sent, answered in order
        self.buf = b""
        self.state = "head"
        self.route = None
        self.sse = None
        self.left = 0        # body bytes left (content-length) or of the current chunk
        self.chunked = False
        self.ws_parts = None  # fragments of the WebSocket message being reassembled

    def sent(self, data):
        for m in re.finditer(rb"(GET|POST|PUT|DELETE|HEAD|OPTIONS|PATCH) (\S+) HTTP/1\.[01]\r\n", data):
            self.routes.append((m.group(1), urllib.parse.urlsplit(m.group(2).decode("latin-1")).path))

    def received(self, data):
        if self.state == "ignore":
            return
        self.buf += data
        try:
            while self.step():
                pass
        except (ValueError, IndexError, struct.error):
            self.state = "ignore"  # hostile or odd traffic the tests make on purpose: not ours to log

    def body(self, data):
        if self.sse:
            self.sse.feed(data)

    def step(self):
        if self.state == "head":
            if b"\r\n\r\n" not in self.buf:
                return False
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if status == 100:
                return True
            method, self.route = self.routes.pop(0) if self.routes else (None, None)
            if status == 101:
                self.state = "ws" if self.route in WS_ROUTES else "ignore"
                self.ws_parts = None
                return True
            sse = headers.get("content-type", "").startswith("text/event-stream")
            self.sse = SseParser(self.route) if sse and self.route and SSE_ROUTES.match(self.route) else None
            self.chunked = "chunked" in headers.get("transfer-encoding", "")
            if status in (204, 304) or method == b"HEAD":
                self.state = "head"
            elif self.chunked:
                self.state = "chunk-size"
            elif "content-length" in headers:
                self.left = int(headers["content-length"])
                self.state = "body" if self.left else "head"
            else:
                self.state = "until-close"
            return True
        if self.state == "until-close":
            self.body(self.buf)
            self.buf = b""
            return False
        if self.state == "body":
            n = min(self.left, len(self.buf))
            self.body(self.buf[:n])
            self.buf, self.left = self.buf[n:], self.left - n
            if self.left == 0:
                self.state = "head"
                return True
            return False
        if self.state == "chunk-size":
            if b"\r\n" not in self.buf:
                return False
            line, self.buf = self.buf.split(b"\r\n", 1)
            self.left = int(line.split(b";")[0], 16)
            self.state = "chunk" if self.left else "trailer"
            return True
        if self.state == "chunk":
            if len(self.buf) < self.left + 2:
                # Feed what is there, keep the rest of the chunk to come.
                n = min(self.left, len(self.buf))
                self.body(self.buf[:n])
                self.buf, self.left = self.buf[n:], self.left - n
                return False
            self.body(self.buf[:self.left])
            self.buf = self.buf[self.left + 2:]
            self.state = "chunk-size"
            return True
        if self.state == "trailer":
            if b"\r\n" not in self.buf:
                return False
            line, self.buf = self.buf.split(b"\r\n", 1)
            if not line:
                self.state = "head"
            return True
        if self.state == "ws":
            return self.ws_frame()
        return False

    def ws_frame(self):
        b = self.buf
        if len(b) < 2:
            return False
        fin, opcode, n, at = bool(b[0] & 0x80), b[0] & 0x0F, b[1] & 0x7F, 2
        if n == 126:
            if len(b) < 4:
                return False
            n, at = struct.unpack("!H", b[2:4])[0], 4
        elif n == 127:
            if len(b) < 10:
                return False
            n, at = struct.unpack("!Q", b[2:10])[0], 10
        if len(b) < at + n:
            return False
        payload, self.buf = b[at:at + n], b[at + n:]
        if opcode == 0x8:
            self.state = "ignore"
        elif opcode == 0x1:
            self.ws_parts = [payload]
        elif opcode == 0x0 and self.ws_parts is not None:
            self.ws_parts.append(payload)
        elif opcode == 0x2:
            self.ws_parts = None  # binary: the /ws protocol has none; a test sending one gets an error event
        if fin and opcode in (0x0, 0x1) and self.ws_parts is not None:
            log_ws_text(self.route, b"".join(self.ws_parts).decode("utf-8", "replace"))
            self.ws_parts = None
        return True


class TappedSocket(socket.socket):
    """A socket whose traffic feeds a ResponseTap."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tap = ResponseTap()

    def sendall(self, data, *args):
        self.tap.sent(bytes(data))
        return super().sendall(data, *args)

    def send(self, data, *args):
        n = super().send(data, *args)
        self.tap.sent(bytes(data[:n]))
        return n

    def recv(self, n, *args):
        data = super().recv(n, *args)
        self.tap.received(data)
        return data


def tapped_connection(port, timeout):
    s = TappedSocket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(("127.0.0.1", port))
    except BaseException:
        s.close()
        raise
    return s


def install_websockets_tap():
    """Makes websockets.connect() log what its /ws connections receive."""
    try:
        import websockets
        from websockets.legacy.client import WebSocketClientProtocol
    except ImportError:
        return
    if getattr(websockets.connect, "_wire_tapped", False):
        return
    original = websockets.connect

    def connect(uri, *args, **kwargs):
        route = urllib.parse.urlsplit(uri).path
        if route in WS_ROUTES and "create_protocol" not in kwargs:
            class Tapped(WebSocketClientProtocol):
                async def recv(self):
                    message = await super().recv()
                    if isinstance(message, str):
                        log_ws_text(route, message)
                    return message
            kwargs["create_protocol"] = Tapped
        return original(uri, *args, **kwargs)

    connect._wire_tapped = True
    websockets.connect = connect


if enabled():
    install_websockets_tap()
