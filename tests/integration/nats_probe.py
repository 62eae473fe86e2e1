"""A minimal NATS client for the cluster tests, to look at JetStream state from outside ringcast:
which server leads a stream, what a KV key holds. Blocking, one request at a time; not thread-safe
(make one per use)."""

import base64
import json
import socket
import time


class NatsConn:
    """Blocking request/reply over the NATS text protocol; enough for $JS.API requests."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self._read_line()  # INFO
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,'
                          b'"no_responders":true,"protocol":1,"name":"rc-test"}\r\nSUB _INBOX.rctest.* 1\r\n')
        self.n = 0

    def _read_line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("nats closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def _read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("nats closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def request(self, subject, payload=b"", timeout=5.0):
        """Returns (headers bytes, data bytes) of the reply."""
        self.n += 1
        inbox = f"_INBOX.rctest.{self.n}"
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.sock.sendall(f"PUB {subject} {inbox} {len(data)}\r\n".encode() + data + b"\r\n")
        deadline = time.monotonic() + timeout
        while True:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            line = self._read_line()
            op = line.split(" ", 1)[0].upper()
            if op == "PING":
                self.sock.sendall(b"PONG\r\n")
            elif op == "MSG":
                parts = line.split(" ")
                body = self._read_exact(int(parts[-1]) + 2)[:-2]
                if parts[1] == inbox:
                    return b"", body
            elif op == "HMSG":
                parts = line.split(" ")
                hlen, total = int(parts[-2]), int(parts[-1])
                raw = self._read_exact(total + 2)[:-2]
                if parts[1] == inbox:
                    return raw[:hlen], raw[hlen:]
            elif op == "-ERR":
                raise ConnectionError(line)

    def js(self, api, payload=b"", timeout=5.0):
        headers, data = self.request("$JS.API." + api, payload, timeout)
        if headers.startswith(b"NATS/1.0 503"):
            raise ConnectionError("no responders for $JS.API." + api)
        return json.loads(data)

    def close(self):
        self.sock.close()


def stream_leader(cluster, stream):
    """Index of the NATS server leading `stream` (asked on any running server)."""
    for s in cluster.nats:
        if not s.running():
            continue
        try:
            conn = NatsConn(s.port)
            try:
                info = conn.js(f"STREAM.INFO.{stream}")
            finally:
                conn.close()
        except OSError:
            continue
        leader = (info.get("cluster") or {}).get("leader")
        for t in cluster.nats:
            if t.name == leader:
                return t.index
    return None


def kv_get(cluster, bucket, key):
    """The value (str) of a NATS KV key, or None when absent (asked on any running server)."""
    for s in cluster.nats:
        if not s.running():
            continue
        try:
            conn = NatsConn(s.port)
            try:
                reply = conn.js(f"STREAM.MSG.GET.KV_{bucket}", {"last_by_subj": f"$KV.{bucket}.{key}"})
            finally:
                conn.close()
        except OSError:
            continue
        msg = reply.get("message")
        return (base64.b64decode(msg.get("data", "")).decode() or None) if msg else None  # "" = deleted
    return None
