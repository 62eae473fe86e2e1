"""The plumbing of a worker in ringcast's `ringcast` JSON-RPC dialect (docs/workers.md), shared by
mock_worker.py and fault_worker.py: framing (one JSON object per line, or LSP Content-Length),
a single-threaded loop over stdin and a timer heap, and replies.

Python standard library only. Single-threaded: every handler and timer runs on the loop, so
workers need no locks. Output is buffered per loop turn and written with blocking writes: when
ringcast stops reading, the worker blocks (back-pressure), as a real backend would.
"""

import heapq
import itertools
import json
import os
import select
import sys
import time

# JSON-RPC error codes of the dialect (docs/workers.md).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
OVERLOADED = -32001
TIMEOUT = -32002
CANCELLED = -32003
MODEL_NOT_FOUND = -32004


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class Framer:
    """Splits stdin bytes into messages: `lines` (\\n-terminated) or `content-length` (LSP)."""

    def __init__(self, framing):
        if framing not in ("lines", "content-length"):
            raise ValueError(f"unknown framing {framing!r}")
        self.framing = framing
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            if self.framing == "lines":
                nl = self.buf.find(b"\n")
                if nl < 0:
                    return out
                line = bytes(self.buf[:nl]).rstrip(b"\r")
                del self.buf[:nl + 1]
                if line.strip():
                    out.append(line)
            else:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return out
                length = None
                for field in bytes(self.buf[:end]).split(b"\r\n"):
                    name, _, value = field.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                if length is None:
                    raise ValueError("a header block without Content-Length")
                if len(self.buf) < end + 4 + length:
                    return out
                out.append(bytes(self.buf[end + 4:end + 4 + length]))
                del self.buf[:end + 4 + length]

    def frame(self, payload):
        if self.framing == "lines":
            return payload + b"\n"
        return b"Content-Length: %d\r\n\r\n" % len(payload) + payload


class Worker:
    """A worker's loop. Subclasses implement handle_<method> (dots and slashes become '_'):
    requests get the message's `id`, params; notifications get id None. A handler returns a
    result to answer at once, or None to answer later with reply()/reply_error()."""

    name = "worker"

    def __init__(self, framing="lines"):
        self.framer = Framer(framing)
        self.out = bytearray()
        self.timers = []
        self.seq = itertools.count()
        self.initialized = False

    # ---- output ----

    def send(self, obj):
        self.out += self.framer.frame(dumps(obj).encode())

    def send_raw(self, data):
        """Bytes as they are (for faults: garbage, oversized lines)."""
        self.out += data

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def reply(self, msg_id, result):
        self.send({"jsonrpc": "2.0", "id": msg_id, "result": result})

    def reply_error(self, msg_id, code, message, data=None):
        err = {"code": code, "message": message}
        if data is not None:
            err["data"] = data
        self.send({"jsonrpc": "2.0", "id": msg_id, "error": err})

    def flush(self):
        view = memoryview(self.out)
        done = 0
        try:
            while done < len(view):
                done += os.write(1, view[done:])
        except BrokenPipeError:
            os._exit(0)  # ringcast is gone
        finally:
            view.release()
        del self.out[:done]

    # ---- timers ----

    def after(self, seconds, fn):
        heapq.heappush(self.timers, (time.monotonic() + max(0.0, seconds), next(self.seq), fn))

    def _run_due(self):
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            _, _, fn = heapq.heappop(self.timers)
            fn()

    # ---- input ----

    def dispatch(self, raw):
        try:
            msg = json.loads(raw)
        except ValueError as e:
            self.reply_error(None, PARSE_ERROR, f"not JSON: {e}")
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("method"), str):
            if isinstance(msg, dict) and ("result" in msg or "error" in msg):
                return  # an answer to nothing we asked
            self.reply_error(msg.get("id") if isinstance(msg, dict) else None, INVALID_REQUEST,
                             "not a JSON-RPC request")
            return
        method, msg_id, params = msg["method"], msg.get("id"), msg.get("params")
        if params is None:
            params = {}
        handler = getattr(self, "handle_" + method.replace("/", "_").replace(".", "_"), None)
        if handler is None:
            if msg_id is not None:
                self.reply_error(msg_id, METHOD_NOT_FOUND, f"unknown method {method!r}")
            return
        result = handler(msg_id, params)
        if result is not None and msg_id is not None:
            self.reply(msg_id, result)

    def handle_initialized(self, msg_id, params):
        self.initialized = True

    def handle_ping(self, msg_id, params):
        return {}

    def on_eof(self):
        """stdin closed: ringcast wants us gone."""
        self.flush()
        sys.exit(0)

    def run(self):
        while True:
            self.flush()
            timeout = None
            if self.timers:
                timeout = max(0.0, self.timers[0][0] - time.monotonic())
            ready, _, _ = select.select([0], [], [], timeout)
            if ready:
                data = os.read(0, 1 << 16)
                if not data:
                    self.on_eof()
                    return
                for raw in self.framer.feed(data):
                    self.dispatch(raw)
            self._run_due()
