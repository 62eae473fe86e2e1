"""Admission on the real server: API keys, rate limits, stream caps, CORS, the engine queue,
shedding and deadlines. Every rejection is checked for its exact status, headers and envelope."""

import asyncio
import json
import os
import subprocess
import tempfile
import threading
import time
import unittest

import websockets

from harness import Server, ResponseReader, assert_error_envelope, connect, get, metric_sum, metrics
from openai_client import post_json, sse_events

MODEL = "ringcast-mock"


def chat(text="hi", **kw):
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
    body.update(kw)
    return body


def keys_file(text):
    f = tempfile.NamedTemporaryFile("w", suffix=".keys", delete=False)
    f.write(text)
    f.close()
    return f.name


class ApiKeys(unittest.TestCase):
    def test_missing_wrong_and_accepted_keys(self):
        with Server("--api-key", "sk-alpha", "--api-key", "sk-beta") as srv:
            err = assert_error_envelope(self, get(srv.port, "/v1/models"), 401)
            self.assertIsNone(err["param"])
            self.assertIsNone(err["code"])  # as OpenAI answers a missing key
            self.assertIn("API key", err["message"])
            assert_error_envelope(self, get(srv.port, "/v1/models", {"Authorization": "Bearer sk-wrong"}),
                                  401, "invalid_api_key")
            assert_error_envelope(self, get(srv.port, "/v1/models", {"Authorization": "Bearer sk-alph"}),
                                  401, "invalid_api_key")
            self.assertEqual(get(srv.port, "/v1/models", {"Authorization": "Bearer sk-alpha"}).status, 200)
            self.assertEqual(get(srv.port, "/v1/models", {"X-API-Key": "sk-beta"}).status, 200)
            # ?api_key= is for WebSocket upgrades only (browsers can't set headers there).
            assert_error_envelope(self, get(srv.port, "/v1/models?api_key=sk-alpha"), 401)
            # Unknown API routes are not enumerable without a key; operations routes are open.
            assert_error_envelope(self, get(srv.port, "/v1/nothing"), 401)
            self.assertEqual(get(srv.port, "/healthz").status, 200)
            self.assertEqual(get(srv.port, "/metrics").status, 200)

            async def ws():
                with self.assertRaises(websockets.InvalidStatusCode) as ctx:
                    await websockets.connect(f"ws://127.0.0.1:{srv.port}/ws")
                self.assertEqual(ctx.exception.status_code, 401)
                async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws?api_key=sk-beta") as c:
                    await c.send(json.dumps({"id": "h", "action": "system.health"}))
                    self.assertEqual(json.loads(await c.recv())["event"], "system.health")
            asyncio.run(ws())
            samples = metrics(srv.port)
            self.assertEqual(metric_sum(samples, "ringcast_admission_rejected_total", reason="auth"),
                             6)  # 5 over HTTP, 1 upgrade

    def test_keys_file_errors_name_the_line(self):
        bin_ = os.environ["RINGCAST_BIN"]
        cases = [("sk-ok\nsk-two rps=fast\n", 2),
                 ("# comment\n\nsk-a name=x shade=blue\n", 3),
                 ("sk-a\nsk-a\n", 2),
                 ("sk-\x01bad\n", 1)]
        for text, where in cases:
            path = keys_file(text)
            try:
                out = subprocess.run([bin_, "--api-keys-file", path, "--listen", "127.0.0.1:0"],
                                     capture_output=True, text=True, timeout=20)
                self.assertEqual(out.returncode, 2, text)
                self.assertIn(f"{path}:{where}: ", out.stderr)  # file:line: reason
            finally:
                os.unlink(path)
        out = subprocess.run([bin_, "--api-keys-file", "/nonexistent/keys", "--listen", "127.0.0.1:0"],
                             capture_output=True, text=True, timeout=20)
        self.assertEqual(out.returncode, 2)
        self.assertIn("/nonexistent/keys", out.stderr)

    def test_open_without_keys_says_so(self):
        with Server() as srv:
            self.assertEqual(get(srv.port, "/v1/models").status, 200)
            self.assertIn("no API keys configured", srv.log())


class RateLimits(unittest.TestCase):
    def test_per_key_bucket_429_and_headers(self):
        path = keys_file("sk-slow rps=0.5 burst=3 name=slow\nsk-fast\n")
        try:
            with Server("--api-keys-file", path, "--rate-limit-rps", "1000") as srv:
                slow = {"Authorization": "Bearer sk-slow"}
                seen = [get(srv.port, "/v1/models", slow) for _ in range(4)]
                self.assertEqual([r.status for r in seen], [200, 200, 200, 429])
                for r in seen:  # every response carries the limit headers
                    self.assertEqual(r.header("x-ratelimit-limit-requests"), "30")
                    self.assertIsNotNone(r.header("x-ratelimit-remaining-requests"))
                    self.assertRegex(r.header("x-ratelimit-reset-requests"), r"^(\d+m)?\d+s$")
                self.assertEqual([r.header("x-ratelimit-remaining-requests") for r in seen[:3]],
                                 ["2", "1", "0"])
                limited = seen[3]
                err = assert_error_envelope(self, limited, 429)
                self.assertEqual(err["code"], "rate_limit_exceeded")
                self.assertEqual(limited.header("retry-after"), "2")
                self.assertTrue(1000 < int(limited.header("retry-after-ms")) <= 2000)
                # Another key is not affected.
                self.assertEqual(get(srv.port, "/v1/models", {"Authorization": "Bearer sk-fast"}).status, 200)
        finally:
            os.unlink(path)

    def test_ws_actions_are_rate_limited(self):
        async def run(srv):
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws") as ws:
                out = []
                for i in range(3):
                    await ws.send(json.dumps({"id": f"h{i}", "action": "system.health"}))
                    out.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
                return out
        with Server("--rate-limit-rps", "0.5", "--rate-limit-burst", "2") as srv:
            out = asyncio.run(run(srv))
            self.assertEqual([e["event"] for e in out], ["system.health", "error", "error"])
            self.assertEqual(out[1]["error"]["code"], "rate_limited")
            self.assertGreater(out[1]["error"]["retry_after_ms"], 0)


class StreamCaps(unittest.TestCase):
    def test_key_stream_cap(self):
        with Server("--api-key", "sk-a", "--key-streams-max", "1", "--mock-tokens-per-s", "20") as srv:
            auth = {"Authorization": "Bearer sk-a"}
            first = connect(srv.port)
            body = json.dumps(chat(stream=True, max_tokens=200)).encode()
            first.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-a\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.assertEqual(ResponseReader(first).read(head_only=True).status, 200)
            r = post_json(srv.port, "/v1/chat/completions", chat(stream=True), auth)
            err = assert_error_envelope(self, r, 429, "too_many_streams")
            self.assertEqual(r.header("retry-after"), "1")
            first.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if post_json(srv.port, "/v1/chat/completions", chat(max_tokens=2), auth).status == 200:
                    break
                time.sleep(0.05)
            else:
                self.fail("the stream slot was not released when the first client left")


class Cors(unittest.TestCase):
    def test_preflight_headers_and_websocket_origin(self):
        with Server("--cors-origin", "https://app.example") as srv:
            pre = get(srv.port, "/v1/chat/completions", {"Origin": "https://app.example"})  # GET: 405
            self.assertEqual(pre.status, 405)
            self.assertEqual(pre.header("access-control-allow-origin"), "https://app.example")
            with connect(srv.port) as s:
                s.sendall(b"OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n"
                          b"Access-Control-Request-Method: POST\r\n"
                          b"Access-Control-Request-Headers: authorization, content-type, x-stainless-os\r\n\r\n")
                r = ResponseReader(s).read(head_only=True)
                self.assertEqual(r.status, 204)
                self.assertIsNone(r.header("content-length"))
                self.assertEqual(r.header("access-control-allow-origin"), "https://app.example")
                self.assertEqual(r.header("access-control-allow-methods"), "POST, OPTIONS")
                self.assertEqual(r.header("access-control-allow-headers"),
                                 "authorization, content-type, x-stainless-os")
                self.assertEqual(r.header("vary"), "Origin")
            with connect(srv.port) as s:
                s.sendall(b"OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n"
                          b"Access-Control-Request-Method: POST\r\n\r\n")
                assert_error_envelope(self, ResponseReader(s).read(), 403, "origin_not_allowed")
            ok = post_json(srv.port, "/v1/chat/completions", chat(max_tokens=2), {"Origin": "https://app.example"})
            self.assertEqual(ok.header("access-control-allow-origin"), "https://app.example")
            self.assertIn("x-request-id", ok.header("access-control-expose-headers"))
            other = post_json(srv.port, "/v1/chat/completions", chat(max_tokens=2), {"Origin": "https://evil.example"})
            self.assertIsNone(other.header("access-control-allow-origin"))
            sse = post_json(srv.port, "/v1/chat/completions", chat(stream=True, max_tokens=2),
                            {"Origin": "https://app.example"})
            self.assertEqual(sse.header("access-control-allow-origin"), "https://app.example")

            async def ws():
                with self.assertRaises(websockets.InvalidStatusCode) as ctx:
                    await websockets.connect(f"ws://127.0.0.1:{srv.port}/ws", origin="https://evil.example")
                self.assertEqual(ctx.exception.status_code, 403)
                async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws", origin="https://app.example"):
                    pass
            asyncio.run(ws())

    def test_wildcard(self):
        with Server("--cors-origin", "*") as srv:
            r = get(srv.port, "/v1/models", {"Origin": "https://anyone.example"})
            self.assertEqual(r.header("access-control-allow-origin"), "*")
            self.assertIsNone(r.header("access-control-allow-credentials"))


class EngineQueue(unittest.TestCase):
    def open_stream(self, port, max_tokens=200, headers=""):
        s = connect(port)
        body = json.dumps(chat(stream=True, max_tokens=max_tokens)).encode()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + headers.encode() +
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return s

    def test_full_queue_is_503_at_once_and_shed_after_waiting(self):
        args = ["--engine-concurrency-max", "1", "--engine-queue-max", "1",
                "--shed-queue-delay-ms", "300", "--mock-tokens-per-s", "10"]
        with Server(*args) as srv:
            running = self.open_stream(srv.port, max_tokens=8)      # takes the only slot
            self.assertEqual(ResponseReader(running).read(head_only=True).status, 200)
            waiting = self.open_stream(srv.port)                    # waits in the queue
            time.sleep(0.1)
            full = post_json(srv.port, "/v1/chat/completions", chat(stream=True))
            assert_error_envelope(self, full, 503, "queue_full")
            self.assertGreaterEqual(int(full.header("retry-after")), 1)
            self.assertIsNotNone(full.header("retry-after-ms"))
            # The queued one waited ~0.8 s for the slot (> 300 ms): shed, as a plain 503.
            shed = ResponseReader(waiting, timeout=10).read()
            err = assert_error_envelope(self, shed, 503, "shed")
            self.assertIsNotNone(shed.header("retry-after"))
            running.close()
            waiting.close()
            samples = metrics(srv.port)
            for reason in ("queue_full", "shed"):
                self.assertEqual(metric_sum(samples, "ringcast_admission_rejected_total",
                                            reason=reason), 1)

    def test_ws_queue_full_pauses_flow(self):
        async def run(srv):
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws") as ws:
                for i in range(3):
                    await ws.send(json.dumps({"id": f"c{i}", "action": "chat.completion",
                                              "payload": chat(max_tokens=20)}))
                events = []
                while not any(e.get("event") == "flow.resume" for e in events):
                    events.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
                return events
        with Server("--engine-concurrency-max", "1", "--engine-queue-max", "1",
                    "--mock-tokens-per-s", "50", "--shed-queue-delay-ms", "0") as srv:
            events = asyncio.run(run(srv))
            errors = [e for e in events if e.get("event") == "error"]
            self.assertEqual([(e["id"], e["error"]["code"], e["error"]["status"]) for e in errors],
                             [("c2", "queue_full", 503)])
            kinds = [e.get("event") for e in events]
            self.assertLess(kinds.index("flow.pause"), kinds.index("flow.resume"))


class Deadlines(unittest.TestCase):
    def test_deadline_ends_streams_and_requests(self):
        with Server("--mock-tokens-per-s", "20", "--request-timeout-max-ms", "60000") as srv:
            r = post_json(srv.port, "/v1/chat/completions", chat(stream=True, max_tokens=100),
                          {"x-ringcast-timeout-ms": "300"})
            last = json.loads(sse_events(r.body)[-1][1])
            self.assertEqual(last["error"]["code"], "deadline_exceeded")
            r = post_json(srv.port, "/v1/chat/completions", chat(max_tokens=100),
                          {"x-ringcast-timeout-ms": "300"})
            assert_error_envelope(self, r, 504, "deadline_exceeded")
            r = post_json(srv.port, "/v1/responses", {"model": MODEL, "input": "x", "stream": True,
                                                      "max_output_tokens": 100},
                          {"x-ringcast-timeout-ms": "300"})
            etype, data = sse_events(r.body)[-1]
            self.assertEqual((etype, json.loads(data)["code"]), ("error", "deadline_exceeded"))
            samples = metrics(srv.port)
            self.assertEqual(metric_sum(samples, "ringcast_admission_rejected_total",
                                        reason="deadline"), 3)
            self.assertEqual(metric_sum(samples, "ringcast_engine_streams"), 0)

    def test_server_maximum_caps_the_header(self):
        with Server("--mock-tokens-per-s", "20", "--request-timeout-max-ms", "300") as srv:
            r = post_json(srv.port, "/v1/chat/completions", chat(max_tokens=100),
                          {"x-ringcast-timeout-ms": "600000"})
            assert_error_envelope(self, r, 504, "deadline_exceeded")


if __name__ == "__main__":
    unittest.main()
