"""Authentication for browsers and topics on the real server: ?api_key= on SSE routes, per-topic
subscribe/publish permissions of keys (HTTP and /ws), and subscription tokens (JWT HS256 and
ES256) minted here with the standard library (HS256) and openssl (ES256)."""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import pathlib
import re
import subprocess
import tempfile
import time
import unittest

import websockets

from harness import Server, ResponseReader, assert_error_envelope, connect, get, metric_sum, metrics
from openai_client import post_json

SECRET = b"an-hs256-secret-of-at-least-32-bytes!!"
DOCS = pathlib.Path(__file__).resolve().parent.parent.parent / "docs" / "api.md"


def write_file(data, suffix):
    f = tempfile.NamedTemporaryFile("wb", suffix=suffix, delete=False)
    f.write(data if isinstance(data, bytes) else data.encode())
    f.close()
    return f.name


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def hs256_token(claims, header=None, secret=SECRET):
    head = b64url(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


def docs_minting_function():
    """The token-minting example of docs/api.md, executed: the docs show code that works."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    source = next(b for b in blocks if "def subscription_token" in b)
    namespace = {}
    exec(source, namespace)
    return namespace["subscription_token"]


def open_sse(port, path, headers=None):
    """GET `path`; returns (socket, reader, response head) — the body is read by the caller."""
    s = connect(port)
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())
    reader = ResponseReader(s)
    return s, reader, reader.read(head_only=True)


def read_until(reader, marker, timeout=10.0):
    deadline = time.monotonic() + timeout
    while marker not in reader.buf:
        reader._fill(deadline)
    return reader.buf


def assert_streams(test, port, path, expect, headers=None):
    """The SSE stream at `path` opens (200) and delivers `expect` (bytes) from history."""
    s, reader, head = open_sse(port, path, headers)
    with s:
        test.assertEqual(head.status, 200, head.raw_head)
        test.assertTrue(head.header("content-type").startswith("text/event-stream"))
        test.assertIn(expect, read_until(reader, expect))


def refused(test, port, path, status, code, headers=None):
    """GET `path` is answered `status` with `code`; returns the error object."""
    s, reader, head = open_sse(port, path, headers)
    with s:
        reader.deadline_s = 10.0
        test.assertEqual(head.status, status, head.raw_head)
        length = int(head.header("content-length"))
        head.body = reader._read_exact(length, time.monotonic() + 10)
    return assert_error_envelope(test, head, status, code)


async def ws_request(ws, message):
    """Sends one /ws request and returns the first event answering it."""
    await ws.send(json.dumps(message))
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if event.get("id") == message["id"]:
            return event


class ApiKeyInQuery(unittest.TestCase):
    def test_sse_routes_accept_api_key_in_the_query(self):
        with Server("--api-key", "sk-browser") as srv:
            key = {"Authorization": "Bearer sk-browser"}
            self.assertEqual(post_json(srv.port, "/v1/topics/news", {"n": 1}, key).status, 200)
            assert_streams(self, srv.port, "/v1/topics/news/events?since=0&api_key=sk-browser",
                           b'data: {"n":1}')
            refused(self, srv.port, "/v1/topics/news/events?since=0", 401, None)
            refused(self, srv.port, "/v1/topics/news/events?api_key=sk-wrong", 401,
                    "invalid_api_key")
            # The broker's lifecycle stream too.
            r = post_json(srv.port, "/api/v1/message", {"user_id": "u1", "message": "hi",
                                                        "max_tokens": 2}, key)
            self.assertEqual(r.status, 202, r.body)
            mid = r.json()["message_id"]
            assert_streams(self, srv.port,
                           f"/api/v1/stream?user_id=u1&message_id={mid}&api_key=sk-browser",
                           b"event: done")
            # Not on routes a browser reaches with headers (keys in URLs end up in logs).
            refused(self, srv.port, "/v1/models?api_key=sk-browser", 401, None)


class TopicPermissions(unittest.TestCase):
    KEYS = ("sk-reader subscribe=news.*,chat.room1 publish=   # read-only\n"
            "sk-writer publish=news.> subscribe=\n"
            "sk-admin\n")

    def setUp(self):
        self.keys = write_file(self.KEYS, ".keys")
        self.addCleanup(os.unlink, self.keys)

    def test_http_publish_and_subscribe_follow_the_patterns(self):
        reader = {"Authorization": "Bearer sk-reader"}
        writer = {"Authorization": "Bearer sk-writer"}
        admin = {"Authorization": "Bearer sk-admin"}
        with Server("--api-keys-file", self.keys, shards=2) as srv:
            self.assertEqual(post_json(srv.port, "/v1/topics/news.eu.sports", {"a": 1}, writer).status,
                             200)
            self.assertEqual(post_json(srv.port, "/v1/topics/chat.room1", {"b": 2}, admin).status, 200)
            err = assert_error_envelope(
                self, post_json(srv.port, "/v1/topics/chat.room1", {"x": 1}, writer), 403,
                "permission_denied")
            self.assertIn("'chat.room1'", err["message"])
            self.assertIn("publish", err["message"])
            assert_error_envelope(self, post_json(srv.port, "/v1/topics/news.x", {"x": 1}, reader),
                                  403, "permission_denied")
            # news.* is one segment: news.eu but not news.eu.sports.
            self.assertEqual(post_json(srv.port, "/v1/topics/news.eu", {"c": 3}, writer).status, 200)
            assert_streams(self, srv.port, "/v1/topics/news.eu/events?since=0", b'data: {"c":3}',
                           reader)
            assert_streams(self, srv.port, "/v1/topics/chat.room1/events?since=0", b'data: {"b":2}',
                           reader)
            err = refused(self, srv.port, "/v1/topics/news.eu.sports/events", 403,
                          "permission_denied", reader)
            self.assertIn("subscribe to topic 'news.eu.sports'", err["message"])
            refused(self, srv.port, "/v1/topics/news.eu/events", 403, "permission_denied", writer)
            # A generation mirrored to a topic publishes to it.
            chat = {"model": "ringcast-mock", "messages": [{"role": "user", "content": "hi"}],
                    "max_tokens": 2}
            assert_error_envelope(self, post_json(srv.port, "/v1/chat/completions", chat,
                                                  {**reader, "x-ringcast-topic": "news.eu"}),
                                  403, "permission_denied")
            self.assertEqual(post_json(srv.port, "/v1/chat/completions", chat,
                                       {**writer, "x-ringcast-topic": "news.live"}).status, 200)
            samples = metrics(srv.port)
            self.assertEqual(metric_sum(samples, "ringcast_admission_rejected_total",
                                        reason="permission"), 5)

    def test_ws_publish_and_subscribe_follow_the_patterns(self):
        async def run(port):
            url = f"ws://127.0.0.1:{port}/ws?api_key="
            async with websockets.connect(url + "sk-reader") as r, \
                    websockets.connect(url + "sk-writer") as w:
                ev = await ws_request(r, {"id": "s1", "action": "subscribe",
                                          "payload": {"topic": "news.today"}})
                self.assertEqual(ev["event"], "subscribed", ev)
                ev = await ws_request(r, {"id": "s2", "action": "subscribe",
                                          "payload": {"topic": "sports"}})
                self.assertEqual(ev["event"], "error")
                self.assertEqual(ev["error"]["code"], "permission_denied")
                self.assertIn("'sports'", ev["error"]["message"])
                ev = await ws_request(r, {"id": "p1", "action": "publish",
                                          "payload": {"topic": "news.today", "data": 1}})
                self.assertEqual(ev["error"]["code"], "permission_denied")
                ev = await ws_request(w, {"id": "s3", "action": "subscribe",
                                          "payload": {"topic": "news.today"}})
                self.assertEqual(ev["error"]["code"], "permission_denied")
                ev = await ws_request(w, {"id": "p2", "action": "publish",
                                          "payload": {"topic": "news.today", "data": {"ok": 1}}})
                self.assertEqual(ev["event"], "published", ev)
                ev = json.loads(await asyncio.wait_for(r.recv(), 10))  # the reader gets it
                self.assertEqual((ev["id"], ev["event"], ev["data"]["data"]),
                                 ("s1", "message", {"ok": 1}))
        with Server("--api-keys-file", self.keys) as srv:
            asyncio.run(run(srv.port))

    def test_bad_patterns_in_the_keys_file_name_the_line(self):
        bin_ = os.environ["RINGCAST_BIN"]
        for text, why in [("sk-a\nsk-b subscribe=news*\n", "whole segments"),
                          ("sk-a publish=a.>.b\n", "last segment"),
                          ("sk-a subscribe=a,\n", "empty")]:
            path = write_file(text, ".keys")
            try:
                out = subprocess.run([bin_, "--api-keys-file", path, "--listen", "127.0.0.1:0"],
                                     capture_output=True, text=True, timeout=20)
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertIn(f"{path}:{text.count(chr(10))}: ", out.stderr)  # file:line: reason
                self.assertIn(why, out.stderr)
            finally:
                os.unlink(path)


class SubscriptionTokens(unittest.TestCase):
    def setUp(self):
        self.secret = write_file(SECRET + b"\n", ".secret")
        self.addCleanup(os.unlink, self.secret)

    def server(self, *extra, **kw):
        return Server("--api-key", "sk-backend", "--jwt-hs256-secret-file", self.secret, *extra,
                      **kw)

    def test_hs256_token_subscribes_over_sse_only_to_its_topics(self):
        mint = docs_minting_function()
        token = mint(SECRET, "user-7", ["news.*"])
        with self.server(shards=2) as srv:
            backend = {"Authorization": "Bearer sk-backend"}
            self.assertEqual(post_json(srv.port, "/v1/topics/news.eu", {"n": 1}, backend).status,
                             200)
            assert_streams(self, srv.port, f"/v1/topics/news.eu/events?since=0&token={token}",
                           b'data: {"n":1}')
            # Also as a bearer token (no key matches a three-part JWT).
            assert_streams(self, srv.port, "/v1/topics/news.eu/events?since=0", b'data: {"n":1}',
                           {"Authorization": f"Bearer {token}"})
            err = refused(self, srv.port, f"/v1/topics/sports/events?token={token}", 403,
                          "permission_denied")
            self.assertIn("'sports'", err["message"])
            # A token only subscribes: no publishing, no generations.
            assert_error_envelope(self, post_json(srv.port, "/v1/topics/news.eu", {"n": 2},
                                                  {"Authorization": f"Bearer {token}"}),
                                  403, "permission_denied")
            refused(self, srv.port, "/v1/models", 403, "permission_denied",
                    {"Authorization": f"Bearer {token}"})
            refused(self, srv.port, "/v1/topics/news.eu/events", 401, None)

    def test_token_follows_the_broker_messages_of_its_sub_only(self):
        exp = int(time.time()) + 300
        mine = hs256_token({"exp": exp, "sub": "u1", "channels": ["news"]})
        anonymous = hs256_token({"exp": exp, "channels": ["news"]})
        with self.server(shards=2) as srv:
            backend = {"Authorization": "Bearer sk-backend"}
            mids = {}
            for user in ("u1", "u2"):
                r = post_json(srv.port, "/api/v1/message",
                              {"user_id": user, "message": "hi", "max_tokens": 2}, backend)
                self.assertEqual(r.status, 202, r.body)
                mids[user] = r.json()["message_id"]
            stream = "/api/v1/stream?user_id={}&message_id={}&token={}"
            assert_streams(self, srv.port, stream.format("u1", mids["u1"], mine), b"event: done")
            err = refused(self, srv.port, stream.format("u2", mids["u2"], mine), 403,
                          "permission_denied")
            self.assertIn("'u2'", err["message"])
            refused(self, srv.port, stream.format("u1", mids["u1"], anonymous), 403,
                    "permission_denied")

            async def ws(port):
                async with websockets.connect(f"ws://127.0.0.1:{port}/ws?token={mine}") as c:
                    ev = await ws_request(c, {"id": "m2", "action": "message.stream",
                                              "payload": {"user_id": "u2",
                                                          "message_id": mids["u2"]}})
                    self.assertEqual(ev["error"]["code"], "permission_denied", ev)
                    await c.send(json.dumps({"id": "m1", "action": "message.stream",
                                             "payload": {"user_id": "u1",
                                                         "message_id": mids["u1"]}}))
                    events = []
                    while not events or events[-1]["event"] not in ("done", "error"):
                        events.append(json.loads(await asyncio.wait_for(c.recv(), 10)))
                    self.assertEqual(events[-1]["event"], "done", events)
            asyncio.run(ws(srv.port))

    def test_refused_tokens_say_why(self):
        now = int(time.time())
        good = {"exp": now + 300, "channels": ["news.*"]}
        cases = [
            (hs256_token({"exp": now - 120, "channels": ["news.*"]}), "token_expired", "expired"),
            (hs256_token(good, secret=b"x" * 40), "invalid_token", "signature"),
            (hs256_token(good, header={"alg": "none"}), "invalid_token", "none"),
            (hs256_token(good, header={"alg": "ES256"}), "invalid_token", "ES256"),
            (hs256_token({"channels": ["news.*"]}), "invalid_token", "exp"),
            (hs256_token({"exp": now + 300}), "invalid_token", "no topics"),
            ("a.b.c", "invalid_token", "base64url"),
        ]
        # Over the request-line limit a token can't come in the query: as a bearer header, 8 KiB+.
        big = hs256_token({**good, "pad": "x" * 9000})
        with self.server() as srv:
            for token, code, why in cases:
                with self.subTest(why=why):
                    err = refused(self, srv.port, f"/v1/topics/news.x/events?token={token}", 401,
                                  code)
                    self.assertIn(why, err["message"])
            err = refused(self, srv.port, "/v1/topics/news.x/events", 401, "invalid_token",
                          {"Authorization": f"Bearer {big}"})
            self.assertIn("larger than 8192 bytes", err["message"])
            samples = metrics(srv.port)
            self.assertEqual(metric_sum(samples, "ringcast_admission_rejected_total", reason="auth"),
                             len(cases) + 1)

    def test_tokens_over_ws_subscribe_but_do_nothing_else(self):
        token = hs256_token({"exp": int(time.time()) + 300, "sub": "u9", "channel": "room.>"})

        async def run(port):
            with self.assertRaises(websockets.InvalidStatusCode) as ctx:
                await websockets.connect(f"ws://127.0.0.1:{port}/ws?token=a.b.c")
            self.assertEqual(ctx.exception.status_code, 401)
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws?token={token}") as ws, \
                    websockets.connect(f"ws://127.0.0.1:{port}/ws?api_key=sk-backend") as pub:
                ev = await ws_request(ws, {"id": "s", "action": "subscribe",
                                           "payload": {"topic": "room.1"}})
                self.assertEqual(ev["event"], "subscribed", ev)
                for req in [{"id": "x", "action": "subscribe", "payload": {"topic": "room"}},
                            {"id": "p", "action": "publish",
                             "payload": {"topic": "room.1", "data": 1}},
                            {"id": "c", "action": "chat.completion", "payload": {}}]:
                    ev = await ws_request(ws, req)
                    self.assertEqual(ev["event"], "error", ev)
                    self.assertEqual(ev["error"]["code"], "permission_denied", ev)
                ev = await ws_request(pub, {"id": "p", "action": "publish",
                                            "payload": {"topic": "room.1", "data": "hello"}})
                self.assertEqual(ev["event"], "published", ev)
                ev = json.loads(await asyncio.wait_for(ws.recv(), 10))
                self.assertEqual((ev["id"], ev["event"], ev["data"]["data"]),
                                 ("s", "message", "hello"))
        with self.server() as srv:
            asyncio.run(run(srv.port))

    def test_ws_subscribe_after_the_token_expired_is_refused(self):
        # Expired 22 s ago: still inside the 30 s leeway for the upgrade, past it ~9 s later.
        exp = int(time.time()) - 22
        token = hs256_token({"exp": exp, "channels": ["a", "b"]})

        async def run(port):
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws?token={token}") as ws:
                ev = await ws_request(ws, {"id": "1", "action": "subscribe",
                                           "payload": {"topic": "a"}})
                self.assertEqual(ev["event"], "subscribed", ev)
                await asyncio.sleep(max(0.0, exp + 31.5 - time.time()))
                ev = await ws_request(ws, {"id": "2", "action": "subscribe",
                                           "payload": {"topic": "b"}})
                self.assertEqual(ev["event"], "error", ev)
                self.assertEqual(ev["error"]["code"], "token_expired", ev)
        with self.server() as srv:
            asyncio.run(run(srv.port))

    def test_es256_token_and_key_file_errors(self):
        with tempfile.TemporaryDirectory() as d:
            priv, pub = os.path.join(d, "ec.pem"), os.path.join(d, "ec.pub")
            subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
                            "-out", priv], check=True, capture_output=True)
            subprocess.run(["openssl", "ec", "-in", priv, "-pubout", "-out", pub], check=True,
                           capture_output=True)
            head = b64url(json.dumps({"alg": "ES256"}).encode())
            body = b64url(json.dumps({"exp": int(time.time()) + 60, "channels": ["t"]}).encode())
            der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", priv],
                                 input=f"{head}.{body}".encode(), check=True,
                                 capture_output=True).stdout
            token = f"{head}.{body}.{b64url(der_to_raw(der))}"
            with Server("--api-key", "sk-b", "--jwt-es256-public-key-file", pub) as srv:
                self.assertEqual(post_json(srv.port, "/v1/topics/t", {"n": 5},
                                           {"X-API-Key": "sk-b"}).status, 200)
                assert_streams(self, srv.port, f"/v1/topics/t/events?since=0&token={token}",
                               b'data: {"n":5}')
                # This server has no HS256 secret: an HS256 token is refused.
                hs = hs256_token({"exp": int(time.time()) + 60, "channels": ["t"]})
                err = refused(self, srv.port, f"/v1/topics/t/events?token={hs}", 401,
                              "invalid_token")
                self.assertIn("HS256", err["message"])
            bin_ = os.environ["RINGCAST_BIN"]
            short = write_file(b"too-short", ".secret")
            self.addCleanup(os.unlink, short)
            for flags, why in [(["--jwt-hs256-secret-file", short], "at least 32 bytes"),
                               (["--jwt-es256-public-key-file", priv], "PEM public key"),
                               (["--jwt-es256-public-key-file", d + "/none"], "cannot read")]:
                out = subprocess.run([bin_, *flags, "--listen", "127.0.0.1:0"],
                                     capture_output=True, text=True, timeout=20)
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertIn(why, out.stderr)


def der_to_raw(der):
    """An ECDSA signature in DER (SEQUENCE of two INTEGERs) as JWS's 64-byte r||s."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 3
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        out += der[i + 2:i + 2 + n].lstrip(b"\0").rjust(32, b"\0")
        i += 2 + n
    return out


if __name__ == "__main__":
    unittest.main()
