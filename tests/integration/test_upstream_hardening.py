"""The openai engine against upstreams that misbehave in ways a healthy one never does: choice
indexes past n, event names and data that would break the client's SSE framing, embeddings
that fail or outlive their engine (scripted with upstream_fake.py)."""

import asyncio
import json
import signal
import socket
import threading
import time
import unittest

from harness import assert_error_envelope, metric, metrics
from openai_client import chat_from_sse, post_json, sse_events, ws_collect
from test_upstream_openai import Front, chat, config_text, sse_script
from test_upstream_routing import wait_until
from upstream_fake import FakeUpstream, chat_chunk


def ws_chat(port, body):
    return asyncio.run(ws_collect(f"ws://127.0.0.1:{port}/ws",
                                  [{"id": "c1", "action": "chat.completion", "payload": body}],
                                  lambda ev: ev and ev[-1]["event"] in ("chat.complete", "error")))


class ChoiceIndexes(unittest.TestCase):
    def test_a_choice_past_n_is_a_protocol_error(self):
        chunks = [chat_chunk("a", index=1), chat_chunk(finish="stop", index=1)]
        with FakeUpstream(sse_script(chunks)) as fake, Front(fake.url(), api="chat") as front:
            events = ws_chat(front.port, chat())
            self.assertEqual(events[-1]["event"], "error", events)
            self.assertEqual(events[-1]["error"]["code"], "upstream_protocol_error")
            # Over HTTP too (passed through), a chunk for a choice nobody asked for ends the stream.
            r = post_json(front.port, "/v1/chat/completions", chat(stream=True))
            self.assertIn(b"upstream_protocol_error", r.body)

    def test_a_whole_completion_with_a_choice_past_n_is_refused(self):
        whole = {"id": "c", "object": "chat.completion", "created": 1, "model": "up-model",
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": "a"}, "finish_reason": "stop"},
                             {"index": 5, "message": {"role": "assistant", "content": "b"}, "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        with FakeUpstream(lambda req, ex, i: ex.json_answer(200, whole)) as fake, \
                Front(fake.url(), api="chat") as front:
            err = assert_error_envelope(self, post_json(front.port, "/v1/chat/completions", chat()), 502)
            self.assertEqual(err["code"], "upstream_protocol_error")


class SseFraming(unittest.TestCase):
    def test_multi_line_data_is_relayed_as_one_event(self):
        def script(req, ex, index):
            ex.head(200)
            for c in (chat_chunk("hi"), chat_chunk(finish="stop")):
                # One event in several data: lines, one of them empty (valid JSON whitespace).
                lines = json.dumps(c, indent=1).split("\n")
                lines.insert(1, "")
                ex.chunk("".join(f"data: {line}\n" for line in lines) + "\n")
            ex.sse("[DONE]")
            ex.end()
        with FakeUpstream(script) as fake, Front(fake.url(), api="chat") as front:
            r = post_json(front.port, "/v1/chat/completions", chat(stream=True))
            self.assertEqual(r.status, 200, r.body)
            datas = [d for _, d in sse_events(r.body)]
            self.assertEqual(datas[-1], "[DONE]")
            self.assertEqual(len(datas), 3, r.body)
            for d in datas[:-1]:
                json.loads(d)
            self.assertEqual(chat_from_sse(r.body)["choices"][0]["text"], "hi")

    def test_an_event_type_that_is_not_a_token_is_a_protocol_error(self):
        created = {"type": "response.created\n\nevent: injected", "sequence_number": 0,
                   "response": {"id": "resp_up", "object": "response", "model": "up-model",
                                "status": "in_progress", "output": []}}

        def script(req, ex, index):
            ex.head(200)
            ex.sse(created, event="response.created")
            ex.end()
        with FakeUpstream(script) as fake, Front(fake.url(), api="responses") as front:
            r = post_json(front.port, "/v1/responses", {"model": "relay", "input": "x", "stream": True})
            self.assertNotIn(b"event: injected", r.body)
            self.assertIn(b"upstream_protocol_error", r.body)


def trickle(ex, piece, seconds=25):
    """Sends `piece` as a chunk every 20 ms for up to `seconds`, until the client leaves."""
    for _ in range(int(seconds / 0.02)):
        try:
            ex.chunk(piece)
        except (BrokenPipeError, ConnectionResetError):
            return
        time.sleep(0.02)


class EndlessBodies(unittest.TestCase):
    def test_an_endless_error_body_is_cut_at_its_cap(self):
        def script(req, ex, index):
            ex.head(503, "application/json")
            ex.chunk('{"error":{"message":"overloaded","type":"server_error"}}')
            trickle(ex, " " * 65536)
        with FakeUpstream(script) as fake, Front(fake.url(), settings={"retries_max": 0}) as front:
            started = time.monotonic()
            r = post_json(front.port, "/v1/chat/completions", chat(), timeout=20)
            err = assert_error_envelope(self, r, 502)
            self.assertIn("overloaded", err["message"])
            self.assertLess(time.monotonic() - started, 15)  # not held until the upstream stops

    def test_the_grace_after_done_is_not_postponed_by_later_bytes(self):
        def script(req, ex, index):
            ex.head(200)
            ex.sse(chat_chunk("hi"))
            ex.sse(chat_chunk(finish="stop"))
            ex.sse("[DONE]")
            trickle(ex, ": keep-alive\n\n")
        with FakeUpstream(script) as fake, Front(fake.url(), api="chat") as front:
            started = time.monotonic()
            r = post_json(front.port, "/v1/chat/completions", chat(stream=True), timeout=20)
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(chat_from_sse(r.body)["choices"][0]["text"], "hi")
            self.assertLess(time.monotonic() - started, 15)


class ErrorMessages(unittest.TestCase):
    def test_errors_name_the_upstream_not_its_address(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now: connections are refused
        with Front(f"http://127.0.0.1:{port}/v1", settings={"retries_max": 0}) as front:
            err = assert_error_envelope(self, post_json(front.port, "/v1/chat/completions", chat()), 503)
            self.assertEqual(err["code"], "upstream_unavailable")
            self.assertIn("'u'", err["message"])
            self.assertNotIn("127.0.0.1", err["message"])
            self.assertNotIn(str(port), err["message"])


EMBEDDING = {"object": "list", "model": "up-model",
             "data": [{"object": "embedding", "index": 0, "embedding": [0.6, 0.8]}],
             "usage": {"prompt_tokens": 2, "total_tokens": 2}}


class Embeddings(unittest.TestCase):
    def test_an_embedding_in_flight_during_a_reload_is_answered(self):
        release = threading.Event()

        def script(req, ex, index):
            release.wait(20)
            ex.json_answer(200, EMBEDDING)
        with FakeUpstream(script) as fake:
            front_cfg = Front(fake.url())
            with front_cfg as front:
                result = {}
                t = threading.Thread(target=lambda: result.update(r=post_json(
                    front.port, "/v1/embeddings", {"model": "relay", "input": "x"}, timeout=15)))
                t.start()
                self.assertTrue(fake.wait_requests(1))
                # The upstream's settings change: its engine is replaced while the call waits.
                with open(front_cfg.file.name, "w") as f:
                    f.write(config_text(fake.url(), settings={"retries_max": 1}))
                front.send_signal(signal.SIGHUP)
                wait_until("the reload", lambda: "configuration reloaded" in front.log())
                release.set()
                t.join(20)
                self.assertFalse(t.is_alive())
                self.assertEqual(result["r"].status, 200, result["r"].body)
                self.assertEqual(result["r"].json()["data"][0]["embedding"], [0.6, 0.8])


    def test_embedding_failures_map_like_generations_and_are_retried(self):
        def embed(body):
            return {"model": "relay", "input": body}

        def rate_limited(req, ex, index):
            ex.json_answer(429, {"error": {"message": "slow down", "type": "requests", "param": None,
                                           "code": "rate_limit_exceeded"}}, {"Retry-After": "0"})
        with FakeUpstream(rate_limited) as fake, Front(fake.url()) as front:
            r = post_json(front.port, "/v1/embeddings", embed("x"))
            err = assert_error_envelope(self, r, 429)
            self.assertEqual(err["message"], "slow down")
            self.assertIsNotNone(r.header("retry-after"))
            self.assertEqual(len(fake.requests), 3)  # 1 + retries_max

        def refused(req, ex, index):
            ex.json_answer(400, {"error": {"message": "bad dims", "type": "invalid_request_error",
                                           "param": "dimensions", "code": None}})
        with FakeUpstream(refused) as fake, Front(fake.url()) as front:
            err = assert_error_envelope(self, post_json(front.port, "/v1/embeddings", embed("x")), 400)
            self.assertEqual(err["message"], "bad dims")
            self.assertEqual(len(fake.requests), 1)
            m = metrics(front.port)
            self.assertEqual(metric(m, "ringcast_upstream_errors_total", upstream="u", kind="http_4xx"), 1)
            self.assertFalse(metric(m, "ringcast_upstream_errors_total", upstream="u", kind="http_5xx"))

        with FakeUpstream(lambda req, ex, i: ex.json_answer(401, {"error": {"message": "no", "type": "x"}})) as fake, \
                Front(fake.url()) as front:
            err = assert_error_envelope(self, post_json(front.port, "/v1/embeddings", embed("x")), 502)
            self.assertEqual(err["code"], "upstream_auth_failed")

        def flaky(req, ex, index):
            if index == 0:
                ex.json_answer(503, {"error": {"message": "busy", "type": "server_error"}})
            else:
                ex.json_answer(200, EMBEDDING)
        with FakeUpstream(flaky) as fake, Front(fake.url()) as front:
            r = post_json(front.port, "/v1/embeddings", embed("x"))
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(len(fake.requests), 2)

        with FakeUpstream(lambda req, ex, i: ex.client_gone(10)) as fake, \
                Front(fake.url(), settings={"first_byte_timeout_ms": 300, "retries_max": 0}) as front:
            err = assert_error_envelope(self, post_json(front.port, "/v1/embeddings", embed("x")), 504)
            self.assertEqual(err["code"], "upstream_timeout")


if __name__ == "__main__":
    unittest.main()
