"""Operating the real server: a port already in use, the process-wide connection limit, and
SIGHUP reloads of the config and keys files."""

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import unittest

from harness import (Server, ResponseReader, connect, get, metric, metrics, ws_frame, ws_handshake,
                     ws_read_message)
from openai_client import post_json

MODEL = "ringcast-mock"


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def wait_for_log(srv, text, count=1, timeout=15.0):
    """Waits until `text` has appeared `count` times in the server's log; returns the log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = srv.log()
        if log.count(text) >= count:
            return log
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not logged {count} time(s):\n" + srv.log())


def reload(srv, expect, count):
    """Sends SIGHUP and waits for the `count`-th log line containing `expect`."""
    srv.send_signal(signal.SIGHUP)
    return wait_for_log(srv, expect, count)


def hs256_token(claims, secret):
    def b64url(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


def stream_status(port, path):
    """The status of GET `path` (the head only: a stream that opens does not end)."""
    with connect(port) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        return ResponseReader(s).read(head_only=True).status


def ws_send(sock, obj):
    sock.sendall(ws_frame(0x1, json.dumps(obj).encode()))


def ws_event(reader, event, timeout=10.0):
    """Reads WebSocket messages until one with this event; returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        opcode, payload = ws_read_message(reader, timeout)
        assert opcode == 0x1, (opcode, payload)
        msg = json.loads(payload)
        if msg.get("event") == event:
            return msg
    raise AssertionError(f"no {event} event")


def read_until(reader, marker, timeout=10.0):
    deadline = time.monotonic() + timeout
    while marker not in reader.buf:
        reader._fill(deadline)
    return reader.buf


class ExclusivePort(unittest.TestCase):
    def test_second_server_on_the_same_port_is_refused(self):
        with Server(shards=2) as first:
            out = subprocess.run(
                [os.environ["RINGCAST_BIN"], "--listen", f"127.0.0.1:{first.port}", "--shards", "2",
                 "--no-pin"], capture_output=True, text=True, timeout=30)
            self.assertNotEqual(out.returncode, 0, out.stderr)
            self.assertIn(f"127.0.0.1:{first.port}", out.stderr)
            self.assertIn("already in use", out.stderr)
            # Both processes run as this user, so the other one can be named.
            self.assertIn(f"pid {first.proc.pid}", out.stderr)
            self.assertIn("ringcast", out.stderr)
            # The first server still has all the traffic.
            for _ in range(20):
                self.assertEqual(get(first.port, "/healthz").status, 200)

    def test_wildcard_address_over_a_specific_one_is_refused(self):
        with Server() as first:
            out = subprocess.run(
                [os.environ["RINGCAST_BIN"], "--listen", f":{first.port}", "--shards", "1",
                 "--no-pin"], capture_output=True, text=True, timeout=30)
            self.assertNotEqual(out.returncode, 0, out.stderr)
            self.assertIn(f"port {first.port} is already in use", out.stderr)
            self.assertEqual(get(first.port, "/healthz").status, 200)


class MaxConnections(unittest.TestCase):
    def test_limit_is_the_processes_whatever_the_spread_over_shards(self):
        limit = 40
        # Four shards: a per-shard split (10 each) would refuse some of the 40 as soon as the
        # kernel's spread is uneven, which it nearly always is.
        with Server("--max-connections", limit, shards=4) as srv:
            held = []
            try:
                for i in range(limit):
                    s = connect(srv.port)
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    r = ResponseReader(s).read()
                    self.assertEqual(r.status, 200, f"connection {i + 1} of {limit}")
                    held.append(s)
                # Number limit + 1 is refused: closed without an answer.
                with connect(srv.port) as extra:
                    extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    self.assertTrue(ResponseReader(extra).at_eof(10), "connection over the limit served")
                # Every held connection still works.
                for s in held:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    self.assertEqual(ResponseReader(s).read().status, 200)
                # One closes: its place is free again (once the server has seen the close).
                held.pop().close()
                deadline = time.monotonic() + 10
                while True:
                    with connect(srv.port) as s:
                        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        try:
                            r = ResponseReader(s).read()
                            break
                        except ConnectionError:
                            self.assertLess(time.monotonic(), deadline, "the freed place never came back")
                            time.sleep(0.05)
                self.assertEqual(r.status, 200)
                text = r.body.decode()
                refused = sum(float(v) for v in re.findall(
                    r'^ringcast_connections_refused_total\{shard="\d+"\} (\S+)$', text, re.M))
                self.assertGreaterEqual(refused, 1)
            finally:
                for s in held:
                    s.close()


class Reload(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.keys = os.path.join(self.dir.name, "keys")
        self.config = os.path.join(self.dir.name, "ringcast.toml")

    def tearDown(self):
        self.dir.cleanup()

    def test_keys_limits_and_cors_change_and_streams_survive(self):
        write(self.keys, "sk-old name=old\n")
        write(self.config, f'api_keys_file = "{self.keys}"\ncors_origin = ["https://a.example"]\n'
                           'mock_tokens_per_s = 50\n')
        with Server("--config", self.config, shards=2) as srv:
            old, new = {"X-API-Key": "sk-old"}, {"X-API-Key": "sk-new"}
            self.assertEqual(get(srv.port, "/v1/models", old).status, 200)
            self.assertEqual(get(srv.port, "/v1/models", new).status, 401)
            r = get(srv.port, "/v1/models", {**old, "Origin": "https://a.example"})
            self.assertEqual(r.header("access-control-allow-origin"), "https://a.example")

            # Open before the reload, with the key the reload removes: an SSE subscription, a
            # WebSocket subscribed to the same topic, and a chat stream in progress.
            sse = connect(srv.port)
            sse.sendall(b"GET /v1/topics/reload-t/events HTTP/1.1\r\nHost: x\r\nX-API-Key: sk-old\r\n\r\n")
            sse_reader = ResponseReader(sse)
            self.assertEqual(sse_reader.read(head_only=True).status, 200)
            ws, ws_reader, resp = ws_handshake(srv.port, "/ws", {"X-API-Key": "sk-old"})
            self.assertEqual(resp.status, 101)
            ws_send(ws, {"id": "s", "action": "subscribe", "payload": {"topic": "reload-t"}})
            ws_event(ws_reader, "subscribed")
            chat = connect(srv.port, timeout=30)
            body = json.dumps({"model": MODEL, "stream": True, "max_tokens": 40,
                               "messages": [{"role": "user", "content": "hello"}]}).encode()
            chat.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-API-Key: sk-old\r\n"
                         b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
                         b"\r\n\r\n" + body)
            chat_reader = ResponseReader(chat, timeout=30)
            self.assertEqual(chat_reader.read(head_only=True).status, 200)
            read_until(chat_reader, b"data: ")

            write(self.keys, "sk-new name=new\n")
            write(self.config, f'api_keys_file = "{self.keys}"\ncors_origin = ["https://b.example"]\n'
                               'mock_tokens_per_s = 50\nbody_bytes_max = 100\n')
            reload(srv, "configuration reloaded", 1)

            # New key in, old key out; the new CORS list and body limit apply.
            self.assertEqual(get(srv.port, "/v1/models", new).status, 200)
            self.assertEqual(get(srv.port, "/v1/models", old).status, 401)
            r = get(srv.port, "/v1/models", {**new, "Origin": "https://b.example"})
            self.assertEqual(r.header("access-control-allow-origin"), "https://b.example")
            r = get(srv.port, "/v1/models", {**new, "Origin": "https://a.example"})
            self.assertIsNone(r.header("access-control-allow-origin"))
            big = {"model": MODEL, "messages": [{"role": "user", "content": "x" * 200}]}
            self.assertEqual(post_json(srv.port, "/v1/chat/completions", big, new).status, 413)

            # What was open survived: the stream finishes, both subscribers get a publication,
            # and the WebSocket still answers.
            read_until(chat_reader, b"data: [DONE]", timeout=30)
            pub = post_json(srv.port, "/v1/topics/reload-t", {"after": "reload"}, new)
            self.assertEqual(pub.status, 200, pub.body)
            read_until(sse_reader, b'{"after":"reload"}')
            self.assertEqual(ws_event(ws_reader, "message")["data"]["data"], {"after": "reload"})
            ws_send(ws, {"id": "h", "action": "system.health", "payload": {}})
            self.assertEqual(ws_event(ws_reader, "system.health")["id"], "h")
            for s in (sse, ws, chat):
                s.close()

    def test_bad_files_keep_the_running_rules_and_name_the_line(self):
        write(self.keys, "sk-one\n")
        write(self.config, f'api_keys_file = "{self.keys}"\nrate_limit_rps = 0\n')
        with Server("--config", self.config) as srv:
            one = {"Authorization": "Bearer sk-one"}
            # A keys file with a bad second line.
            write(self.keys, "sk-two\nsk-three rps=fast\n")
            log = reload(srv, "keeping the running configuration", 1)
            self.assertIn(f"error [shard 0] SIGHUP: {self.keys}:2: rps= needs a non-negative number", log)
            self.assertEqual(get(srv.port, "/v1/models", one).status, 200)
            self.assertEqual(get(srv.port, "/v1/models", {"X-API-Key": "sk-two"}).status, 401)
            # A config file with an unknown key on line 3, then one with a bad value on line 2.
            write(self.keys, "sk-two\n")
            write(self.config, f'api_keys_file = "{self.keys}"\n\nbogus_key = 1\n')
            log = reload(srv, "keeping the running configuration", 2)
            self.assertIn(f"{self.config}:3: unknown key 'bogus_key'", log)
            write(self.config, f'api_keys_file = "{self.keys}"\nmax_connections = 0\n')
            log = reload(srv, "keeping the running configuration", 3)
            self.assertIn(f"{self.config}:2: --max-connections", log)
            write(self.config, f'api_keys_file = "{self.keys}"\nrate_limit_rps = [\n')
            log = reload(srv, "keeping the running configuration", 4)
            self.assertIn(f"{self.config}:", log.splitlines()[-1])
            self.assertEqual(get(srv.port, "/v1/models", one).status, 200)
            self.assertEqual(get(srv.port, "/v1/models", {"X-API-Key": "sk-two"}).status, 401)
            # A missing keys file is an error too.
            write(self.config, f'api_keys_file = "{self.keys}.missing"\n')
            log = reload(srv, "keeping the running configuration", 5)
            self.assertIn(f"{self.keys}.missing", log.splitlines()[-1])
            self.assertEqual(get(srv.port, "/v1/models", one).status, 200)
            # Fixed: the next reload applies.
            write(self.config, f'api_keys_file = "{self.keys}"\n')
            reload(srv, "configuration reloaded", 1)
            self.assertEqual(get(srv.port, "/v1/models", {"X-API-Key": "sk-two"}).status, 200)
            self.assertEqual(get(srv.port, "/v1/models", one).status, 401)

    def test_restart_only_settings_keep_their_value_and_say_so(self):
        write(self.config, "recv_buffers = 1024\nheader_timeout_ms = 10000\n")
        with Server("--config", self.config) as srv:
            write(self.config, "recv_buffers = 512\nheader_timeout_ms = 300\n")
            log = reload(srv, "configuration reloaded", 1)
            self.assertIn("--recv-buffers changed from 1024 to 512: needs a restart (keeping 1024)", log)
            # The live setting applied: a slow request head now times out.
            with connect(srv.port) as s:
                s.sendall(b"GET / HTTP/1.1\r\n")
                self.assertEqual(ResponseReader(s, timeout=10).read().status, 408)

    def test_a_reload_does_not_reset_a_keys_rate_limit(self):
        # The key moves to another line (and index) of the file: it must keep its bucket, or every
        # SIGHUP would hand every client a fresh burst.
        write(self.keys, "sk-limited rps=0.01 burst=2\n")
        with Server("--api-keys-file", self.keys) as srv:
            limited = {"X-API-Key": "sk-limited"}
            self.assertEqual(get(srv.port, "/v1/models", limited).status, 200)
            self.assertEqual(get(srv.port, "/v1/models", limited).status, 200)
            self.assertEqual(get(srv.port, "/v1/models", limited).status, 429)
            write(self.keys, "sk-other\nsk-limited rps=0.01 burst=2\n")
            reload(srv, "configuration reloaded", 1)
            self.assertEqual(get(srv.port, "/v1/models", limited).status, 429)
            self.assertEqual(get(srv.port, "/v1/models", {"X-API-Key": "sk-other"}).status, 200)

    def test_token_secret_rotation(self):
        old = b"the-old-hs256-secret-of-32-bytes-or-more"
        new = b"the-new-hs256-secret-of-32-bytes-or-more"
        secret = os.path.join(self.dir.name, "jwt.secret")
        write(secret, old.decode())
        claims = {"exp": int(time.time()) + 300, "channels": ["rot"]}
        with Server("--api-key", "sk-backend", "--jwt-hs256-secret-file", secret) as srv:
            path = "/v1/topics/rot/events?token="
            self.assertEqual(stream_status(srv.port, path + hs256_token(claims, old)), 200)
            self.assertEqual(stream_status(srv.port, path + hs256_token(claims, new)), 401)
            write(secret, new.decode())
            log = reload(srv, "configuration reloaded", 1)
            self.assertIn(f"no --config file; re-reading {secret}", log)
            self.assertEqual(stream_status(srv.port, path + hs256_token(claims, new)), 200)
            self.assertEqual(stream_status(srv.port, path + hs256_token(claims, old)), 401)

    def test_max_connections_reloads(self):
        write(self.config, "max_connections = 100\n")
        with Server("--config", self.config, shards=2) as srv:
            write(self.config, "max_connections = 3\n")
            reload(srv, "configuration reloaded", 1)
            held = [connect(srv.port) for _ in range(3)]
            try:
                for s in held:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    self.assertEqual(ResponseReader(s).read().status, 200)
                with connect(srv.port) as extra:
                    extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    self.assertTrue(ResponseReader(extra).at_eof(10))
            finally:
                for s in held:
                    s.close()

    def test_sighup_without_files(self):
        with Server("--api-key", "sk-flag") as srv:
            reload(srv, "nothing to reload", 1)
            self.assertEqual(get(srv.port, "/v1/models", {"X-API-Key": "sk-flag"}).status, 200)
        write(self.keys, "sk-a\n")
        with Server("--api-keys-file", self.keys) as srv:
            write(self.keys, "sk-b\n")
            log = reload(srv, "configuration reloaded", 1)
            self.assertIn(f"no --config file; re-reading {self.keys}", log)
            self.assertEqual(get(srv.port, "/v1/models", {"X-API-Key": "sk-b"}).status, 200)
            self.assertEqual(get(srv.port, "/v1/models", {"X-API-Key": "sk-a"}).status, 401)


if __name__ == "__main__":
    unittest.main()
