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

from harness import Server, assert_error_envelope, metric, metric_sum, metrics
from openai_client import (chat_from_json, chat_from_sse, chat_from_ws, post_json, responses_from_events,
                           responses_summary, sse_events, ws_collect)
from upstream_fake import FakeUpstream, chat_chunk, make_test_ca, usage_chunk

MOCK = "ringcast-mock"


def config_text(url, api="both", upstream_model=MOCK, key_env=None, settings=None):
    values = {"retries_max": 2, "backoff_base_ms": 10, "backoff_cap_ms": 50, "breaker_failures": 100}
    values.update(settings or {})
    lines = "\n".join(f"{k} = {v}" for k, v in values.items())
    urls = ", ".join(f'"{u}"' for u in (url if isinstance(url, list) else [url]))
    return f"""
[[upstreams]]
name = "u"
kind = "openai"
endpoints = [{urls}]
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

    def test_responses_follow_up_on_an_upstream_that_keeps_them(self):
        with Server() as up, Front(up.url("/v1")) as front:
            first = post_json(front.port, "/v1/responses", {"model": "relay", "input": "first"})
            self.assertEqual(first.status, 200, first.body)
            r1 = first.json()
            follow = post_json(front.port, "/v1/responses", {"model": "relay", "input": "next",
                                                             "previous_response_id": r1["id"]})
            self.assertEqual(follow.status, 200, follow.body)
            self.assertEqual(follow.json()["previous_response_id"], r1["id"])
            self.assertGreater(follow.json()["usage"]["input_tokens"], r1["usage"]["input_tokens"])

    def test_chat_over_a_responses_only_upstream(self):
        with Server() as up, Front(up.url("/v1"), api="responses") as front:
            r = post_json(front.port, "/v1/chat/completions", chat(max_tokens=20))
            self.assertEqual(r.status, 200, r.body)
            got = chat_from_json(r.json())
            self.assertTrue(got["choices"][0]["text"])
            self.assertEqual(got["choices"][0]["finish"], "length")
            self.assertGreater(got["usage"]["completion_tokens"], 0)

    def test_tool_calls_survive_translation_both_ways(self):
        chat_tools = [{"type": "function", "function": {"name": "lookup", "description": "find",
                       "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]
        resp_tools = [{"type": "function", "name": "lookup", "description": "find",
                       "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}]
        with Server() as up:
            direct = post_json(up.port, "/v1/chat/completions",
                               chat("use lookup", model=MOCK, tools=chat_tools, tool_choice="required")).json()
            want = chat_from_json(direct)["choices"][0]["tool_calls"]
            self.assertTrue(want)
            with Front(up.url("/v1"), api="chat") as front:  # Responses -> chat
                r = post_json(front.port, "/v1/responses", {"model": "relay", "input": "use lookup",
                                                            "tools": resp_tools, "tool_choice": "required"})
                self.assertEqual(r.status, 200, r.body)
                calls = [(i["name"], i["arguments"]) for i in r.json()["output"] if i["type"] == "function_call"]
                self.assertEqual(calls, want)
                call_id = next(i["call_id"] for i in r.json()["output"] if i["type"] == "function_call")
                follow = post_json(front.port, "/v1/responses", {
                    "model": "relay", "previous_response_id": r.json()["id"], "tools": resp_tools,
                    "input": [{"type": "function_call_output", "call_id": call_id, "output": "42"}]})
                self.assertEqual(follow.status, 200, follow.body)
            with Front(up.url("/v1"), api="responses") as front:  # chat -> Responses
                r = post_json(front.port, "/v1/chat/completions",
                              chat("use lookup", tools=chat_tools, tool_choice="required", stream=True))
                self.assertEqual(r.status, 200, r.body)
                got = chat_from_sse(r.body)["choices"][0]
                self.assertEqual(got["tool_calls"], want)
                self.assertEqual(got["finish"], "tool_calls")

    def test_ws_fronts_get_typed_events(self):
        with Server() as up, Front(up.url("/v1")) as front:
            direct = chat_from_json(post_json(up.port, "/v1/chat/completions", chat(model=MOCK, max_tokens=9)).json())
            events = asyncio.run(ws_collect(f"ws://127.0.0.1:{front.port}/ws",
                                            [{"id": "c1", "action": "chat.completion", "payload": chat(max_tokens=9)}],
                                            lambda ev: ev and ev[-1]["event"] in ("chat.complete", "error")))
            self.assertEqual(chat_from_ws(events), direct)

    def test_responses_websocket_mode_decodes_the_upstreams_events(self):
        with Server() as up, Front(up.url("/v1")) as front:
            body = {"model": "relay", "input": "over a socket", "max_output_tokens": 20}
            direct = responses_summary(post_json(up.port, "/v1/responses", dict(body, model=MOCK)).json())
            events = asyncio.run(ws_collect(f"ws://127.0.0.1:{front.port}/v1/responses",
                                            [dict(body, type="response.create")],
                                            lambda ev: ev and ev[-1]["type"] in ("response.completed", "response.incomplete", "error")))
            self.assertEqual(responses_from_events([(e["type"], e) for e in events]), direct)

    def test_follow_ups_of_responses_ringcast_minted_on_a_responses_upstream(self):
        # The WebSocket mode renders typed events: ringcast mints the ids and keeps the
        # conversation; a follow-up replays it to the upstream, which never saw that id.
        async def conversation(port):
            url = f"ws://127.0.0.1:{port}/v1/responses"
            done = lambda ev: ev and ev[-1]["type"] in ("response.completed", "response.incomplete", "error")
            first = await ws_collect(url, [{"type": "response.create", "model": "relay", "input": "first"}], done)
            r1 = first[-1]["response"]
            second = await ws_collect(url, [{"type": "response.create", "model": "relay", "input": "second",
                                             "previous_response_id": r1["id"]}], done)
            return r1, second[-1]

        with Server() as up, Front(up.url("/v1"), api="responses") as front:
            r1, last = asyncio.run(conversation(front.port))
            self.assertEqual(last["type"], "response.completed", last)
            self.assertGreater(last["response"]["usage"]["input_tokens"], r1["usage"]["input_tokens"])
            # And over HTTP (passed through) the same follow-up works too.
            r = post_json(front.port, "/v1/responses", {"model": "relay", "input": "third",
                                                        "previous_response_id": r1["id"]})
            self.assertEqual(r.status, 200, r.body)

    def test_embeddings_are_forwarded(self):
        with Server() as up, Front(up.url("/v1")) as front:
            body = {"model": "relay", "input": ["one text", "another"], "encoding_format": "float"}
            direct = post_json(up.port, "/v1/embeddings", dict(body, model=MOCK)).json()
            r = post_json(front.port, "/v1/embeddings", body)
            self.assertEqual(r.status, 200, r.body)
            got = r.json()
            self.assertEqual(got["model"], "relay")
            self.assertEqual(len(got["data"]), 2)
            for mine, theirs in zip(got["data"], direct["data"]):
                self.assertEqual(len(mine["embedding"]), len(theirs["embedding"]))
                for a, b in zip(mine["embedding"], theirs["embedding"]):
                    self.assertAlmostEqual(a, b, places=5)
            self.assertEqual(got["usage"]["prompt_tokens"], direct["usage"]["prompt_tokens"])

    def test_metrics_per_upstream(self):
        with Server() as up, Front(up.url("/v1")) as front:
            endpoint = f"http://127.0.0.1:{up.port}/v1"
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and metric(  # the start-up model list is done
                    metrics(front.port), "ringcast_upstream_endpoint_connections", upstream="u",
                    endpoint=endpoint, state="idle") != 1:
                time.sleep(0.01)
            for stream in (False, True, False):
                self.assertEqual(post_json(front.port, "/v1/chat/completions", chat(max_tokens=3, stream=stream)).status, 200)
            # Finished requests leave their connection in the pool: one connection served the model
            # list and the three requests (the other one is this /metrics request's).
            self.assertEqual(metric_sum(metrics(up.port), "ringcast_connections_accepted_total"), 2)
            m = metrics(front.port)
            self.assertEqual(metric(m, "ringcast_upstream_requests_total", upstream="u"), 3)
            self.assertEqual(metric(m, "ringcast_upstream_first_token_seconds_count", upstream="u"), 3)
            # The endpoint also served the model list the engine asked for at start-up.
            self.assertEqual(metric(m, "ringcast_upstream_endpoint_requests_total", upstream="u",
                                    endpoint=endpoint), 4)


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

    def test_what_comes_back_reaches_the_client_unchanged(self):
        logprobs = {"content": [{"token": "hi", "logprob": -0.25, "bytes": [104, 105], "top_logprobs": []}]}
        first = dict(chat_chunk("hi"), system_fingerprint="fp_up", x_vendor={"a": 1})
        first["choices"][0]["logprobs"] = logprobs
        with FakeUpstream(sse_script([first, chat_chunk(finish="stop"), usage_chunk()])) as fake, \
                Front(fake.url(), upstream_model="up-model") as front:
            r = post_json(front.port, "/v1/chat/completions", chat(stream=True, logprobs=True))
            self.assertEqual(r.status, 200, r.body)
            chunks = [json.loads(d) for _, d in sse_events(r.body) if d != "[DONE]"]
            self.assertEqual(chunks[0], dict(first, model="relay"))
            self.assertEqual(len(chunks), 2)  # the usage chunk was ringcast's idea, not the client's

        whole = {"id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "up-model",
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "refusal": "I can't"},
                              "logprobs": None, "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}, "x_vendor": [1]}

        def answer(req, ex, index):
            ex.json_answer(200, whole)
        with FakeUpstream(answer) as fake, Front(fake.url(), upstream_model="up-model") as front:
            r = post_json(front.port, "/v1/chat/completions", chat())
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json(), dict(whole, model="relay"))

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

    def test_a_slow_reader_gets_everything_while_the_upstream_is_held_back(self):
        # Small watermarks: the client's backlog pauses the engine, which stops reading the
        # upstream (TCP flow control holds it back) and resumes when the client catches up.
        pieces = [f"{i:05d}" + "x" * 995 for i in range(6000)]  # more than the kernel buffers hold
        with FakeUpstream(sse_script([chat_chunk(p) for p in pieces] + [chat_chunk(finish="stop")])) as fake, \
                Front(fake.url(), "--stream-low-bytes", "4096", "--stream-high-bytes", "16384") as front:
            from harness import ResponseReader, connect
            raw = json.dumps(chat(stream=True)).encode()
            with connect(front.port, timeout=30) as s:
                s.sendall((f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           f"Content-Length: {len(raw)}\r\n\r\n").encode() + raw)
                time.sleep(1.0)  # let the backlog build up before reading anything
                r = ResponseReader(s, 30).read()
            self.assertEqual(r.status, 200)
            self.assertEqual(chat_from_sse(r.body)["choices"][0]["text"], "".join(pieces))
            m = metrics(front.port)
            self.assertGreater(metric_sum(m, "ringcast_backpressure_pauses_total") or 0, 0)
            self.assertEqual(fake.errors, [])

    def test_responses_errors_before_and_after_the_first_event(self):
        created = {"type": "response.created", "sequence_number": 0,
                   "response": {"id": "resp_up", "object": "response", "model": "up-model", "status": "in_progress", "output": []}}
        delta = {"type": "response.output_text.delta", "sequence_number": 1, "item_id": "msg_1",
                 "output_index": 0, "content_index": 0, "delta": "par"}
        failed = {"type": "response.failed", "sequence_number": 2,
                  "response": {"id": "resp_up", "object": "response", "model": "up-model", "status": "failed", "output": [],
                               "error": {"code": "server_error", "message": "the model crashed"}}}
        early_error = {"type": "error", "sequence_number": 0, "code": "server_is_sad", "message": "sad", "param": None}

        def script(req, ex, index):
            ex.head(200)
            for e in ([early_error] if index == 0 else [created, delta, failed]):
                ex.sse(e, event=e["type"])
            ex.end()

        with FakeUpstream(script) as fake, Front(fake.url(), api="responses") as front:
            body = {"model": "relay", "input": "x", "stream": True}
            first = post_json(front.port, "/v1/responses", body)
            self.assertEqual(first.status, 502, first.body)  # nothing was sent yet: an HTTP error
            self.assertEqual(first.json()["error"]["code"], "server_is_sad")
            second = post_json(front.port, "/v1/responses", body)
            self.assertEqual(second.status, 200)
            events = [(t, json.loads(d)) for t, d in sse_events(second.body)]
            self.assertEqual([t for t, _ in events], ["response.created", "response.output_text.delta", "response.failed"])
            self.assertEqual(events[2][1]["response"]["model"], "relay")
            self.assertEqual(events[2][1]["response"]["error"]["message"], "the model crashed")

    def test_a_dead_endpoint_is_retried_elsewhere_and_its_breaker_opens(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
        s.close()
        with FakeUpstream(sse_script([chat_chunk("ok"), chat_chunk(finish="stop")])) as fake, \
                Front([dead, fake.url()], settings={"breaker_failures": 2, "breaker_cooldown_ms": 60000}) as front:
            for _ in range(6):
                r = post_json(front.port, "/v1/chat/completions", chat(stream=True))
                self.assertEqual(r.status, 200, r.body)
                self.assertEqual(chat_from_sse(r.body)["choices"][0]["text"], "ok")
            self.assertEqual(len(fake.requests), 6)
            m = metrics(front.port)
            self.assertEqual(metric(m, "ringcast_upstream_endpoint_breaker_open", upstream="u", endpoint=dead), 1)
            self.assertEqual(metric(m, "ringcast_upstream_endpoint_breaker_open", upstream="u", endpoint=fake.url()), 0)
            self.assertLessEqual(metric(m, "ringcast_upstream_errors_total", upstream="u", kind="connect_failed"), 2)

    def test_https_upstream_with_the_configured_ca(self):
        with tempfile.TemporaryDirectory() as d:
            ca, cert, key = make_test_ca(d)
            with FakeUpstream(sse_script([chat_chunk("secure"), chat_chunk(finish="stop")]), tls=(cert, key)) as fake:
                for host in ("localhost", "127.0.0.1"):  # a name (SNI, DNS SAN) and an IP literal (IP SAN)
                    with Front(fake.url(host=host), settings={"ca_file": f'"{ca}"'}) as front:
                        r = post_json(front.port, "/v1/chat/completions", chat(stream=True))
                        self.assertEqual(r.status, 200, r.body)
                        self.assertEqual(chat_from_sse(r.body)["choices"][0]["text"], "secure")
                with Front(fake.url(host="localhost"), settings={"retries_max": 0}) as front:  # the system store
                    r = post_json(front.port, "/v1/chat/completions", chat())
                    err = assert_error_envelope(self, r, 502)
                    self.assertEqual(err["code"], "upstream_tls_error")
                with Front(fake.url(host="localhost"), settings={"tls_verify": "false"}) as front:
                    self.assertEqual(post_json(front.port, "/v1/chat/completions", chat(stream=True)).status, 200)

    def test_the_model_list_is_asked_again_after_a_failure(self):
        with FakeUpstream(sse_script([chat_chunk("x"), chat_chunk(finish="stop")]), models_failures=1) as fake, \
                Server("--upstream", fake.url()) as front:
            from harness import get
            self.assertEqual(get(front.port, "/v1/models").json()["data"], [])
            time.sleep(5.5)  # the engine asks again, at a request, 5 s after a failed list
            self.assertEqual(post_json(front.port, "/v1/chat/completions", chat(model="up-model")).status, 200)
            deadline = time.monotonic() + 10
            ids = []
            while time.monotonic() < deadline and not ids:
                ids = [m["id"] for m in get(front.port, "/v1/models").json()["data"]]
                time.sleep(0.05)
            self.assertEqual(ids, ["up-model"])
            self.assertEqual(fake.model_requests, 2)

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
