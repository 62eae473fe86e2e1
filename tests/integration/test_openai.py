"""The OpenAI-compatible API on the mock engine: validation, streams, parity across fronts,
golden transcripts, cancellation, WebSocket actions, Responses WebSocket mode and stored
conversations."""

import asyncio
import json
import os
import pathlib
import re
import socket
import time
import unittest

import websockets

from harness import Server, ResponseReader, assert_error_envelope, connect, metric_sum, metrics
from openai_client import (chat_from_json, chat_from_sse, chat_from_ws, normalize, post_json,
                           responses_from_events, responses_summary, sse_events, ws_collect)

MODEL = "ringcast-mock"
GOLDEN = pathlib.Path(__file__).resolve().parent.parent / "golden"
UPDATE_GOLDEN = os.environ.get("RINGCAST_UPDATE_GOLDEN") == "1"

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                   "required": ["city"]}}}]


def chat(messages="Hello", **kw):
    body = {"model": MODEL, "messages": [{"role": "user", "content": messages}]}
    body.update(kw)
    return body


class Validation(unittest.TestCase):
    CASES = [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": MODEL}, "messages"),
        ({"model": MODEL, "messages": "hi"}, "messages"),
        ({"model": MODEL, "messages": []}, "messages"),
        ({"model": MODEL, "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"model": MODEL, "messages": [{"role": "user"}]}, "messages[0].content"),
        (chat(temperature=3), "temperature"),
        (chat(temperature="warm"), "temperature"),
        (chat(top_p=-1), "top_p"),
        (chat(n=0), "n"),
        (chat(max_tokens=0), "max_tokens"),
        (chat(max_tokens=10 ** 7), "max_tokens"),
        (chat(stop=["a", "b", "c", "d", "e"]), "stop"),
        (chat(stream_options={"include_usage": True}), "stream_options"),
        (chat(tools=[{"type": "function", "function": {"name": "bad name!"}}]), "tools[0].function.name"),
        (chat(tool_choice="required"), "tool_choice"),
    ]

    def test_chat_fields_are_named(self):
        with Server() as srv:
            for body, param in self.CASES:
                with self.subTest(param=param):
                    err = assert_error_envelope(self, post_json(srv.port, "/v1/chat/completions", body), 400)
                    self.assertEqual(err["param"], param, err)

    def test_bad_json_unknown_model_and_other_routes(self):
        with Server() as srv:
            with connect(srv.port) as s:
                s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{\"model")
                err = assert_error_envelope(self, ResponseReader(s).read(), 400)
                self.assertIn("could not parse the JSON body", err["message"])
            err = assert_error_envelope(self, post_json(srv.port, "/v1/chat/completions", [1, 2]), 400)
            err = assert_error_envelope(self, post_json(srv.port, "/v1/chat/completions",
                                                        dict(chat(), model="gpt-9")), 404, "model_not_found")
            assert_error_envelope(self, post_json(srv.port, "/v1/embeddings", {"model": MODEL, "input": ""}), 400)
            assert_error_envelope(self, post_json(srv.port, "/v1/embeddings", {"model": MODEL, "input": []}), 400)
            err = assert_error_envelope(self, post_json(srv.port, "/v1/responses", {"model": MODEL}), 400)
            self.assertEqual(err["param"], "input")
            err = assert_error_envelope(self, post_json(srv.port, "/v1/responses",
                                                        {"model": MODEL, "input": "x",
                                                         "previous_response_id": "resp_nope"}),
                                        400, "previous_response_not_found")


class Streams(unittest.TestCase):
    def test_sse_headers_and_heartbeat_before_first_token(self):
        with Server("--mock-first-token-ms", "700", "--heartbeat-ms", "200") as srv:
            r = post_json(srv.port, "/v1/chat/completions", chat(stream=True, max_tokens=2))
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("content-type"), "text/event-stream; charset=utf-8")
            self.assertEqual(r.header("cache-control"), "no-cache")
            self.assertEqual(r.header("x-accel-buffering"), "no")
            text = r.body.decode()
            first_content = re.search(r'"content":"[^"]', text).start()
            self.assertGreaterEqual(text[:first_content].count(": ping\n\n"), 2, text[:400])
            self.assertTrue(text.endswith("data: [DONE]\n\n"))

    def test_mid_stream_errors_are_visible(self):
        prompt = "please fail ringcast-mock:error-after=3"
        with Server() as srv:
            body = json.dumps(chat(prompt, stream=True, max_tokens=10)).encode()
            with connect(srv.port) as s:
                s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                          % len(body) + body)
                reader = ResponseReader(s)
                r = reader.read()
                self.assertTrue(reader.at_eof(), "the connection closes after a failed stream")
            events = sse_events(r.body)
            self.assertEqual(len([d for _, d in events if '"content":"' in d and '"role"' not in d]), 3)
            last = json.loads(events[-1][1])
            self.assertEqual(last["error"]["code"], "mock_error")
            self.assertNotIn("[DONE]", [d for _, d in events])

            r = post_json(srv.port, "/v1/responses", {"model": MODEL, "input": prompt, "stream": True})
            events = sse_events(r.body)
            etype, data = events[-1]
            self.assertEqual(etype, "error")
            err = json.loads(data)
            self.assertEqual((err["type"], err["code"]), ("error", "mock_error"))
            self.assertIn("sequence_number", err)

            r = post_json(srv.port, "/v1/chat/completions", chat(prompt))
            assert_error_envelope(self, r, 500, "mock_error")

    def test_n_choices_and_stop_sequences(self):
        with Server() as srv:
            whole = post_json(srv.port, "/v1/chat/completions", chat("x", n=3, max_tokens=30, seed=5)).json()
            texts = [c["message"]["content"] for c in whole["choices"]]
            self.assertEqual(len(set(texts)), 3)  # choices differ
            stop_at = texts[0].split()[4]
            cut = post_json(srv.port, "/v1/chat/completions",
                            chat("x", n=3, max_tokens=30, seed=5, stop=[stop_at])).json()
            first = cut["choices"][0]
            self.assertEqual(first["finish_reason"], "stop")
            self.assertEqual(first["message"]["content"], texts[0][:texts[0].index(stop_at)])

    def test_topic_header_mirrors_deltas(self):
        async def run(srv):
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws") as ws:
                await ws.send(json.dumps({"id": "w", "action": "subscribe", "payload": {"topic": "gen.1"}}))
                assert json.loads(await ws.recv())["event"] == "subscribed"
                loop = asyncio.get_running_loop()
                r = await loop.run_in_executor(None, lambda: post_json(
                    srv.port, "/v1/chat/completions", chat(stream=True, max_tokens=6),
                    {"x-ringcast-topic": "gen.1"}))
                deltas, done = [], None
                while done is None:
                    m = json.loads(await asyncio.wait_for(ws.recv(), 10))["data"]["data"]
                    if m["type"] == "delta":
                        deltas.append(m["delta"])
                    else:
                        done = m
                return r, deltas, done

        with Server(shards=2) as srv:
            r, deltas, done = asyncio.run(run(srv))
            self.assertEqual("".join(deltas), chat_from_sse(r.body)["choices"][0]["text"])
            self.assertEqual(done["type"], "done")
            self.assertEqual(done["usage"]["completion_tokens"], 6)


class Parity(unittest.TestCase):
    """The same request over every front end gives the same text, tool calls, finish reasons and
    usage."""

    def chat_all_fronts(self, srv, body):
        whole = chat_from_json(post_json(srv.port, "/v1/chat/completions", body).json())
        sse = chat_from_sse(post_json(srv.port, "/v1/chat/completions",
                                      dict(body, stream=True, stream_options={"include_usage": True})).body)
        events = asyncio.run(ws_collect(f"ws://127.0.0.1:{srv.port}/ws",
                                        [{"id": "c1", "action": "chat.completion", "payload": body}],
                                        lambda ev: ev and ev[-1]["event"] in ("chat.complete", "error")))
        ws = chat_from_ws(events)
        return whole, sse, ws

    def test_chat_text(self):
        with Server(shards=2) as srv:
            whole, sse, ws = self.chat_all_fronts(srv, chat("parity please", max_tokens=25, n=2, seed=3))
            self.assertEqual(whole, sse)
            self.assertEqual(whole, ws)

    def test_chat_tool_calls(self):
        with Server() as srv:
            whole, sse, ws = self.chat_all_fronts(srv, chat("weather", tools=TOOLS, tool_choice="required"))
            self.assertEqual(whole["choices"][0]["finish"], "tool_calls")
            self.assertEqual(whole, sse)
            self.assertEqual(whole, ws)

    def test_tool_schemas_that_are_not_objects_are_treated_as_empty(self):
        # A client's schema may hold anything where a schema is expected ("items": true, a
        # property that is a string or a number): the mock treats such a node as an empty schema
        # (a string) instead of failing, and the server keeps answering.
        odd = [{"type": "function", "function": {"name": "odd", "parameters": {
            "type": "object", "required": ["a", "b", "c"],
            "properties": {"a": {"type": "array", "items": True}, "b": "text", "c": 7}}}}]
        with Server() as srv:
            whole, sse, ws = self.chat_all_fronts(srv, chat("odd", tools=odd, tool_choice="required"))
            name, arguments = whole["choices"][0]["tool_calls"][0]
            self.assertEqual(name, "odd")
            args = json.loads(arguments)
            self.assertEqual(set(args), {"a", "b", "c"})
            self.assertEqual(len(args["a"]), 1)
            self.assertIsInstance(args["a"][0], str)
            self.assertIsInstance(args["b"], str)
            self.assertEqual(whole, sse)
            self.assertEqual(whole, ws)

    def test_responses_everywhere(self):
        body = {"model": MODEL, "input": "parity of responses", "instructions": "be brief"}
        with Server() as srv:
            whole = responses_summary(post_json(srv.port, "/v1/responses", body).json())
            sse = responses_from_events([(t, json.loads(d)) for t, d in sse_events(
                post_json(srv.port, "/v1/responses", dict(body, stream=True)).body)])
            mode = asyncio.run(ws_collect(f"ws://127.0.0.1:{srv.port}/v1/responses",
                                          [dict(body, type="response.create")],
                                          lambda ev: ev and ev[-1]["type"] == "response.completed"))
            via_mode = responses_from_events([(e["type"], e) for e in mode])
            broker = asyncio.run(ws_collect(f"ws://127.0.0.1:{srv.port}/ws",
                                            [{"id": "r1", "action": "responses.create", "payload": body}],
                                            lambda ev: ev and ev[-1]["event"] == "response.completed"))
            self.assertTrue(all(e["id"] == "r1" for e in broker))
            via_broker = responses_from_events([(e["event"], e["data"]) for e in broker])
            self.assertEqual(whole, sse)
            self.assertEqual(whole, via_mode)
            self.assertEqual(whole, via_broker)


class Golden(unittest.TestCase):
    """Exact transcripts (ids and clocks normalized), stored in tests/golden/. Regenerate with
    RINGCAST_UPDATE_GOLDEN=1 after an intended change, and review the diff."""

    def check(self, name, text):
        path = GOLDEN / name
        text = normalize(text)
        if UPDATE_GOLDEN:
            path.write_text(text)
        self.assertTrue(path.exists(), f"{path} missing: run with RINGCAST_UPDATE_GOLDEN=1")
        self.assertEqual(text, path.read_text(), f"transcript {name} changed")

    def test_transcripts(self):
        with Server() as srv:
            def sse(path, body):
                return post_json(srv.port, path, body).body.decode()

            def ws(path, msgs, done):
                return "\n".join(json.dumps(e, separators=(",", ":")) for e in asyncio.run(
                    ws_collect(f"ws://127.0.0.1:{srv.port}{path}", msgs, done))) + "\n"

            self.check("chat_stream.sse", sse("/v1/chat/completions", chat(
                "golden", stream=True, max_tokens=8, seed=1, stream_options={"include_usage": True})))
            self.check("chat_stream_tools.sse", sse("/v1/chat/completions", chat(
                "golden tools", stream=True, tools=TOOLS, tool_choice="required")))
            self.check("chat_n2_stop.sse", sse("/v1/chat/completions", chat(
                "golden", stream=True, n=2, max_tokens=12, stop=["."])))
            self.check("responses_stream.sse", sse("/v1/responses", {
                "model": MODEL, "input": "golden", "stream": True, "max_output_tokens": 16}))
            self.check("responses_stream_tools.sse", sse("/v1/responses", {
                "model": MODEL, "input": "golden get_weather", "stream": True,
                "tools": [dict(TOOLS[0]["function"], type="function")]}))
            self.check("ws_chat.jsonl", ws("/ws", [{"id": "g", "action": "chat.completion",
                                                    "payload": chat("golden", max_tokens=6)}],
                                           lambda ev: ev and ev[-1]["event"] == "chat.complete"))
            self.check("ws_responses.jsonl", ws("/v1/responses", [{"type": "response.create", "model": MODEL,
                                                                   "input": "golden"}],
                                                lambda ev: ev and ev[-1]["type"] == "response.completed"))


class Cancellation(unittest.TestCase):
    def test_1000_killed_streams_leave_nothing_behind(self):
        n = 1000
        args = ["--mock-tokens-per-s", "20", "--mock-max-tokens", "100000"]
        with Server(*args, shards=2) as srv:
            socks = []
            body = json.dumps(chat("long", stream=True, max_tokens=10000)).encode()
            head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n").encode()
            for _ in range(n):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
                s.sendall(head + body)
                socks.append(s)
            for s in socks:  # every stream has started: headers and the first chunk arrived
                buf = b""
                while b'"content"' not in buf:
                    buf += s.recv(65536)
            samples = metrics(srv.port)
            self.assertEqual(metric_sum(samples, "ringcast_engine_streams"), n)
            for s in socks:  # the clients vanish mid-stream
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                samples = metrics(srv.port)
                if (metric_sum(samples, "ringcast_engine_streams") == 0 and
                        metric_sum(samples, "ringcast_connections_open", protocol="sse") == 0):
                    break
                time.sleep(0.2)
            self.assertEqual(metric_sum(samples, "ringcast_engine_streams"), 0)
            self.assertEqual(metric_sum(samples, "ringcast_connections_open", protocol="sse"), 0)
            self.assertEqual(metric_sum(samples, "ringcast_outbound_rings"), 0)
            self.assertEqual(metric_sum(samples, "ringcast_engine_streams_total",
                                        outcome="cancelled"), n)
            # Only the metrics connection itself is still open.
            self.assertEqual(metric_sum(samples, "ringcast_connections_open", protocol="http"), 1)


class WebSocketActions(unittest.TestCase):
    def test_actions_and_cancel(self):
        async def run(srv):
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws", max_size=None) as ws:
                async def request(msg):
                    await ws.send(json.dumps(msg))

                async def until(pred):
                    out = []
                    while True:
                        e = json.loads(await asyncio.wait_for(ws.recv(), 10))
                        out.append(e)
                        if pred(e):
                            return out
                await request({"id": "e", "action": "embedding.query",
                               "payload": {"model": MODEL, "input": ["a", "b"], "dimensions": 4}})
                emb = (await until(lambda e: e["id"] == "e"))[-1]
                self.assertEqual(emb["event"], "embedding.result")
                self.assertEqual(len(emb["data"]["data"]), 2)
                self.assertEqual(emb["data"]["usage"]["prompt_tokens"], 2)

                await request({"id": "t", "action": "tool.invoke", "payload": {"name": "add", "arguments": "{\"a\":2,\"b\":3}"}})
                self.assertEqual((await until(lambda e: e["id"] == "t"))[-1]["data"]["output"], {"sum": 5.0})
                await request({"id": "t2", "action": "tool.invoke", "payload": {"name": "nope", "arguments": {}}})
                self.assertEqual((await until(lambda e: e["id"] == "t2"))[-1]["error"]["code"], "unknown_tool")

                # Two concurrent streams; cancel one, the other completes.
                await request({"id": "slow", "action": "chat.completion", "payload": chat("a", max_tokens=500)})
                await request({"id": "fast", "action": "chat.completion", "payload": chat("b", max_tokens=5)})
                await until(lambda e: e["id"] == "slow" and e["event"] == "chat.delta")
                await request({"id": "k", "action": "cancel", "payload": {"target": "slow"}})
                events = await until(lambda e: e["id"] == "slow" and e["event"] == "error")
                self.assertEqual(events[-1]["error"]["code"], "cancelled")
                events += await until(lambda e: e["id"] == "fast" and e["event"] == "chat.complete") \
                    if not any(e["id"] == "fast" and e["event"] == "chat.complete" for e in events) else []
                self.assertTrue(any(e["id"] == "k" and e["event"] == "cancelled" for e in events))
                await request({"id": "k2", "action": "cancel", "payload": {"target": "slow"}})
                self.assertEqual((await until(lambda e: e["id"] == "k2"))[-1]["error"]["code"], "not_found")
                await request({"id": "bad", "action": "chat.completion", "payload": {"model": MODEL}})
                err = (await until(lambda e: e["id"] == "bad"))[-1]
                self.assertEqual(err["event"], "error")

        with Server("--mock-tokens-per-s", "50") as srv:
            asyncio.run(run(srv))
            samples = metrics(srv.port)
            self.assertEqual(metric_sum(samples, "ringcast_engine_streams"), 0)

    def test_flow_control_at_inflight_cap(self):
        async def run(srv):
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws") as ws:
                for i in range(6):
                    await ws.send(json.dumps({"id": f"c{i}", "action": "chat.completion",
                                              "payload": chat("x", max_tokens=3)}))
                events = []
                while sum(1 for e in events if e.get("event") == "chat.complete") < 3 or \
                        not any(e.get("event") == "flow.resume" for e in events):
                    events.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
                return events

        with Server("--ws-inflight-max", "3", "--mock-tokens-per-s", "100") as srv:
            events = asyncio.run(run(srv))
            kinds = [e.get("event") for e in events]
            self.assertIn("flow.pause", kinds)
            refused = [e for e in events if e.get("event") == "error"]
            self.assertEqual([e["id"] for e in refused], ["c3", "c4", "c5"])
            self.assertTrue(all(e["error"]["code"] == "flow_paused" for e in refused))


class Conversations(unittest.TestCase):
    def test_previous_response_id_busy_and_lanes(self):
        async def run(srv):
            url = f"ws://127.0.0.1:{srv.port}/v1/responses"
            first = await ws_collect(url, [{"type": "response.create", "model": MODEL, "input": "start"}],
                                     lambda ev: ev and ev[-1]["type"] == "response.completed")
            rid = first[-1]["response"]["id"]
            async with websockets.connect(url) as a, websockets.connect(url) as b:
                # A slow follow-up holds the conversation; a racing one gets 409.
                await a.send(json.dumps({"type": "response.create", "model": MODEL, "input": "next",
                                         "previous_response_id": rid, "max_output_tokens": 40}))
                while json.loads(await a.recv())["type"] != "response.output_text.delta":
                    pass
                await b.send(json.dumps({"type": "response.create", "model": MODEL, "input": "race",
                                         "previous_response_id": rid}))
                err = json.loads(await asyncio.wait_for(b.recv(), 10))
                self.assertEqual((err["type"], err["status"]), ("error", 409))
                self.assertEqual(err["error"]["code"], "conflict")
                self.assertEqual(err["error"]["param"], "previous_response_id")
                # Same stream_id: one after another; the second starts only after the first ends.
                for i in range(2):
                    await b.send(json.dumps({"type": "response.create", "model": MODEL, "input": f"lane {i}",
                                             "stream_id": "L", "max_output_tokens": 16}))
                types = []
                while types.count("response.incomplete") < 2:
                    types.append(json.loads(await asyncio.wait_for(b.recv(), 10))["type"])
                first_end = types.index("response.incomplete")
                self.assertEqual(types.count("response.created"), 2)
                self.assertGreater(types.index("response.created", 1), first_end)

        with Server("--mock-tokens-per-s", "200", shards=2) as srv:
            asyncio.run(run(srv))


if __name__ == "__main__":
    unittest.main()
