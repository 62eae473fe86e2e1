"""Stored responses (GET/DELETE /v1/responses/{id}, input_items), GET /v1/models/{id}, the
Responses WebSocket mode's lane for requests without stream_id, and the error shapes of bad
resumption ids and deadlines, all on the real server with raw HTTP and Python `websockets`."""

import asyncio
import json
import unittest

import websockets

from harness import Server, assert_error_envelope, connect, get, request
from openai_client import post_json


def delete(port, path, timeout=10.0):
    return request(port, f"DELETE {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(), timeout)


def create_response(port, **kw):
    body = {"model": "ringcast-mock", "input": "Hello"}
    body.update(kw)
    r = post_json(port, "/v1/responses", body)
    assert r.status == 200, r.body
    return r.json()


class StoredResponses(unittest.TestCase):
    def test_retrieve_from_any_shard_matches_the_created_response(self):
        with Server(shards=3) as srv:
            # Each request is a new connection, which the kernel gives to any shard: go on until the
            # responses live on at least two (bounded; all 40 on one shard would be 3 * 3^-40).
            created = []
            while len(created) < 40 and (len(created) < 6 or len({r["id"].split("_")[1] for r in created}) < 2):
                created.append(create_response(srv.port, input=f"question {len(created)}"))
            self.assertGreater(len({r["id"].split("_")[1] for r in created}), 1)
            for r in created:
                # Each GET is a new connection, so it lands on any shard: the home answers.
                for _ in range(3):
                    got = get(srv.port, "/v1/responses/" + r["id"])
                    self.assertEqual(got.status, 200, got.body)
                    self.assertEqual(got.header("content-type"), "application/json")
                    self.assertEqual(got.json(), r)

    def test_unknown_unstored_and_foreign_ids_are_404(self):
        with Server(shards=2) as srv:
            unstored = create_response(srv.port, store=False)
            for rid in [unstored["id"], "resp_abc", "resp_9_0123456789abcdef", "resp_0_0123456789abcdef",
                        "chatcmpl-123"]:
                for path in ["/v1/responses/" + rid, "/v1/responses/" + rid + "/input_items"]:
                    err = assert_error_envelope(self, get(srv.port, path), 404)
                    self.assertIn(rid, err["message"])
                assert_error_envelope(self, delete(srv.port, "/v1/responses/" + rid), 404)
            err = assert_error_envelope(self, get(srv.port, "/v1/responses/resp_abc?stream=true"), 400)
            self.assertEqual(err["param"], "stream")
            r = request(srv.port, b"PUT /v1/responses/resp_abc HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            assert_error_envelope(self, r, 405)
            self.assertEqual(r.header("allow"), "GET, DELETE")

    def test_delete_then_gone_everywhere(self):
        with Server(shards=2) as srv:
            r = create_response(srv.port)
            d = delete(srv.port, "/v1/responses/" + r["id"])
            self.assertEqual(d.status, 200, d.body)
            self.assertEqual(d.json(), {"id": r["id"], "object": "response", "deleted": True})
            for _ in range(4):
                assert_error_envelope(self, get(srv.port, "/v1/responses/" + r["id"]), 404)
            assert_error_envelope(self, delete(srv.port, "/v1/responses/" + r["id"]), 404)
            # A deleted response can no longer be continued either.
            follow = post_json(srv.port, "/v1/responses", {"model": "ringcast-mock", "input": "more",
                                                            "previous_response_id": r["id"]})
            assert_error_envelope(self, follow, 400, "previous_response_not_found")

    def test_input_items_pages(self):
        with Server(shards=2) as srv:
            items = [{"role": "user", "content": f"m{i}"} for i in range(5)]
            items[2] = {"type": "message", "id": "msg_client_given", "role": "assistant", "content": "a2"}
            items.append({"type": "function_call", "call_id": "call_1", "name": "add", "arguments": "{}"})
            items.append({"type": "function_call_output", "call_id": "call_1", "output": "3"})
            r = create_response(srv.port, input=items)
            base = "/v1/responses/" + r["id"] + "/input_items"
            page = get(srv.port, base).json()
            self.assertEqual(set(page), {"object", "data", "first_id", "last_id", "has_more"})
            self.assertEqual(page["object"], "list")
            self.assertFalse(page["has_more"])
            data = page["data"]
            self.assertEqual(len(data), 7)
            # Newest first by default.
            self.assertEqual([d["type"] for d in data],
                             ["function_call_output", "function_call"] + ["message"] * 5)
            self.assertEqual(data[0], {"id": data[0]["id"], "type": "function_call_output", "call_id": "call_1",
                                       "output": "3", "status": "completed"})
            self.assertEqual(data[1]["name"], "add")
            self.assertEqual(data[4], {"id": "msg_client_given", "type": "message", "role": "assistant",
                                       "content": [{"type": "output_text", "text": "a2", "annotations": []}],
                                       "status": "completed"})
            self.assertEqual(data[6]["content"], [{"type": "input_text", "text": "m0"}])
            self.assertEqual(page["first_id"], data[0]["id"])
            self.assertEqual(page["last_id"], data[6]["id"])
            self.assertEqual(len({d["id"] for d in data}), 7)
            # Ascending, in pages of 3, following `after`.
            seen, after = [], None
            for _ in range(5):
                q = "?order=asc&limit=3" + (f"&after={after}" if after else "")
                p = get(srv.port, base + q).json()
                seen += p["data"]
                if not p["has_more"]:
                    break
                after = p["last_id"]
            self.assertEqual([d["id"] for d in seen], [d["id"] for d in reversed(data)])
            empty = get(srv.port, base + "?after=" + data[6]["id"]).json()
            self.assertEqual(empty, {"object": "list", "data": [], "first_id": None, "last_id": None,
                                     "has_more": False})
            # `include` is accepted.
            self.assertEqual(get(srv.port, base + "?include=message.input_image.image_url").status, 200)
            for q, param in [("?limit=0", "limit"), ("?limit=101", "limit"), ("?limit=abc", "limit"),
                             ("?limit=-1", "limit"), ("?order=up", "order"), ("?after=msg_nope", "after")]:
                err = assert_error_envelope(self, get(srv.port, base + q), 400)
                self.assertEqual(err["param"], param, q)


class OutputTokenLimits(unittest.TestCase):
    def test_max_output_tokens_bounds_and_incomplete(self):
        with Server("--mock-max-tokens", "64") as srv:
            for n in [15, 65, 10**12]:
                r = post_json(srv.port, "/v1/responses", {"model": "ringcast-mock", "input": "x",
                                                          "max_output_tokens": n})
                err = assert_error_envelope(self, r, 400)
                self.assertEqual(err["param"], "max_output_tokens", n)
            # A refused follow-up leaves its previous response free for the next one.
            first = create_response(srv.port)
            r = post_json(srv.port, "/v1/responses", {"model": "ringcast-mock", "input": "x", "max_output_tokens": 65,
                                                      "previous_response_id": first["id"]})
            assert_error_envelope(self, r, 400)
            create_response(srv.port, previous_response_id=first["id"])
            # At the limit the mock stops: status incomplete, reason max_output_tokens.
            cut = create_response(srv.port, max_output_tokens=64)
            self.assertEqual(cut["status"], "incomplete")
            self.assertEqual(cut["incomplete_details"], {"reason": "max_output_tokens"})
            self.assertEqual(cut["usage"]["output_tokens"], 64)
            events = asyncio.run(ws_collect(srv.port, [{"type": "response.create", "model": "ringcast-mock",
                                                        "input": "x", "max_output_tokens": 65}], 1))
            self.assertEqual(events[-1]["type"], "error")
            self.assertEqual(events[-1]["error"]["param"], "max_output_tokens")


class Models(unittest.TestCase):
    def test_retrieve_model(self):
        with Server("--model", "ringcast-mock", "--model", "other-model", shards=2) as srv:
            listed = get(srv.port, "/v1/models").json()["data"]
            for m in listed:
                got = get(srv.port, "/v1/models/" + m["id"])
                self.assertEqual(got.status, 200, got.body)
                self.assertEqual(got.json(), m)
            self.assertEqual(get(srv.port, "/v1/models/other%2Dmodel").json()["id"], "other-model")
            err = assert_error_envelope(self, get(srv.port, "/v1/models/gpt-4o"), 404, "model_not_found")
            self.assertIn("gpt-4o", err["message"])


async def ws_collect(port, messages, until_terminal, timeout=60):
    """Sends `messages` on one Responses WebSocket, returns every event until `until_terminal`
    terminal events (response.completed/incomplete/failed or error) arrived."""
    out = []
    async with websockets.connect(f"ws://127.0.0.1:{port}/v1/responses", max_queue=None) as ws:
        for m in messages:
            await ws.send(json.dumps(m))
        terminal = 0
        while terminal < until_terminal:
            ev = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            out.append(ev)
            if ev["type"] in ("response.completed", "response.incomplete", "response.failed", "error"):
                terminal += 1
    return out


class ResponsesWebSocketLanes(unittest.TestCase):
    def test_without_stream_id_the_second_waits_for_the_first(self):
        # Slow tokens, so that two concurrent responses would certainly interleave.
        with Server("--mock-tokens-per-s", "200") as srv:
            create = {"type": "response.create", "model": "ringcast-mock"}
            events = asyncio.run(ws_collect(srv.port, [dict(create, input="first"),
                                                       dict(create, input="second")], 2))
            types = [e["type"] for e in events]
            self.assertEqual(types.count("response.created"), 2, types)
            first_end = types.index("response.completed")
            second_start = len(types) - 1 - types[::-1].index("response.created")
            self.assertLess(first_end, second_start, types)
            ids = [e["response"]["id"] for e in events if e["type"] in ("response.created", "response.completed")]
            self.assertEqual(ids[0], ids[1])
            self.assertEqual(ids[2], ids[3])
            self.assertNotEqual(ids[0], ids[2])

    def test_lane_is_bounded_by_ws_inflight_max(self):
        with Server("--mock-tokens-per-s", "200", "--ws-inflight-max", "2") as srv:
            create = {"type": "response.create", "model": "ringcast-mock", "input": "x"}
            events = asyncio.run(ws_collect(srv.port, [create, create, create], 3))
            errors = [e for e in events if e["type"] == "error"]
            self.assertEqual(len(errors), 1, events)
            self.assertEqual(errors[0]["status"], 503)
            self.assertEqual([e["type"] for e in events].count("response.completed"), 2)

    def test_distinct_stream_ids_still_run_concurrently(self):
        with Server("--mock-tokens-per-s", "100") as srv:
            create = {"type": "response.create", "model": "ringcast-mock", "input": "x"}
            events = asyncio.run(ws_collect(srv.port, [dict(create, stream_id="a"),
                                                       dict(create, stream_id="b")], 2))
            types = [e["type"] for e in events]
            # Both started before either finished.
            self.assertLess(len(types) - 1 - types[::-1].index("response.created"),
                            types.index("response.completed"), types)


class BadParameters(unittest.TestCase):
    def test_bad_since_is_400_on_every_route_that_takes_it(self):
        with Server(shards=2) as srv:
            post_json(srv.port, "/v1/topics/t1", {"n": 1})
            for since in ["abc", "-1", "99999999999999999999", "", "ab-", "-", "1-2-x", "0x10", "1.5"]:
                err = assert_error_envelope(self, get(srv.port, "/v1/topics/t1/events?since=" + since), 400,
                                            "invalid_since")
                self.assertEqual(err["param"], "since")

            async def ws_since():
                async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws") as ws:
                    answers = []
                    for i, since in enumerate(["abc", -1, "99999999999999999999", 1.5, True]):
                        await ws.send(json.dumps({"id": f"s{i}", "action": "subscribe",
                                                  "payload": {"topic": "t1", "since": since}}))
                        answers.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
                    for i, since in enumerate(["abc", -3, "1-2", {}]):
                        await ws.send(json.dumps({"id": f"m{i}", "action": "message.stream",
                                                  "payload": {"user_id": "u", "message_id": "msg_0_0123456789abcdef",
                                                              "last_event_id": since}}))
                        answers.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
                    return answers

            answers = asyncio.run(ws_since())
            for a in answers[:5]:
                self.assertEqual(a["event"], "error", a)
                self.assertEqual(a["error"]["code"], "invalid_since", a)
            for a in answers[5:]:
                self.assertEqual(a["event"], "error", a)
                self.assertEqual(a["error"]["code"], "invalid_request", a)

    def test_bad_timeout_header_is_400_naming_it(self):
        with Server() as srv:
            routes = [("/v1/chat/completions", {"model": "ringcast-mock", "messages": [{"role": "user", "content": "x"}],
                                                "max_tokens": 2}),
                      ("/v1/responses", {"model": "ringcast-mock", "input": "x"}),
                      ("/api/v1/message", {"user_id": "u", "message": "x", "max_tokens": 2})]
            for path, body in routes:
                for value in ["abc", "-5", "0", "", "1.5", "99999999999999999999999"]:
                    r = post_json(srv.port, path, body, {"x-ringcast-timeout-ms": value})
                    err = assert_error_envelope(self, r, 400, "invalid_timeout")
                    self.assertEqual(err["param"], "x-ringcast-timeout-ms")
                    self.assertIn("x-ringcast-timeout-ms", err["message"])
                ok = post_json(srv.port, path, body, {"x-ringcast-timeout-ms": "20000"})
                self.assertIn(ok.status, (200, 202), ok.body)

    def test_limits_name_their_flags_and_429_says_it_once(self):
        with Server("--body-bytes-max", "2000", "--publish-bytes-max", "100", "--header-bytes-max", "4096",
                    "--api-key", "sk-test", "--rate-limit-rps", "1", "--rate-limit-burst", "1") as srv:
            auth = {"Authorization": "Bearer sk-test"}
            err = assert_error_envelope(self, post_json(srv.port, "/v1/embeddings", {"input": "x" * 3000}, auth), 413)
            self.assertIn("--body-bytes-max", err["message"])
            self.assertIn("2000", err["message"])
            err = assert_error_envelope(self, get(srv.port, "/healthz", {"X-Big": "y" * 5000}), 431)
            self.assertIn("--header-bytes-max", err["message"])
        with Server("--ws-message-bytes-max", "1024") as srv:
            async def too_big():
                async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws") as ws:
                    await ws.send("a" * 2000)
                    with self.assertRaises(websockets.ConnectionClosed) as ctx:
                        await asyncio.wait_for(ws.recv(), 10)
                    return ctx.exception.rcvd
            closed = asyncio.run(too_big())
            self.assertEqual(closed.code, 1009)
            self.assertIn("--ws-message-bytes-max", closed.reason)
        with Server("--publish-bytes-max", "100", "--api-key", "sk-test", "--rate-limit-rps", "1",
                    "--rate-limit-burst", "1") as srv:
            auth = {"Authorization": "Bearer sk-test"}
            err = assert_error_envelope(self, post_json(srv.port, "/v1/topics/t", {"x": "y" * 200}, auth), 413)
            self.assertIn("--publish-bytes-max", err["message"])
            limited = None
            for _ in range(5):
                r = get(srv.port, "/v1/models", auth)
                if r.status == 429:
                    limited = r
                    break
            self.assertIsNotNone(limited)
            err = assert_error_envelope(self, limited, 429)
            self.assertEqual(err["message"].lower().count("rate limit"), 1, err["message"])


if __name__ == "__main__":
    unittest.main()
