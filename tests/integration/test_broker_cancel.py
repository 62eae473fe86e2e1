"""Cancelling broker work: DELETE /api/v1/message/{id} (queued and processing messages), /ws
`cancel` of a message.stream, lifecycle events over /ws with their event ids and resumption with
last_event_id, and the machine-readable `code` of every broker error."""

import asyncio
import json
import unittest
import urllib.parse

import websockets

from harness import Server, assert_error_envelope, get, request
from openai_client import post_json
from test_broker import enqueue, full_log


def cancel(port, message_id, user):
    q = urllib.parse.urlencode({"user_id": user}) if user is not None else ""
    return request(port, f"DELETE /api/v1/message/{message_id}?{q} HTTP/1.1\r\nHost: x\r\n\r\n".encode())


def ws_kinds(port, user, message_id, wait_s):
    """The kinds of lifecycle events a /ws message.stream sees within `wait_s` (or until the end)."""
    async def run():
        kinds = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_queue=None) as ws:
            await ws.send(json.dumps({"id": "w", "action": "message.stream",
                                      "payload": {"user_id": user, "message_id": message_id}}))
            try:
                while True:
                    ev = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - loop.time())))
                    kinds.append(ev["event"])
                    if ev["event"] in ("done", "error"):
                        break
            except asyncio.TimeoutError:
                pass
        return kinds
    return asyncio.run(run())


class DeleteMessage(unittest.TestCase):
    def test_cancel_queued_then_processing(self):
        with Server("--mock-tokens-per-s", "50", shards=2) as srv:
            first = enqueue(srv.port, "u1", "long", max_tokens=400).json()["message_id"]
            second = enqueue(srv.port, "u1", "queued", max_tokens=3).json()["message_id"]
            third = enqueue(srv.port, "u1", "after", max_tokens=3).json()["message_id"]
            r = cancel(srv.port, second, "u1")
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json(), {"message_id": second, "status": "cancelled", "previous_status": "queued"})
            log = full_log(srv.port, "u1", second)
            self.assertEqual([k for _, k, _ in log], ["queued", "error"])
            self.assertEqual(log[-1][2]["code"], "cancelled")
            assert_error_envelope(self, cancel(srv.port, second, "u1"), 409, "message_finished")

            self.assertIn("progress", ws_kinds(srv.port, "u1", first, 0.5))
            r = cancel(srv.port, first, "u1")
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json()["previous_status"], "processing")
            log = full_log(srv.port, "u1", first)
            kinds = [k for _, k, _ in log]
            self.assertEqual(kinds[-1], "error")
            self.assertEqual(log[-1][2]["code"], "cancelled")
            self.assertLess(kinds.count("progress"), 400)
            # The user's queue goes on: the third message runs to the end.
            log = full_log(srv.port, "u1", third)
            self.assertEqual(log[-1][1], "done")

    def test_errors(self):
        with Server(shards=2) as srv:
            mid = enqueue(srv.port, "owner", "x", max_tokens=1).json()["message_id"]
            assert_error_envelope(self, cancel(srv.port, mid, "intruder"), 404, "message_not_found")
            assert_error_envelope(self, cancel(srv.port, "msg_1_0123456789abcdef", "owner"), 404, "message_not_found")
            assert_error_envelope(self, cancel(srv.port, "nonsense", "owner"), 404, "message_not_found")
            err = assert_error_envelope(self, cancel(srv.port, mid, None), 400, "invalid_request")
            self.assertEqual(err["param"], "user_id")
            self.assertEqual(full_log(srv.port, "owner", mid)[-1][1], "done")
            assert_error_envelope(self, cancel(srv.port, mid, "owner"), 409, "message_finished")


class WebSocketLifecycle(unittest.TestCase):
    def test_event_ids_match_sse_and_last_event_id_resumes(self):
        with Server("--mock-tokens-per-s", "400", shards=2) as srv:
            mid = enqueue(srv.port, "u2", "hello", max_tokens=6).json()["message_id"]
            sse = full_log(srv.port, "u2", mid)

            async def watch(last_event_id=None):
                payload = {"user_id": "u2", "message_id": mid}
                if last_event_id is not None:
                    payload["last_event_id"] = last_event_id
                out = []
                async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws", max_queue=None) as ws:
                    await ws.send(json.dumps({"id": "w1", "action": "message.stream", "payload": payload}))
                    while True:
                        ev = json.loads(await asyncio.wait_for(ws.recv(), 20))
                        out.append(ev)
                        if ev["event"] in ("done", "error"):
                            return out

            whole = asyncio.run(watch())
            self.assertEqual([(int(e["event_id"]), e["event"], e["data"]) for e in whole], sse)
            self.assertTrue(all(e["id"] == "w1" for e in whole))
            for k in (1, 3, len(sse) - 1):
                for last in (str(k), k):
                    rest = asyncio.run(watch(last))
                    self.assertEqual([int(e["event_id"]) for e in rest], list(range(k + 1, len(sse) + 1)))

    def test_cancel_a_message_stream(self):
        with Server("--mock-tokens-per-s", "50", shards=2) as srv:
            mid = enqueue(srv.port, "u3", "long", max_tokens=300).json()["message_id"]

            async def run():
                async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws", max_queue=None) as ws:
                    await ws.send(json.dumps({"id": "w", "action": "message.stream",
                                              "payload": {"user_id": "u3", "message_id": mid}}))
                    while json.loads(await asyncio.wait_for(ws.recv(), 20))["event"] != "progress":
                        pass
                    await ws.send(json.dumps({"id": "c1", "action": "cancel", "payload": {"target": "w"}}))
                    seen = []
                    while True:
                        ev = json.loads(await asyncio.wait_for(ws.recv(), 20))
                        seen.append(ev)
                        if ev["id"] == "c1":
                            break
                    # Nothing more for the target; a round trip proves the connection is fine.
                    await ws.send(json.dumps({"id": "h", "action": "system.health", "payload": {}}))
                    after = []
                    while True:
                        ev = json.loads(await asyncio.wait_for(ws.recv(), 20))
                        after.append(ev)
                        if ev["id"] == "h":
                            break
                    await asyncio.sleep(0.3)
                    await ws.send(json.dumps({"id": "c2", "action": "cancel", "payload": {"target": "w"}}))
                    again = json.loads(await asyncio.wait_for(ws.recv(), 20))
                    while again["id"] == "w":  # progress sent before the cancel arrived
                        again = json.loads(await asyncio.wait_for(ws.recv(), 20))
                    return seen, after, again

            seen, after, again = asyncio.run(run())
            target_end = [e for e in seen if e["id"] == "w" and e["event"] == "error"]
            self.assertEqual(len(target_end), 1, seen)
            self.assertEqual(target_end[0]["error"]["code"], "cancelled")
            self.assertEqual(seen[-1], {"id": "c1", "event": "cancelled", "data": {"target": "w"}})
            self.assertEqual([e for e in after if e["id"] == "w"], [])
            self.assertEqual(again["event"], "error")
            self.assertEqual(again["error"]["code"], "not_found")
            # Only the watch ended: the message itself still runs (DELETE cancels it).
            kinds = ws_kinds(srv.port, "u3", mid, 0.5)
            self.assertIn("processing", kinds)
            self.assertNotIn("error", kinds)


class ErrorCodes(unittest.TestCase):
    def test_every_broker_error_has_a_code(self):
        with Server(shards=2) as srv:
            bad_bodies = [b"{", b"[]", b"{}", json.dumps({"user_id": "u", "message": 3}).encode(),
                          json.dumps({"user_id": "u", "message": "x", "max_tokens": "many"}).encode()]
            for body in bad_bodies:
                r = request(srv.port, (f"POST /api/v1/message HTTP/1.1\r\nHost: x\r\n"
                                       f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
                err = assert_error_envelope(self, r, 400)
                self.assertIsNotNone(err["code"], body)
            for path in ["/api/v1/stream", "/api/v1/stream?user_id=u", "/api/v1/stream?message_id=m"]:
                self.assertIsNotNone(assert_error_envelope(self, get(srv.port, path), 400)["code"], path)
            err = assert_error_envelope(self, post_json(srv.port, "/api/v1/message",
                                                        {"user_id": "u", "message": "x", "model": "m"}), 404)
            self.assertEqual(err["code"], "model_not_found")

            async def ws_errors():
                out = []
                async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws") as ws:
                    for m in ["{", "[]", json.dumps({"id": "a"}), json.dumps({"id": "b", "action": "nope"}),
                              json.dumps({"id": "c", "action": "message.stream", "payload": {}}),
                              json.dumps({"id": "d", "action": "cancel", "payload": {"target": "zz"}}),
                              json.dumps({"id": "e", "action": "responses.create", "payload": {"model": 1}})]:
                        await ws.send(m)
                        out.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
                return out

            for ev in asyncio.run(ws_errors()):
                self.assertEqual(ev["event"], "error", ev)
                self.assertIsInstance(ev["error"]["code"], str, ev)
                self.assertTrue(ev["error"]["code"], ev)

    def test_auth_errors_on_broker_routes_have_a_code(self):
        with Server("--api-key", "sk-test") as srv:
            assert_error_envelope(self, post_json(srv.port, "/api/v1/message", {"user_id": "u", "message": "x"}),
                                  401, "missing_api_key")
            assert_error_envelope(self, cancel(srv.port, "msg_0_0123456789abcdef", "u"), 401, "missing_api_key")
            assert_error_envelope(self, get(srv.port, "/api/v1/stream?user_id=u&message_id=m"), 401,
                                  "missing_api_key")
            assert_error_envelope(self, post_json(srv.port, "/api/v1/message", {"user_id": "u", "message": "x"},
                                                  {"Authorization": "Bearer sk-wrong"}), 401, "invalid_api_key")
            # The OpenAI routes keep OpenAI's envelope: no code for a missing key.
            err = assert_error_envelope(self, get(srv.port, "/v1/models"), 401)
            self.assertIsNone(err["code"])


if __name__ == "__main__":
    unittest.main()
