"""The broker queue on the real server: per-user order, users in parallel, the lifecycle log,
resumption with Last-Event-ID, late and multiple subscribers, bounded queues, shedding,
deadlines and a burst far beyond capacity."""

import asyncio
import json
import threading
import time
import unittest
import urllib.parse

import websockets

from harness import Server, ResponseReader, assert_error_envelope, connect, get, metric_sum, metrics
from openai_client import post_json, sse_events


def enqueue(port, user, text, **kw):
    body = {"user_id": user, "message": text}
    body.update(kw)
    return post_json(port, "/api/v1/message", body)


def stream_url(user, message_id):
    return "/api/v1/stream?" + urllib.parse.urlencode({"user_id": user, "message_id": message_id})


def full_log(port, user, message_id, headers=None):
    r = get(port, stream_url(user, message_id), headers, timeout=30)
    assert r.status == 200, r.body
    return [(int(e["id"]), e["event"], json.loads(e["data"])) for e in parse_sse(r.body)]


def parse_sse(body):
    out = []
    for block in body.decode().split("\n\n"):
        fields = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        if "data" in fields:
            out.append(fields)
    return out


class Lifecycle(unittest.TestCase):
    def test_enqueue_answer_and_full_lifecycle(self):
        with Server(shards=2) as srv:
            r = enqueue(srv.port, "u1", "hello there", max_tokens=5)
            self.assertEqual(r.status, 202)
            body = r.json()
            self.assertEqual(body["status"], "queued")
            self.assertEqual(body["queue_position"], 0)
            self.assertRegex(body["message_id"], r"^msg_\d+_[0-9a-f]{16}$")
            log = full_log(srv.port, "u1", body["message_id"])
            self.assertEqual([seq for seq, _, _ in log], list(range(1, len(log) + 1)))
            kinds = [k for _, k, _ in log]
            self.assertEqual(kinds[0], "queued")
            self.assertEqual(kinds[1], "processing")
            self.assertEqual(kinds[-1], "done")
            self.assertEqual(kinds[2:-1], ["progress"] * 5)
            done = log[-1][2]
            self.assertEqual(done["output"]["text"], "".join(d["delta"] for _, k, d in log if k == "progress"))
            self.assertEqual(done["usage"]["completion_tokens"], 5)
            self.assertEqual(done["message_id"], body["message_id"])

    def test_unknown_message_user_mismatch_and_bad_bodies(self):
        with Server() as srv:
            mid = enqueue(srv.port, "owner", "x", max_tokens=1).json()["message_id"]
            assert_error_envelope(self, get(srv.port, stream_url("intruder", mid)), 404, "message_not_found")
            assert_error_envelope(self, get(srv.port, stream_url("owner", "msg_0_0123456789abcdef")), 404)
            assert_error_envelope(self, get(srv.port, stream_url("owner", "nonsense")), 404)
            assert_error_envelope(self, get(srv.port, "/api/v1/stream?message_id=" + mid), 400)
            for body, param in [({"message": "x"}, "user_id"), ({"user_id": "", "message": "x"}, "user_id"),
                                ({"user_id": "u"}, "message"), ({"user_id": "u", "message": 7}, "message"),
                                ({"user_id": "u", "message": "x", "max_tokens": 0}, "max_tokens"),
                                ({"user_id": "u", "message": "x", "temperature": 9}, "temperature")]:
                err = assert_error_envelope(self, post_json(srv.port, "/api/v1/message", body), 400)
                self.assertEqual(err["param"], param, body)
            assert_error_envelope(self, post_json(srv.port, "/api/v1/message",
                                                  {"user_id": "u", "message": "x", "model": "nope"}),
                                  404, "model_not_found")


class Ordering(unittest.TestCase):
    def test_one_user_strictly_in_order_many_producers(self):
        producers, per_producer = 4, 6
        with Server("--mock-tokens-per-s", "400", shards=2) as srv:
            # A slow first message holds the user's queue while the producers enqueue and the
            # watcher subscribes, so every processing/done below is seen live, in the home's order.
            blocker = enqueue(srv.port, "same", "blocker", max_tokens=600).json()["message_id"]
            sent = {}

            def produce(p):
                with connect(srv.port) as s:  # one producer, its messages in order on one connection
                    reader = ResponseReader(s)
                    for i in range(per_producer):
                        body = json.dumps({"user_id": "same", "message": f"p{p} m{i}", "max_tokens": 3}).encode()
                        s.sendall(b"POST /api/v1/message HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                                  % len(body) + body)
                        sent[(p, i)] = json.loads(reader.read().body)["message_id"]

            threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

            async def watch_all():
                # One connection watches every message: events reach it in the home's order.
                async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws", max_queue=None) as ws:
                    for key, mid in sent.items():
                        await ws.send(json.dumps({"id": f"{key[0]}:{key[1]}", "action": "message.stream",
                                                  "payload": {"user_id": "same", "message_id": mid}}))
                    order, done = [], 0
                    while done < len(sent):
                        e = json.loads(await asyncio.wait_for(ws.recv(), 30))
                        if e["event"] in ("processing", "done"):
                            order.append((e["event"], e["id"], e["data"]["message_id"]))
                        done += e["event"] == "done"
                    return order
            order = asyncio.run(watch_all())
            self.assertEqual(full_log(srv.port, "same", blocker)[-1][1], "done")
            # (a) never two at once: processing, done, processing, done...
            self.assertEqual([e for e, _, _ in order], ["processing", "done"] * len(sent))
            for k in range(0, len(order), 2):
                self.assertEqual(order[k][2], order[k + 1][2])
            # (b) each producer's messages ran in the order it sent them.
            ran = [order[k][1] for k in range(0, len(order), 2)]
            for p in range(producers):
                mine = [int(x.split(":")[1]) for x in ran if x.startswith(f"{p}:")]
                self.assertEqual(mine, list(range(per_producer)))

    def test_users_run_in_parallel(self):
        with Server("--mock-tokens-per-s", "50", shards=2) as srv:
            mids = {u: enqueue(srv.port, u, "parallel", max_tokens=10).json()["message_id"]
                    for u in ("a", "b", "c", "d")}

            async def run():
                async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws", max_queue=None) as ws:
                    for u, mid in mids.items():
                        await ws.send(json.dumps({"id": u, "action": "message.stream",
                                                  "payload": {"user_id": u, "message_id": mid}}))
                    seen, done = [], 0
                    while done < len(mids):
                        e = json.loads(await asyncio.wait_for(ws.recv(), 30))
                        seen.append((e["id"], e["event"]))
                        done += e["event"] == "done"
                    return seen
            seen = asyncio.run(run())
            # Progress of different users interleaves: they were processed at the same time.
            progress = [u for u, kind in seen if kind == "progress"]
            first_done = next(i for i, (_, kind) in enumerate(seen) if kind == "done")
            self.assertGreater(len({u for u, kind in seen[:first_done] if kind == "progress"}), 1)
            self.assertEqual(len(progress), 40)


class Resume(unittest.TestCase):
    def test_reconnect_with_last_event_id_gets_the_rest_exactly_once(self):
        with Server("--mock-tokens-per-s", "40") as srv:
            mid = enqueue(srv.port, "r", "resume me", max_tokens=20).json()["message_id"]
            s = connect(srv.port)
            s.sendall(f"GET {stream_url('r', mid)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            reader = ResponseReader(s)
            reader.read(head_only=True)
            got = b""
            while got.count(b"event: progress") < 5:
                line = reader._read_until(b"\r\n", time.monotonic() + 10)
                size = int(line.split(b";")[0], 16)
                got += reader._read_exact(size + 2, time.monotonic() + 10)[:-2]
            s.close()  # drop mid-stream
            first = [(int(e["id"]), e["event"]) for e in parse_sse(got)]
            last_id = first[-1][0]
            rest = full_log(srv.port, "r", mid, {"Last-Event-ID": str(last_id)})
            everything = full_log(srv.port, "r", mid)
            self.assertEqual(first + [(seq, kind) for seq, kind, _ in rest],
                             [(seq, kind) for seq, kind, _ in everything])
            self.assertEqual(rest[-1][1], "done")

    def test_late_and_multiple_subscribers_see_everything(self):
        with Server(shards=2) as srv:
            mid = enqueue(srv.port, "late", "x", max_tokens=4).json()["message_id"]
            time.sleep(0.3)  # done by now
            logs = []

            def read():
                logs.append(full_log(srv.port, "late", mid))
            threads = [threading.Thread(target=read) for _ in range(5)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(len(logs), 5)
            self.assertTrue(all(log == logs[0] for log in logs))
            self.assertEqual([k for _, k, _ in logs[0]][-1], "done")

    def test_retention_expires(self):
        with Server("--broker-retention-ms", "200") as srv:
            mid = enqueue(srv.port, "ttl", "x", max_tokens=1).json()["message_id"]
            self.assertEqual(full_log(srv.port, "ttl", mid)[-1][1], "done")
            time.sleep(0.6)
            assert_error_envelope(self, get(srv.port, stream_url("ttl", mid)), 404)


class Limits(unittest.TestCase):
    def test_user_queue_full_is_503(self):
        with Server("--user-queue-max", "2", "--mock-tokens-per-s", "5") as srv:
            codes = [enqueue(srv.port, "busy", f"m{i}", max_tokens=50).status for i in range(3)]
            self.assertEqual(codes, [202, 202, 202])  # one processing, two waiting
            r = enqueue(srv.port, "busy", "one too many")
            assert_error_envelope(self, r, 503, "queue_full")
            self.assertEqual(r.header("retry-after"), "1")
            self.assertEqual(r.header("retry-after-ms"), "1000")
            self.assertEqual(enqueue(srv.port, "someone-else", "fine", max_tokens=1).status, 202)

    def test_shed_and_deadline_end_with_error_events(self):
        with Server("--mock-tokens-per-s", "10", "--shed-queue-delay-ms", "300") as srv:
            first = enqueue(srv.port, "s", "slow", max_tokens=8).json()["message_id"]  # ~0.8 s
            shed = enqueue(srv.port, "s", "waits too long", max_tokens=1).json()["message_id"]
            late = enqueue(srv.port, "d", "deadline", max_tokens=50)
            self.assertEqual(late.status, 202)
            log = full_log(srv.port, "s", shed)
            self.assertEqual(log[-1][1], "error")
            self.assertEqual(log[-1][2]["code"], "shed")
            self.assertNotIn("processing", [k for _, k, _ in log])
            self.assertEqual(full_log(srv.port, "s", first)[-1][1], "done")
        with Server("--mock-tokens-per-s", "10") as srv:
            r = post_json(srv.port, "/api/v1/message", {"user_id": "d", "message": "x", "max_tokens": 50},
                          {"x-ringcast-timeout-ms": "300"})
            log = full_log(srv.port, "d", r.json()["message_id"])
            self.assertEqual((log[-1][1], log[-1][2]["code"]), ("error", "deadline_exceeded"))
            self.assertIn("processing", [k for _, k, _ in log])

    def test_burst_of_ten_times_capacity(self):
        capacity = 20
        with Server("--broker-queue-max", str(capacity), "--broker-concurrency-max", "4",
                    "--mock-tokens-per-s", "200", shards=1) as srv:
            accepted, rejected = [], 0
            with connect(srv.port) as s:
                reader = ResponseReader(s)
                body_of = lambda i: json.dumps({"user_id": f"u{i % 50}", "message": "burst",
                                                "max_tokens": 5}).encode()
                batch = b"".join(b"POST /api/v1/message HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                                 % len(body_of(i)) + body_of(i) for i in range(10 * capacity))
                s.sendall(batch)
                for i in range(10 * capacity):
                    r = reader.read()
                    if r.status == 202:
                        accepted.append((f"u{i % 50}", r.json()["message_id"]))
                    else:
                        assert_error_envelope(self, r, 503, "queue_full")
                        self.assertIsNotNone(r.header("retry-after"))
                        rejected += 1
            self.assertGreaterEqual(len(accepted), capacity)
            self.assertGreater(rejected, 0)
            self.assertEqual(len(accepted) + rejected, 10 * capacity)
            for user, mid in accepted:  # every admitted message completes
                self.assertEqual(full_log(srv.port, user, mid)[-1][1], "done")
            samples = metrics(srv.port)
            self.assertEqual(metric_sum(samples, "ringcast_broker_queue_depth"), 0)
            self.assertEqual(metric_sum(samples, "ringcast_broker_processing"), 0)
            self.assertEqual(metric_sum(samples, "ringcast_admission_rejected_total",
                                        reason="queue_full"), rejected)
            rss_kb = int([l for l in open(f"/proc/{srv.proc.pid}/status") if l.startswith("VmRSS")][0].split()[1])
            self.assertLess(rss_kb, 512 * 1024)  # bounded: the burst left nothing behind


class Health(unittest.TestCase):
    def test_queue_depth_in_health(self):
        with Server("--mock-tokens-per-s", "5", shards=2) as srv:
            for i in range(3):
                enqueue(srv.port, "h", f"m{i}", max_tokens=20)
            health = get(srv.port, "/v1/system/health").json()
            self.assertEqual(health["queue_depth"], 2)
            self.assertEqual(health["shards"], 2)


if __name__ == "__main__":
    unittest.main()
