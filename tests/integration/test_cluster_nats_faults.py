"""NATS failures under 3 ringcast nodes (nats_cluster.py): one NATS server killed (the leader of
the topics stream, and the server one node is connected to) and brought back loses no accepted
publication or broker message and leaves no gap; all NATS servers down gives clear 503s with
Retry-After and /readyz 503 with a reason, then everything recovers without a restart."""

import asyncio
import json
import threading
import time
import unittest

import websockets

from cluster_clients import (PublishLoop, SseSubscriber, TERMINAL, WsSubscriber, barrier,
                             broker_log, check_one_order, enqueue, post, publish)
from harness import assert_error_envelope, get, metrics
from nats_cluster import ClusterTestCase, http_get, wait_until
from nats_probe import stream_leader


def metric_sum(port, name, **labels):
    want = set(labels.items())
    return sum(v for (n, ls), v in metrics(port).items() if n == name and want <= set(ls))


def _broker_log_when_reachable(port, user, mid, timeout=30.0):
    """broker_log, asked again (bounded) while the node answers 503 broker_unavailable ("retry
    later"): just after a NATS server came back, the shard the request lands on may still be
    reconnecting, or the log stream electing its leader again; a client retries, and so do we."""
    deadline = time.monotonic() + timeout
    while True:
        status, log = broker_log(port, user, mid)
        if status != 503 or b"broker_unavailable" not in log or time.monotonic() > deadline:
            return status, log
        time.sleep(0.5)


def check_broker_done(test, cluster, accepted):
    """Every accepted message's lifecycle (read on another node than the one that accepted it)
    ends with exactly one terminal event, `done`, after increasing event ids."""
    nodes = cluster.live_nodes()
    for k, (user, mid) in enumerate(accepted):
        status, log = _broker_log_when_reachable(nodes[k % len(nodes)].port, user, mid)
        test.assertEqual(status, 200, (user, mid, log))
        kinds = [e for _, e, _ in log]
        test.assertEqual([e for e in kinds if e in TERMINAL], ["done"], (mid, kinds))
        test.assertEqual(kinds[-1], "done", (mid, kinds))
        test.assertEqual([i for i, _, _ in log], sorted({i for i, _, _ in log}), (mid, log))


class Enqueuer:
    """Enqueues for a few users round robin over the nodes until stop(); keeps the accepted ones
    and checks every refusal is a 503 broker_unavailable with Retry-After."""

    def __init__(self, test, nodes, users):
        self.test, self.nodes, self.users = test, nodes, users
        self.accepted, self.refused = [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        k = 0
        while not self._stop.is_set():
            node = self.nodes[k % len(self.nodes)]
            user = self.users[k % len(self.users)]
            status, body, retry_after = enqueue(node.port, user, f"m{k}", max_tokens=2)
            if status == 202:
                self.accepted.append((user, body["message_id"]))
            else:
                self.refused.append((status, body, retry_after))
            k += 1
            self._stop.wait(0.05)

    def stop(self):
        self._stop.set()
        self._thread.join(30)
        for status, body, retry_after in self.refused:
            self.test.assertEqual(status, 503, body)
            self.test.assertEqual(body["error"]["code"], "broker_unavailable", body)
            self.test.assertGreaterEqual(int(retry_after), 1)


class OneServerLost(ClusterTestCase):
    CLUSTER_KW = {"nodes": 3}

    def test_killing_a_nats_server_loses_no_accepted_publication_or_message(self):
        nodes = self.cluster.nodes
        topic = "fault.one"
        subs = [SseSubscriber(n.port, topic, name=f"sse@{n.node_id}") for n in nodes]
        subs.append(WsSubscriber(nodes[1].port, topic, name="ws@node1"))
        loops = []
        enq = None
        try:
            start = barrier(nodes[0].port, topic, subs)
            loops = [PublishLoop(lambda n=n: n.port, topic, n.node_id) for n in nodes]
            enq = Enqueuer(self, nodes, [f"user{i}" for i in range(6)])
            for loop in loops:
                loop.wait_accepted(10)

            # The topics stream's leader; node i is connected to NATS server i first.
            victim = stream_leader(self.cluster, "RC_T0")
            self.assertIsNotNone(victim, "RC_T0 has no leader")
            reconnects = metric_sum(nodes[victim].port, "ringcast_nats_reconnects_total")
            self.cluster.kill_nats(victim)
            marks = [loop.count() for loop in loops]
            for loop, m in zip(loops, marks):
                loop.wait_accepted(m + 10, timeout=45)
            wait_until(lambda: metric_sum(nodes[victim].port, "ringcast_nats_reconnects_total") > reconnects,
                       20, f"node{victim} reconnected elsewhere")

            self.cluster.restart_nats(victim)
            marks = [loop.count() for loop in loops]
            for loop, m in zip(loops, marks):
                loop.wait_accepted(m + 5, timeout=45)
        finally:
            for loop in loops:
                loop.stop()
            if enq is not None:
                enq.stop()
        try:
            check_one_order(self, subs, start, loops)
            for loop in loops:  # a refusal is explicit: 503 nats_unavailable with Retry-After
                for status, body, retry_after in loop.refused:
                    self.assertEqual(status, 503, body)
                    self.assertEqual(body["error"]["code"], "nats_unavailable", body)
                    self.assertGreaterEqual(int(retry_after), 1)
            self.assertGreater(len(enq.accepted), 0)
            check_broker_done(self, self.cluster, enq.accepted)
        finally:
            for s in subs:
                s.close()


class AllServersLost(ClusterTestCase):
    CLUSTER_KW = {"nodes": 3}

    def test_nats_down_gives_clear_503s_then_recovers_without_restart(self):
        nodes = self.cluster.nodes
        topic = "fault.all"
        live = SseSubscriber(nodes[1].port, topic, name="live@node1")
        subs = [live]
        try:
            barrier(nodes[0].port, topic, [live])
            acks = []
            for k in range(5):
                status, ack, _ = publish(nodes[k % 3].port, topic, {"k": k})
                self.assertEqual(status, 200, ack)
                acks.append(ack["id"])
            live.wait_for(lambda evs: evs[-1]["id"] == acks[-1], 20, "5 publications")

            self.cluster.kill_all_nats()
            for n in nodes:
                wait_until(lambda n=n: http_get(n.port, "/readyz")[0] == 503, 20, f"{n.node_id} not ready")
                status, body, _ = http_get(n.port, "/readyz")
                ready = json.loads(body)
                self.assertEqual(ready["status"], "not_ready", ready)
                self.assertTrue(ready["reason"].startswith("nats: "), ready)
                self.assertEqual(metric_sum(n.port, "ringcast_nats_connected"), 0)

                r = post(n.port, f"/v1/topics/{topic}", {"k": "down"})
                assert_error_envelope(self, r, 503, "nats_unavailable")
                self.assertGreaterEqual(int(r.header("retry-after")), 1)
                r = post(n.port, "/api/v1/message", {"user_id": "u1", "message": "hi", "max_tokens": 2})
                assert_error_envelope(self, r, 503, "broker_unavailable")
                self.assertGreaterEqual(int(r.header("retry-after")), 1)
                r = get(n.port, f"/v1/topics/{topic}/events")
                assert_error_envelope(self, r, 503, "nats_unavailable")
                self.assertEqual(asyncio.run(_ws_publish_error(n.port, topic)), "nats_unavailable")
                # Plain HTTP keeps working.
                self.assertEqual(get(n.port, "/healthz").status, 200)

            self.cluster.start_all_nats()
            for n in nodes:
                n.wait_ready(timeout=45)
                # One connection per shard.
                self.assertEqual(metric_sum(n.port, "ringcast_nats_connected"), n.shards)
            # The subscriber that lived through it continues without a gap or a reset.
            for k in range(5, 10):
                status, ack, _ = publish(nodes[k % 3].port, topic, {"k": k})
                self.assertEqual(status, 200, ack)
                acks.append(ack["id"])
            evs = live.wait_for(lambda evs: evs[-1]["id"] == acks[-1], 30, "publications after recovery")
            tail = [e for e in evs if e["data"].get("k") is not None]
            self.assertEqual([e["id"] for e in tail], acks)
            self.assertEqual([e["event"] for e in evs], ["message"] * len(evs))
            fresh = SseSubscriber(nodes[2].port, topic, name="fresh@node2", last_event_id=acks[0])
            subs.append(fresh)
            fresh.wait_for(lambda evs: len(evs) >= 9, 20, "9 events after the first")
            self.assertEqual([e["id"] for e in fresh.snapshot()], acks[1:])

            # The leases lapsed during the outage: until a node claims the partition again the
            # answer is 503 broker_unavailable with Retry-After; a client retries (bounded).
            answers = []

            def accepted():
                answers.append(enqueue(nodes[0].port, "u1", "after", max_tokens=2))
                return answers[-1][0] == 202
            wait_until(accepted, 30, "an enqueue accepted after recovery", interval=0.5)
            for status, body, retry_after in answers[:-1]:
                self.assertEqual((status, body["error"]["code"]), (503, "broker_unavailable"), body)
                self.assertGreaterEqual(int(retry_after), 1)
            status, body, _ = answers[-1]
            check_broker_done(self, self.cluster, [("u1", body["message_id"])])
        finally:
            for s in subs:
                s.close()


async def _ws_publish_error(port, topic):
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await ws.send(json.dumps({"id": "p", "action": "publish", "payload": {"topic": topic, "data": 1}}))
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert msg["id"] == "p" and msg["event"] == "error", msg
        return msg["error"]["code"]


if __name__ == "__main__":
    unittest.main()
