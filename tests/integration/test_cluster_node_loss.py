"""A ringcast node killed with SIGKILL under load (nats_cluster.py): its SSE clients reconnect to
another node with Last-Event-ID and resume without gap or duplicate; the queued broker messages of
the users whose partitions it owned complete on another node, each with exactly one terminal
event; the node comes back with the same id and serves the whole history again."""

import unittest

from cluster_clients import (PublishLoop, SseSubscriber, TERMINAL, after, barrier, broker_log,
                             check_one_order, enqueue, fnv1a)
from nats_cluster import ClusterTestCase, wait_until
from nats_probe import kv_get

PARTITIONS = 8


def partition_owners(cluster):
    """{partition: node id} once every partition has an owner (KV rc_owners p<k>) and every
    node has its share (the first node up claims everything, then hands idle ones back)."""
    owners = {}

    def balanced():
        for k in range(PARTITIONS):
            owners[k] = kv_get(cluster, "rc_owners", f"p{k}")
        return all(owners.values()) and {n.node_id for n in cluster.nodes} <= set(owners.values())
    wait_until(balanced, 30, f"every partition owned, every node owning some ({owners})",
               interval=0.2)
    return owners


def users_by_owner(owners, owner, count, other_count):
    """`count` user names whose partition `owner` holds, and `other_count` held by others."""
    mine, others = [], []
    for i in range(10000):
        user = f"user{i}"
        if owners[fnv1a(user) % PARTITIONS] == owner:
            if len(mine) < count:
                mine.append(user)
        elif len(others) < other_count:
            others.append(user)
        if len(mine) == count and len(others) == other_count:
            return mine, others
    raise AssertionError(f"no users for {owner} in {owners}")


class NodeLoss(ClusterTestCase):
    # Slow generation (40 tokens at 40/s: 1 s a message) keeps messages queued and one
    # processing per user when the node dies.
    CLUSTER_KW = {"nodes": 3, "lease_ms": 1500,
                  "node_args": ["--broker-partitions", PARTITIONS, "--mock-tokens-per-s", 40,
                                "--sse-retry-ms", 100]}

    def test_killed_node_clients_resume_elsewhere_and_its_broker_work_completes(self):
        # The victim: the node holding the most broker partitions.
        owners = partition_owners(self.cluster)
        counts = {n.node_id: list(owners.values()).count(n.node_id) for n in self.cluster.nodes}
        a = max(self.cluster.nodes, key=lambda n: counts[n.node_id])
        b, c = [n for n in self.cluster.nodes if n is not a]
        mine, others = users_by_owner(owners, a.node_id, 3, 2)
        topic = "loss.t"
        # a's clients go to b or c after a dies (what a load balancer does); reference: on c.
        subs = [SseSubscriber(a.port, topic, name="sse1@a", reconnect_to=lambda: b.port),
                SseSubscriber(a.port, topic, name="sse2@a", reconnect_to=lambda: c.port),
                SseSubscriber(c.port, topic, name="ref@c")]
        loops = []
        try:
            start = barrier(b.port, topic, subs)

            # Queued work: 3 messages per user, enqueued on b (forwarded to the owner).
            accepted = []
            for k in range(3):
                for user in mine + others:
                    status, body, _ = enqueue(b.port, user, f"m{k}", max_tokens=40)
                    self.assertEqual(status, 202, body)
                    accepted.append((user, body["message_id"]))

            loops = [PublishLoop(lambda: b.port, topic, "b"), PublishLoop(lambda: c.port, topic, "c")]
            for loop in loops:
                loop.wait_accepted(10)
            self.cluster.kill_node(a.index)
            marks = [loop.count() for loop in loops]
            for loop, m in zip(loops, marks):
                loop.wait_accepted(m + 10, timeout=30)
            for s in subs[:2]:
                s.wait_for(lambda evs: evs[-1]["port"] != a.port, 20, "events from the new node")
            for loop in loops:
                loop.stop()
            check_one_order(self, subs, start, loops)
            for s, node in zip(subs[:2], (b, c)):
                self.assertEqual([p for p, _ in s.connects], [a.port, node.port], s.name)
                self.assertEqual([st for _, st in s.connects], [200, 200], s.name)

            # a's partitions are taken over; every accepted message ends once, in `done`.
            wait_until(lambda: all(kv_get(self.cluster, "rc_owners", f"p{k}") not in (None, a.node_id)
                                   for k in range(PARTITIONS)), 30, "a's partitions taken over",
                       interval=0.2)
            by_user = {}
            restarted = 0
            for k, (user, mid) in enumerate(accepted):
                node = (b, c)[k % 2]
                status, log = broker_log(node.port, user, mid)
                self.assertEqual(status, 200, (user, mid, log))
                kinds = [e for _, e, _ in log]
                self.assertEqual([e for e in kinds if e in TERMINAL], ["done"], (user, mid, kinds))
                self.assertEqual(kinds[-1], "done")
                ids = [i for i, _, _ in log]
                self.assertEqual(ids, list(range(1, len(ids) + 1)), (mid, log))
                done = log[-1][2]
                self.assertEqual(done["usage"]["completion_tokens"], 40, done)
                by_user.setdefault(user, []).append(mid)
                attempts = [d.get("attempt", 1) for _, e, d in log if e == "processing"]
                self.assertEqual(attempts, list(range(1, len(attempts) + 1)), (mid, log))
                restarted += len(attempts) > 1
            self.assertEqual(set(by_user), set(mine + others))
            # The messages a was generating when it died started again elsewhere (attempt 2).
            self.assertGreater(restarted, 0)

            # A Last-Event-ID resume halfway through a taken-over message's log, on another node.
            user, mid = next((u, m) for u, m in accepted if u in mine)
            status, full = broker_log(c.port, user, mid)
            half = full[len(full) // 2][0]
            status, rest = broker_log(b.port, user, mid, headers={"Last-Event-ID": str(half)})
            self.assertEqual(status, 200)
            self.assertEqual(rest, [e for e in full if e[0] > half])

            # a comes back with the same node id and serves the whole topic history again.
            self.cluster.restart_node(a.index)
            again = SseSubscriber(a.port, topic, name="again@a", last_event_id=start)
            subs.append(again)
            want = [(e["id"], e["data"]) for e in after(subs[2].snapshot(), start)]
            again.wait_for(lambda evs: len(evs) >= len(want), 20, "the history")
            self.assertEqual([(e["id"], e["data"]) for e in again.snapshot()], want)
        finally:
            for loop in loops:
                loop.stop()
            for s in subs:
                s.close()


if __name__ == "__main__":
    unittest.main()
