"""Test harness: starts the real ringcast binary on loopback and talks to it.

Every server listens on 127.0.0.1 with port 0 (the kernel picks a free port; ringcast logs the
one it got), so tests run in parallel without port clashes. A server is stopped with SIGTERM
and must exit 0 (under ASan that also means: no leak, no error). All waits are bounded.
"""

import json
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time
import unittest

import wire_log

RINGCAST_BIN = os.environ.get("RINGCAST_BIN", "")
LISTEN_RE = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


class Server:
    """A ringcast process. Use as a context manager; stop() checks the exit status."""

    def __init__(self, *args, shards=1, env=None, start_timeout=15.0):
        if not RINGCAST_BIN:
            raise unittest.SkipTest("RINGCAST_BIN is not set (run through ctest)")
        cmd = [RINGCAST_BIN, "--listen", "127.0.0.1:0", "--shards", str(shards), "--no-pin"]
        if "--drain-grace-ms" not in args:
            cmd += ["--drain-grace-ms", "0"]  # no load balancer to tell: stop without the grace
        cmd += [str(a) for a in args]
        self.lines = []
        self._lock = threading.Lock()
        self._port_seen = threading.Event()
        self.port = None
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **(env or {})}
        )
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        if not self._port_seen.wait(start_timeout):
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("ringcast did not start:\n" + self.log())

    def _read_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self.lines.append(line)
            m = LISTEN_RE.search(line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self._port_seen.set()

    def log(self):
        with self._lock:
            return "\n".join(self.lines)

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def send_signal(self, signo):
        self.proc.send_signal(signo)

    def stop(self, signo=signal.SIGTERM, timeout=20.0):
        """Sends `signo` and waits; returns the exit code (kills after `timeout`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signo)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("ringcast did not exit after signal:\n" + self.log())
        self._reader.join(5)
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        code = self.stop()
        if exc_type is None and code != 0:
            raise AssertionError(f"ringcast exited with {code}:\n" + self.log())


def connect(port, timeout=10.0):
    if wire_log.enabled():  # RINGCAST_WIRE_LOG: what this socket receives is logged
        s = wire_log.tapped_connection(port, timeout)
    else:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class Response:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name -> list of values
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def json(self):
        return json.loads(self.body)


class ResponseReader:
    """Reads HTTP/1.1 responses (Content-Length or chunked) from a socket, in order."""

    def __init__(self, sock, timeout=10.0):
        self.sock = sock
        self.buf = b""
        self.deadline_s = timeout

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no response in time")
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        self.buf += chunk

    def _read_until(self, marker, deadline):
        while marker not in self.buf:
            self._fill(deadline)
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _read_exact(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read(self, head_only=False):
        deadline = time.monotonic() + self.deadline_s
        head = self._read_until(b"\r\n\r\n", deadline)
        lines = head.decode("latin-1").split("\r\n")
        version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        assert version == "HTTP/1.1", lines[0]
        headers = {}
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        body = bytearray()  # appended per chunk: bytes += would copy the whole body each time
        if head_only or int(status) in (100, 101, 204, 304):
            pass
        elif "chunked" in headers.get("transfer-encoding", [""])[0]:
            while True:
                size_line = self._read_until(b"\r\n", deadline)
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    self._read_until(b"\r\n", deadline)
                    break
                body += self._read_exact(size, deadline)
                self._read_exact(2, deadline)
        elif "content-length" in headers:
            body = self._read_exact(int(headers["content-length"][0]), deadline)
        return Response(int(status), reason, headers, bytes(body), head)

    def at_eof(self, timeout=5.0):
        """True if the peer closes without sending anything more."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            r, _, _ = select.select([self.sock], [], [], remaining)
            if not r:
                return False
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return True
            if not chunk:
                return not self.buf
            self.buf += chunk


def request(port, raw, timeout=10.0):
    """Sends raw request bytes on a new connection and reads one response."""
    with connect(port, timeout) as s:
        s.sendall(raw)
        return ResponseReader(s, timeout).read()


def get(port, path, headers=None, timeout=10.0):
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    raw = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()
    return request(port, raw, timeout)


def assert_error_envelope(test, response, status, code=None):
    """Checks the OpenAI-style error envelope: all four keys, null where absent."""
    test.assertEqual(response.status, status, response.body)
    test.assertEqual(response.header("content-type"), "application/json")
    body = response.json()
    test.assertEqual(set(body.keys()), {"error"})
    err = body["error"]
    test.assertEqual(set(err.keys()), {"message", "type", "param", "code"})
    test.assertIsInstance(err["message"], str)
    test.assertTrue(err["message"])
    test.assertIsInstance(err["type"], str)
    test.assertNotIn(err["param"], ("None", ""))
    test.assertNotIn(err["code"], ("None", ""))
    if code is not None:
        test.assertEqual(err["code"], code)
    return err


def metrics(port):
    """Fetches /metrics and returns {(name, frozenset(labels)): value}."""
    r = get(port, "/metrics")
    assert r.status == 200, r.status
    out = {}
    for line in r.body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        assert m, f"bad metrics line: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def metric(samples, name, **labels):
    """The one sample of `name` with exactly these labels (None when there is none)."""
    want = frozenset(labels.items())
    return samples.get((name, want))


def metric_sum(samples, name, **labels):
    """sum(name{labels}) over the shards, as a query would: the samples of `name` whose labels
    other than `shard` are exactly these (None when there is none). ringcast exports per-shard
    series only, no pre-summed total."""
    want = frozenset(labels.items())
    found = [v for (n, have), v in samples.items()
             if n == name and frozenset(kv for kv in have if kv[0] != "shard") == want]
    return sum(found) if found else None


# ---- WebSocket over a raw socket (for hostile frames no library would send) ----

import base64
import hashlib
import struct

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_handshake(port, path="/ws", extra_headers=None, timeout=10.0):
    """Opens a socket and upgrades it; returns (socket, ResponseReader, response)."""
    s = connect(port, timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (extra_headers or {}).items())
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n{extra}\r\n").encode())
    reader = ResponseReader(s, timeout)
    r = reader.read(head_only=True)
    if r.status == 101:
        want = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        assert r.header("sec-websocket-accept") == want, r.raw_head
    return s, reader, r


def ws_frame(opcode, payload=b"", fin=True, mask=True, rsv=0):
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
    return head + key + masked


def ws_read_frame(reader, timeout=10.0):
    """Reads one frame from the server (unmasked): returns (fin, opcode, payload)."""
    deadline = time.monotonic() + timeout
    head = reader._read_exact(2, deadline)
    fin, opcode = bool(head[0] & 0x80), head[0] & 0x0F
    n = head[1] & 0x7F
    assert not head[1] & 0x80, "server frames must not be masked"
    if n == 126:
        n = struct.unpack("!H", reader._read_exact(2, deadline))[0]
    elif n == 127:
        n = struct.unpack("!Q", reader._read_exact(8, deadline))[0]
    return fin, opcode, reader._read_exact(n, deadline)


def ws_read_message(reader, timeout=10.0):
    """Reads one whole message (reassembling fragments, skipping pings): (opcode, payload)."""
    parts, first = [], None
    while True:
        fin, opcode, payload = ws_read_frame(reader, timeout)
        if opcode in (0x9, 0xA):
            continue
        if opcode == 0x8:
            return opcode, payload
        if first is None:
            first = opcode
        parts.append(payload)
        if fin:
            return first, b"".join(parts)


def ws_close_code(reader, timeout=10.0):
    """Reads until a close frame; returns its code (None if none)."""
    while True:
        opcode, payload = ws_read_message(reader, timeout)
        if opcode == 0x8:
            return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
