"""The openai engine's error statuses end to end: what a client gets, as an HTTP status and
envelope, when the upstream refuses, fails, is unreachable or too slow (the front answers the
engine's first event as a plain error: lazy start), and the request's own headers upstream."""

import socket
import unittest

from harness import ResponseReader, Server, assert_error_envelope, connect, metric, metrics
from openai_client import chat_from_sse, post_json
from test_upstream_openai import Front, chat, sse_script
from upstream_fake import FakeUpstream, chat_chunk, usage_chunk


class UpstreamErrors(unittest.TestCase):
    def test_the_upstreams_error_envelope_passes_through(self):
        with Server() as up, Front(up.url("/v1"), upstream_model="no-such-model") as front:
            r = post_json(front.port, "/v1/chat/completions", chat())
            err = assert_error_envelope(self, r, 404)
            self.assertEqual(err["code"], "model_not_found")

    def test_a_refusal_is_a_status_also_for_streams(self):
        with Server() as up, Front(up.url("/v1"), upstream_model="no-such-model") as front:
            for path, body in (("/v1/chat/completions", chat(stream=True)),
                               ("/v1/responses", {"model": "relay", "input": "x", "stream": True})):
                err = assert_error_envelope(self, post_json(front.port, path, body), 404)
                self.assertEqual(err["code"], "model_not_found")

    def test_upstream_key_from_the_config_never_the_clients(self):
        with Server("--api-key", "sk-upstream-key") as up:
            with Front(up.url("/v1"), "--api-key", "sk-front-key", key_env="RC_TEST_KEY",
                       env={"RC_TEST_KEY": "sk-upstream-key"}) as front:
                r = post_json(front.port, "/v1/chat/completions", chat(),
                              headers={"Authorization": "Bearer sk-front-key"})
                self.assertEqual(r.status, 200, r.body)
            with Front(up.url("/v1"), key_env="RC_TEST_KEY", env={"RC_TEST_KEY": "sk-wrong"}) as front:
                r = post_json(front.port, "/v1/chat/completions", chat(),
                              headers={"Authorization": "Bearer sk-upstream-key"})
                err = assert_error_envelope(self, r, 502)
                self.assertEqual(err["code"], "upstream_auth_failed")

    def test_rate_limit_after_retries_keeps_status_and_retry_after(self):
        def script(req, ex, index):
            ex.json_answer(429, {"error": {"message": "slow down", "type": "requests",
                                           "param": None, "code": "rate_limit_exceeded"}}, {"Retry-After": "0"})
        with FakeUpstream(script) as fake, Front(fake.url()) as front:
            r = post_json(front.port, "/v1/chat/completions", chat())
            err = assert_error_envelope(self, r, 429)
            self.assertEqual(err["message"], "slow down")
            self.assertIsNotNone(r.header("retry-after"))
            self.assertEqual(len(fake.requests), 3)  # 1 + retries_max

    def test_server_errors_after_retries_are_502(self):
        def script(req, ex, index):
            ex.json_answer(503, {"error": {"message": "overloaded", "type": "server_error", "param": None, "code": None}})
        with FakeUpstream(script) as fake, Front(fake.url()) as front:
            err = assert_error_envelope(self, post_json(front.port, "/v1/chat/completions", chat()), 502)
            self.assertEqual(err["code"], "upstream_error")
            self.assertIn("overloaded", err["message"])
            self.assertEqual(len(fake.requests), 3)

    def test_unreachable_upstream_is_503_with_retry_after(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now: connections are refused
        with Front(f"http://127.0.0.1:{port}/v1") as front:
            r = post_json(front.port, "/v1/chat/completions", chat())
            err = assert_error_envelope(self, r, 503)
            self.assertEqual(err["code"], "upstream_unavailable")
            self.assertIsNotNone(r.header("retry-after"))
            m = metrics(front.port)
            self.assertEqual(metric(m, "ringcast_upstream_errors_total", upstream="u", kind="connect_failed"), 3)

    def test_every_breaker_open_is_503_without_trying(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        with Front(f"http://127.0.0.1:{port}/v1", settings={"breaker_failures": 1, "breaker_cooldown_ms": 60000,
                                                             "retries_max": 0}) as front:
            for _ in range(3):
                r = post_json(front.port, "/v1/chat/completions", chat())
                assert_error_envelope(self, r, 503)
                self.assertGreaterEqual(int(r.header("retry-after")), 1)
            m = metrics(front.port)
            # One failure opens the breaker (the start-up model list's, or the first request's):
            # after it, requests are refused without being tried.
            tried = metric(m, "ringcast_upstream_errors_total", upstream="u", kind="connect_failed") or 0
            refused = metric(m, "ringcast_upstream_errors_total", upstream="u", kind="no_endpoint") or 0
            self.assertLessEqual(tried, 1)
            self.assertEqual(tried + refused, 3)

    def test_no_free_pooled_connection_is_503_busy_and_leaves_the_breaker_closed(self):
        def script(req, ex, index):
            if index == 0:  # a long stream holds the only pooled connection
                ex.head()
                ex.sse(chat_chunk("held"))
                ex.client_gone(20)
                return
            sse_script([chat_chunk("ok"), chat_chunk(finish="stop"), usage_chunk()])(req, ex, index)
        settings = {"connections_max": 1, "connect_timeout_ms": 300, "breaker_failures": 2,
                    "breaker_cooldown_ms": 60000, "retries_max": 0}
        with FakeUpstream(script) as fake, Front(fake.url(), settings=settings) as front:
            held = connect(front.port)
            try:
                raw = '{"model":"relay","messages":[{"role":"user","content":"x"}],"stream":true}'
                held.sendall((f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              f"Content-Length: {len(raw)}\r\n\r\n").encode() + raw.encode())
                self.assertEqual(ResponseReader(held, 10).read(head_only=True).status, 200)
                for _ in range(3):  # more than breaker_failures
                    r = post_json(front.port, "/v1/chat/completions", chat())
                    err = assert_error_envelope(self, r, 503)
                    self.assertEqual(err["code"], "upstream_busy")
                    self.assertIsNotNone(r.header("retry-after"))
            finally:  # also when an assertion fails: lets ringcast drain
                held.close()
            self.assertTrue(fake.wait_requests(1))
            # The endpoint was busy, not failing: its breaker stayed closed.
            for _ in range(50):
                r = post_json(front.port, "/v1/chat/completions", chat())
                if r.status == 200:
                    break
            self.assertEqual(r.status, 200, r.body)
            m = metrics(front.port)
            self.assertEqual(metric(m, "ringcast_upstream_errors_total", upstream="u", kind="pool_exhausted"), 3)
            self.assertFalse(metric(m, "ringcast_upstream_errors_total", upstream="u", kind="no_endpoint"))

    def test_first_byte_timeout_is_504(self):
        def script(req, ex, index):
            ex.client_gone(10)  # never answers
        with FakeUpstream(script) as fake, Front(fake.url(), settings={"first_byte_timeout_ms": 300, "retries_max": 0}) as front:
            err = assert_error_envelope(self, post_json(front.port, "/v1/chat/completions", chat()), 504)
            self.assertEqual(err["code"], "upstream_timeout")

    def test_what_the_upstream_receives(self):
        with FakeUpstream(sse_script([chat_chunk("hi"), chat_chunk(finish="stop"), usage_chunk()])) as fake:
            with Front(fake.url(), "--api-key", "sk-client", upstream_model="up-model", key_env="RC_TEST_KEY",
                       env={"RC_TEST_KEY": "sk-upstream"}) as front:
                raw = ('{"model":"relay","messages":[{"role":"user","content":"x"}],"stream":true,'
                       '"top_k":40,"temperature":0.50,"x_vendor":{"a":[1, 2]}}')
                from harness import ResponseReader, connect
                with connect(front.port) as s:
                    s.sendall((f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               f"Authorization: Bearer sk-client\r\nx-request-id: trace-123\r\n"
                               f"Cookie: secret=1\r\nConnection: keep-alive\r\nContent-Length: {len(raw)}\r\n\r\n"
                               ).encode() + raw.encode())
                    r = ResponseReader(s, 10).read()
                self.assertEqual(r.status, 200, r.body)
                self.assertEqual(chat_from_sse(r.body)["choices"][0]["text"], "hi")
                self.assertTrue(fake.wait_requests(1))
                got = fake.requests[0]
                self.assertEqual(got.target, "/v1/chat/completions")
                self.assertEqual(got.header("authorization"), "Bearer sk-upstream")
                self.assertEqual(got.header("x-request-id"), "trace-123")
                self.assertIsNone(got.header("cookie"))
                self.assertEqual(got.body, '{"model":"up-model","messages":[{"role":"user","content":"x"}],'
                                           '"stream":true,"top_k":40,"temperature":0.50,"x_vendor":{"a":[1, 2]},'
                                           '"stream_options":{"include_usage":true}}')


if __name__ == "__main__":
    unittest.main()
