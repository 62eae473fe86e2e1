"""The openai upstream engine end to end: a front ringcast relaying to a second ringcast on mock
(a real OpenAI-compatible upstream) and to scripted fakes (upstream_fake.py) for what a healthy
upstream never does: rate limits, outages, drops, malformed streams, slow answers."""

import asyncio
import json
import os
import socket
import tempfile
import time
import unittest

from harness import Server, assert_error_envelope, metric, metrics
from openai_client import (chat_from_json, chat_from_sse, chat_from_ws, post_json, responses_from_events,
                           responses_summary, sse_events, ws_collect)
from upstream_fake import FakeUpstream, chat_chunk, usage_chunk

MOCK = "ringcast-mock"


def config_text(url, api="both", upstream_model=MOCK, key_env=None, settings=None):
    values = {"retries_max": 2, "backoff_base_ms": 10, "backoff_cap_ms": 50, "breaker_failures": 100}
    values.update(settings or {})
    lines = "\n".join(f"{k} = {v}" for k, v in values.items())
    return f"""
[[upstreams]]
name = "u"
kind = "openai"
endpoints = ["{url}"]
api = "{api}"
{lines}
{f'api_key_env = "{key_env}"' if key_env else ''}

[[models]]
name = "relay"
upstream = "u"
upstream_model = "{upstream_model}"
"""


class Front:
    """A ringcast whose model "relay" goes to the upstream at `url`."""

    def __init__(self, url, *args, env=None, **kw):
        self.file = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
        self.file.write(config_text(url, **kw))
        self.file.close()
        self.server = Server("--config", self.file.name, *args, env=env)

    def __enter__(self):
        return self.server

    def __exit__(self, *exc):
        try:
            self.server.__exit__(*exc)
        finally:
            os.unlink(self.file.name)


def chat(text="Hello", model="relay", **kw):
    return dict({"model": model, "messages": [{"role": "user", "content": text}]}, **kw)


def error_of_stream(body):
    """The error object of a chat SSE stream that ended with one, else None."""
    for _, data in sse_events(body):
        if data != "[DONE]" and "error" in json.loads(data):
            return json.loads(data)["error"]
    return None


class RelayToRingcast(unittest.TestCase):
    """Front -> upstream ringcast on mock: what the client sees equals what mock answers."""

    def test_chat_json_and_stream_match_the_mock(self):
        with Server() as up, Front(up.url("/v1")) as front:
            for body in (chat(max_tokens=12), chat("tools please", tools=[{"type": "function", "function": {
                    "name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
                    tool_choice="required")):
                direct = post_json(up.port, "/v1/chat/completions", dict(body, model=MOCK))
                relayed = post_json(front.port, "/v1/chat/completions", body)
                self.assertEqual(relayed.status, 200, relayed.body)
                self.assertEqual(relayed.json()["model"], "relay")
                self.assertEqual(chat_from_json(relayed.json()), chat_from_json(direct.json()))
                s = post_json(front.port, "/v1/chat/completions",
                              dict(body, stream=True, stream_options={"include_usage": True}))
                self.assertEqual(s.status, 200)
                self.assertEqual(chat_from_sse(s.body), chat_from_json(direct.json()))
                chunks = [json.loads(d) for _, d in sse_events(s.body) if d != "[DONE]"]
                self.assertTrue(all(c["model"] == "relay" for c in chunks))

    def test_usage_chunk_only_when_the_client_asked(self):
        with Server() as up, Front(up.url("/v1")) as front:
            s = post_json(front.port, "/v1/chat/completions", chat(stream=True, max_tokens=5))
            self.assertEqual(s.status, 200)
            events = sse_events(s.body)
            self.assertEqual(events[-1][1], "[DONE]")
            chunks = [json.loads(d) for _, d in events[:-1]]
            self.assertFalse(any(c.get("usage") for c in chunks), chunks[-1])
            self.assertTrue(all(c["choices"] for c in chunks))

    def test_responses_stream_and_json(self):
        with Server() as up, Front(up.url("/v1")) as front:
            body = {"model": "relay", "input": "Tell me", "max_output_tokens": 20}
            direct = post_json(up.port, "/v1/responses", dict(body, model=MOCK)).json()
            j = post_json(front.port, "/v1/responses", body)
            self.assertEqual(j.status, 200, j.body)
            self.assertEqual(j.json()["model"], "relay")
            self.assertEqual(responses_summary(j.json()), responses_summary(direct))
            s = post_json(front.port, "/v1/responses", dict(body, stream=True))
            events = [(t, json.loads(d)) for t, d in sse_events(s.body)]
            self.assertEqual(events[0][1]["response"]["model"], "relay")
            self.assertEqual(responses_from_events(events), responses_summary(direct))

    def test_responses_over_a_chat_only_upstream_keep_the_conversation(self):
        with Server() as up, Front(up.url("/v1"), api="chat") as front:
            first = post_json(front.port, "/v1/responses", {"model": "relay", "input": "first question",
                                                            "instructions": "Be brief."})
            self.assertEqual(first.status, 200, first.body)
            r1 = first.json()
            self.assertEqual(r1["status"], "completed")
            self.assertTrue(r1["output"][0]["content"][0]["text"])
            s = post_json(front.port, "/v1/responses", {"model": "relay", "input": "and then?", "stream": True,
                                                        "previous_response_id": r1["id"]})
            self.assertEqual(s.status, 200, s.body)
            events = [(t, json.loads(d)) for t, d in sse_events(s.body)]
            summary = responses_from_events(events)
            self.assertEqual(summary["status"], "completed")
            # The upstream saw the whole conversation: more input tokens than the question alone.
            self.assertGreater(summary["usage"]["input_tokens"], r1["usage"]["input_tokens"])

    def test_chat_over_a_responses_only_upstream(self):
        with Server() as up, Front(up.url("/v1"), api="responses") as front:
            r = post_json(front.port, "/v1/chat/completions", chat(max_tokens=20))
            self.assertEqual(r.status, 200, r.body)
            got = chat_from_json(r.json())
            self.assertTrue(got["choices"][0]["text"])
            self.assertEqual(got["choices"][0]["finish"], "length")
            self.assertGreater(got["usage"]["completion_tokens"], 0)

    def test_ws_fronts_get_typed_events(self):
        with Server() as up, Front(up.url("/v1")) as front:
            direct = chat_from_json(post_json(up.port, "/v1/chat/completions", chat(model=MOCK, max_tokens=9)).json())
            events = asyncio.run(ws_collect(f"ws://127.0.0.1:{front.port}/ws",
                                            [{"id": "c1", "action": "chat.completion", "payload": chat(max_tokens=9)}],
                                            lambda ev: ev and ev[-1]["event"] in ("chat.complete", "error")))
            self.assertEqual(chat_from_ws(events), direct)

    def test_metrics_per_upstream(self):
        with Server() as up, Front(up.url("/v1")) as front:
            for _ in range(3):
                self.assertEqual(post_json(front.port, "/v1/chat/completions", chat(max_tokens=3)).status, 200)
            m = metrics(front.port)
            self.assertEqual(metric(m, "ringcast_upstream_requests_total", upstream="u"), 3)
            self.assertEqual(metric(m, "ringcast_upstream_first_token_seconds_count", upstream="u"), 3)
            # The endpoint also served the model list the engine asked for at start-up.
            self.assertEqual(metric(m, "ringcast_upstream_endpoint_requests_total", upstream="u",
                                    endpoint=f"http://127.0.0.1:{up.port}/v1"), 4)


def sse_script(chunks, status=200):
    def script(req, ex, index):
        ex.head(status)
        for c in chunks:
            ex.sse(c)
        ex.sse("[DONE]")
        ex.end()
    return script


class Faults(unittest.TestCase):
    """Front -> a scripted fake upstream."""

    def test_rate_limit_is_retried_after_the_upstreams_delay(self):
        def script(req, ex, index):
            if index == 0:
                ex.json_answer(429, {"error": {"message": "slow down", "type": "requests",
                                               "param": None, "code": "rate_limit_exceeded"}}, {"Retry-After": "0"})
            else:
                sse_script([chat_chunk("ok"), chat_chunk(finish="stop")])(req, ex, index)
        with FakeUpstream(script) as fake, Front(fake.url()) as front:
            r = post_json(front.port, "/v1/chat/completions", chat(stream=True))
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(chat_from_sse(r.body)["choices"][0]["text"], "ok")
            self.assertEqual(len(fake.requests), 2)
            self.assertEqual(metric(metrics(front.port), "ringcast_upstream_retries_total", upstream="u"), 1)

    def test_a_drop_mid_stream_ends_the_stream_with_an_error(self):
        def script(req, ex, index):
            ex.head(200)
            ex.sse(chat_chunk("partial"))
            ex.sock.shutdown(socket.SHUT_RDWR)
        with FakeUpstream(script) as fake, Front(fake.url()) as front:
            r = post_json(front.port, "/v1/chat/completions", chat(stream=True))
            self.assertEqual(r.status, 200)
            self.assertEqual(chat_from_sse(r.body.split(b"data: {\"error\"")[0])["choices"][0]["text"], "partial")
            self.assertEqual(error_of_stream(r.body)["code"], "upstream_disconnected")
            self.assertEqual(len(fake.requests), 1)  # never retried after the first byte

    def test_a_malformed_event_is_a_protocol_error(self):
        with FakeUpstream(sse_script([chat_chunk("a"), "{not json"])) as fake, Front(fake.url()) as front:
            r = post_json(front.port, "/v1/chat/completions", chat(stream=True))
            self.assertEqual(error_of_stream(r.body)["code"], "upstream_protocol_error")

    def test_a_client_leaving_aborts_the_upstream_request(self):
        gone = []

        def script(req, ex, index):
            ex.head(200)
            ex.sse(chat_chunk("first"))
            gone.append(ex.client_gone(10))

        with FakeUpstream(script) as fake, Front(fake.url()) as front:
            from harness import connect
            raw = json.dumps(chat(stream=True)).encode()
            s = connect(front.port)
            s.sendall((f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(raw)}\r\n\r\n").encode() + raw)
            s.settimeout(10)
            got = b""
            while b"first" not in got:
                got += s.recv(65536)
            left = time.monotonic()
            s.close()
            deadline = time.monotonic() + 10
            while not gone and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertEqual(gone, [True])
            self.assertLess(time.monotonic() - left, 5)


if __name__ == "__main__":
    unittest.main()
