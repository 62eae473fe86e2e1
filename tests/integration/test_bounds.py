"""Upper bounds on everything a client controls: each over-limit field is a 400 naming it (over
HTTP and the WebSocket broker), a maximal allowed request does not stall its shard, and the
shard's inbound buffer budget refuses partial input past it (WebSocket 1009, HTTP 503)."""

import asyncio
import json
import os
import subprocess
import tempfile
import time
import unittest

import websockets

from harness import (Server, ResponseReader, assert_error_envelope, connect, get, metric_sum,
                     metrics, ws_close_code, ws_frame, ws_handshake, ws_read_message)
from openai_client import post_json

MODEL = "ringcast-mock"


def chat(**kw):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    body.update(kw)
    return body


def tool(i):
    return {"type": "function", "function": {"name": f"t{i}", "parameters": {"type": "object"}}}


USER = {"role": "user", "content": "x"}

# (route, body, param, code) — each one over its documented bound (docs/api.md, Limits).
OVER_LIMIT = [
    ("/v1/embeddings", {"model": MODEL, "input": "x", "dimensions": 10_000_000},
     "dimensions", "integer_above_max_value"),
    ("/v1/embeddings", {"model": MODEL, "input": "x", "dimensions": 257},
     "dimensions", "integer_above_max_value"),
    ("/v1/embeddings", {"model": MODEL, "input": ["x"] * 2049}, "input", "array_above_max_length"),
    ("/v1/embeddings", {"model": MODEL, "input": [1] * 8193}, "input", "array_above_max_length"),
    ("/v1/chat/completions", chat(n=129), "n", "integer_above_max_value"),
    ("/v1/chat/completions", chat(max_tokens=4097), "max_tokens", None),
    ("/v1/chat/completions", chat(max_completion_tokens=10 ** 12), "max_completion_tokens", None),
    ("/v1/chat/completions", chat(stop=["a", "b", "c", "d", "e"]), "stop", "array_above_max_length"),
    ("/v1/chat/completions", chat(tools=[tool(i) for i in range(129)]), "tools",
     "array_above_max_length"),
    ("/v1/chat/completions", chat(messages=[USER] * 2049), "messages", "array_above_max_length"),
    ("/v1/chat/completions", chat(logit_bias={str(i): 1 for i in range(301)}), "logit_bias",
     "object_above_max_properties"),
    ("/v1/chat/completions",
     chat(tools=[{"type": "function", "function": {"name": "wide", "parameters": {
         "type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(5001)}}}}]),
     "tools[0].function.parameters", "object_above_max_properties"),
    ("/v1/responses", {"model": MODEL, "input": [USER] * 2049}, "input", "array_above_max_length"),
    ("/v1/responses", {"model": MODEL, "input": "x", "max_output_tokens": 10 ** 12},
     "max_output_tokens", None),
    ("/v1/responses", {"model": MODEL, "input": "x",
                       "tools": [{"type": "function", "name": f"t{i}"} for i in range(129)]},
     "tools", "array_above_max_length"),
]


class FieldBounds(unittest.TestCase):
    def test_http_fields_over_their_bound_are_named_400s(self):
        with Server("--body-bytes-max", 4 * 1024 * 1024) as srv:
            for route, body, param, code in OVER_LIMIT:
                with self.subTest(route=route, param=param):
                    err = assert_error_envelope(self, post_json(srv.port, route, body), 400, code)
                    self.assertEqual(err["param"], param, err)
                    self.assertEqual(err["type"], "invalid_request_error")
            # At the bound itself, the request is served.
            r = post_json(srv.port, "/v1/embeddings", {"model": MODEL, "input": "x", "dimensions": 256})
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(len(r.json()["data"][0]["embedding"]), 256)
            r = post_json(srv.port, "/v1/chat/completions", chat(messages=[USER] * 2048, max_tokens=1))
            self.assertEqual(r.status, 200, r.body)

    def test_topic_name_and_publication_bounds(self):
        with Server("--publish-bytes-max", 1024) as srv:
            r = post_json(srv.port, "/v1/topics/" + "a" * 129, {"x": 1})
            assert_error_envelope(self, r, 400, "invalid_topic")
            r = post_json(srv.port, "/v1/topics/t", {"x": "y" * 2000})
            self.assertEqual(r.status, 413, r.body)

    def test_ws_actions_over_their_bound_are_error_events(self):
        cases = [
            ("embedding.query", {"model": MODEL, "input": "x", "dimensions": 10_000_000},
             "integer_above_max_value"),
            ("embedding.query", {"model": MODEL, "input": ["x"] * 2049}, "array_above_max_length"),
            ("chat.completion", chat(n=129), "integer_above_max_value"),
            ("chat.completion", chat(messages=[USER] * 2049), "array_above_max_length"),
            ("responses.create", {"model": MODEL, "input": "x", "max_output_tokens": 10 ** 12},
             "invalid_request_error"),
        ]

        async def run(port):
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
                for i, (action, payload, code) in enumerate(cases):
                    await ws.send(json.dumps({"id": f"r{i}", "action": action, "payload": payload}))
                    while True:
                        e = json.loads(await asyncio.wait_for(ws.recv(), 10))
                        if e.get("id") == f"r{i}":
                            break
                    self.assertEqual(e["event"], "error", (action, e))
                    self.assertEqual(e["error"]["code"], code, (action, e))
                # The connection stays usable.
                await ws.send(json.dumps({"id": "ok", "action": "embedding.query",
                                          "payload": {"model": MODEL, "input": "x", "dimensions": 3}}))
                e = json.loads(await asyncio.wait_for(ws.recv(), 10))
                self.assertEqual(e["event"], "embedding.result", e)

        with Server() as srv:
            asyncio.run(run(srv.port))


class WebSocketBounds(unittest.TestCase):
    def test_message_size_and_fragment_count(self):
        with Server("--echo", "--ws-message-bytes-max", 4096) as srv:
            # 4096 fragments are one message; a 4097th closes the socket with 1008.
            s, reader, r = ws_handshake(srv.port, "/echo")
            self.assertEqual(r.status, 101)
            frames = [ws_frame(0x1, b"a", fin=False)] + [ws_frame(0x0, b"", fin=False)] * 4094
            s.sendall(b"".join(frames) + ws_frame(0x0, b"b"))
            self.assertEqual(ws_read_message(reader), (0x1, b"ab"))
            s.sendall(b"".join(frames) + ws_frame(0x0, b"", fin=False) + ws_frame(0x0, b"c"))
            self.assertEqual(ws_close_code(reader), 1008)
            s.close()
            # Bytes over all fragments count against --ws-message-bytes-max: 1009.
            s, reader, r = ws_handshake(srv.port, "/echo")
            s.sendall(ws_frame(0x2, b"x" * 3000, fin=False) + ws_frame(0x0, b"y" * 1097))
            self.assertEqual(ws_close_code(reader), 1009)
            s.close()


class LargeWork(unittest.TestCase):
    def test_maximal_embeddings_batch_does_not_stall_the_shard(self):
        # The largest request allowed: 2048 inputs at the model's full 4096 dimensions (~100 MB of
        # JSON), twice at once (curl, so this process only probes). One shard serves them and
        # /healthz: it must keep answering.
        body = json.dumps({"model": MODEL, "input": [f"word {i}" for i in range(2048)]})
        with Server("--mock-embedding-dim", 4096, shards=1) as srv, \
                tempfile.TemporaryDirectory() as tmp:
            outs = [os.path.join(tmp, f"out{i}.json") for i in range(2)]
            curls = [subprocess.Popen(["curl", "-s", "-o", out, "--max-time", "120",
                                       "-H", "Content-Type: application/json",
                                       "--data-binary", body, srv.url("/v1/embeddings")])
                     for out in outs]
            probes, worst_s = 0, 0.0
            deadline = time.monotonic() + 120
            while any(c.poll() is None for c in curls) and time.monotonic() < deadline:
                t0 = time.monotonic()
                r = get(srv.port, "/healthz", timeout=30)
                worst_s = max(worst_s, time.monotonic() - t0)
                self.assertEqual(r.status, 200)
                probes += 1
                time.sleep(0.01)
            for c in curls:
                self.assertEqual(c.wait(10), 0)
            for out in outs:
                with open(out, "rb") as f:
                    data = json.load(f)["data"]
                self.assertEqual((len(data), len(data[-1]["embedding"])), (2048, 4096))
            self.assertGreater(probes, 0)
            # Liveness, not speed: built in one go, each batch held the shard for most of a second.
            self.assertLess(worst_s, 1.0, f"/healthz took {worst_s:.3f} s during the batches")


def held_bytes(port):
    return metric_sum(metrics(port), "ringcast_inbound_held_bytes")


def refusals(port):
    return metric_sum(metrics(port), "ringcast_inbound_budget_refusals_total")


class InboundBudget(unittest.TestCase):
    # Each holder sends the first 60000 bytes of a fragmented message: its reassembly buffer
    # grows to 64 KiB. Three fit in a 200 KiB budget; the fourth does not.
    BUDGET = 200 * 1024
    PART = b"a" * 60000

    def hold(self, port):
        s, reader, r = ws_handshake(port, "/echo")
        self.assertEqual(r.status, 101)
        s.sendall(ws_frame(0x1, self.PART, fin=False))
        return s, reader

    def wait_held(self, port, pred):
        deadline = time.monotonic() + 10
        while not pred(held_bytes(port)):
            self.assertLess(time.monotonic(), deadline, f"held bytes: {held_bytes(port)}")
            time.sleep(0.02)

    def test_websockets_past_the_budget_are_closed_1009_and_the_budget_comes_back(self):
        with Server("--echo", "--inbound-buffer-budget-bytes", self.BUDGET,
                    "--heartbeat-ms", 300) as srv:
            holders = []
            for i in range(3):
                holders.append(self.hold(srv.port))
                self.wait_held(srv.port, lambda n, i=i: n >= (i + 1) * len(self.PART))
            s, reader = self.hold(srv.port)
            self.assertEqual(ws_close_code(reader), 1009)
            s.close()
            self.assertEqual(refusals(srv.port), 1)
            # The earlier ones are unaffected: they finish their messages and get them echoed.
            for hs, hreader in holders:
                hs.sendall(ws_frame(0x0, b"!", fin=True))
                opcode, payload = ws_read_message(hreader)
                self.assertEqual((opcode, payload), (0x1, self.PART + b"!"))
            # Quiet between messages for a heartbeat period, they give their buffers back (and
            # the budget) while staying open.
            self.wait_held(srv.port, lambda n: n == 0)
            for hs, _ in holders:
                hs.close()
            # The budget is free again: as many holders as before fit.
            again = [self.hold(srv.port) for _ in range(3)]
            self.wait_held(srv.port, lambda n: n >= 3 * len(self.PART))
            for hs, hreader in again:
                hs.sendall(ws_frame(0x0, b"?", fin=True))
                self.assertEqual(ws_read_message(hreader)[1], self.PART + b"?")
                hs.close()
            self.assertEqual(refusals(srv.port), 1)

    def test_http_body_past_the_budget_is_a_503(self):
        head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n")
        with Server("--inbound-buffer-budget-bytes", 160 * 1024) as srv:
            first = connect(srv.port)
            first.sendall(head + b" " * 90000)
            self.wait_held(srv.port, lambda n: n >= 90000)
            second = connect(srv.port)
            second.sendall(head + b" " * 90000)
            r = ResponseReader(second).read()
            err = assert_error_envelope(self, r, 503, "inbound_budget_exhausted")
            self.assertIn("inbound buffer budget", err["message"])
            self.assertEqual(r.header("retry-after"), "1")
            second.close()
            # The first request completes (its buffer had room) and is answered.
            body = json.dumps(chat(max_tokens=1)).encode()
            first.sendall(body + b" " * (10000 - len(body)))
            self.assertEqual(ResponseReader(first).read().status, 200)
            first.close()
            self.wait_held(srv.port, lambda n: n == 0)


if __name__ == "__main__":
    unittest.main()
