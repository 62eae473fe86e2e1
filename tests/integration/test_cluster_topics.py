"""Topics across 3 ringcast nodes sharing a 3-server NATS JetStream cluster (nats_cluster.py):
every subscriber on every node (SSE on a raw socket, curl, Python `websockets`) receives every
publication from every node (HTTP and WebSocket publishers) once, in one order, with the same
ids; a resume on another node (Last-Event-ID, since) reads history older than the local ring
from JetStream; cluster-only name rules; retention per topic pattern."""

import threading
import unittest

from cluster_clients import (CurlSubscriber, SseSubscriber, WsSubscriber, after, barrier,
                             parse_event_id, post, publish)
from nats_cluster import ClusterTestCase


class Order(ClusterTestCase):
    # Node 2 has 2 shards: its subscribers may sit on a shard other than the topic's home.
    CLUSTER_KW = {"nodes": 3, "shards": [1, 1, 2]}

    def test_every_subscriber_on_every_node_sees_every_publication_in_one_order(self):
        topic = "room.order"
        nodes = self.cluster.nodes
        subs = []
        for n in nodes:
            subs.append(SseSubscriber(n.port, topic, name=f"sse@{n.node_id}"))
            subs.append(WsSubscriber(n.port, topic, name=f"ws@{n.node_id}"))
        subs.append(SseSubscriber(nodes[2].port, topic, name="sse2@node2"))
        subs.append(CurlSubscriber(nodes[1].port, topic, name="curl@node1"))
        try:
            start = barrier(nodes[0].port, topic, subs)

            http_n, ws_n = 20, 10
            published = {}  # ack id -> data
            lock = threading.Lock()
            failures = []

            def http_publisher(node):
                for k in range(http_n):
                    data = {"node": node.index, "via": "http", "k": k}
                    status, ack, _ = publish(node.port, topic, data)
                    with lock:
                        if status != 200:
                            failures.append((node.node_id, k, status, ack))
                        else:
                            self.assertEqual(ack["topic"], topic)
                            published[ack["id"]] = data

            threads = [threading.Thread(target=http_publisher, args=(n,)) for n in nodes]
            for t in threads:
                t.start()
            ws_pubs = [s for s in subs if isinstance(s, WsSubscriber)]
            for s, n in zip(ws_pubs, nodes):
                items = [{"node": n.index, "via": "ws", "k": k} for k in range(ws_n)]
                acks = s.publish(topic, items)
                for item, a in zip(items, acks):
                    self.assertEqual(a["event"], "published", a)
                    self.assertEqual(a["data"]["topic"], topic)
                    with lock:
                        published[a["data"]["id"]] = item
            for t in threads:
                t.join(60)
            self.assertEqual(failures, [])
            total = len(nodes) * (http_n + ws_n)
            self.assertEqual(len(published), total)

            for s in subs:
                s.wait_for(lambda evs: len(after(evs, start)) >= total, 30, f"{total} events")
            reference = [(e["id"], e["data"]) for e in after(subs[0].snapshot(), start)]
            self.assertEqual(len(reference), total)
            for s in subs[1:]:
                got = [(e["id"], e["data"]) for e in after(s.snapshot(), start)]
                self.assertEqual(got, reference, s.name)
                self.assertEqual([e for e in s.snapshot() if e["event"] != "message"], [], s.name)

            # The ids are the acks' ids, one epoch, increasing sequences.
            self.assertEqual({i: d for i, d in reference}, published)
            epochs = {parse_event_id(i)[0] for i, _ in reference}
            self.assertEqual(epochs, {parse_event_id(start)[0]})
            seqs = [parse_event_id(i)[1] for i, _ in reference]
            self.assertEqual(seqs, sorted(set(seqs)))
            self.assertGreater(seqs[0], parse_event_id(start)[1])
            # Each publisher's publications keep its order.
            for n in nodes:
                for via in ("http", "ws"):
                    ks = [d["k"] for _, d in reference if d["node"] == n.index and d["via"] == via]
                    self.assertEqual(ks, sorted(ks), (n.node_id, via))
            # The WebSocket message events carry the same id as the SSE ones.
            for s in ws_pubs:
                for e in after(s.snapshot(), start):
                    self.assertEqual(e["raw"]["data"]["topic"], topic)
                    self.assertEqual(e["raw"]["data"]["seq"], parse_event_id(e["id"])[1])
        finally:
            for s in subs:
                s.close()


class Resume(ClusterTestCase):
    # A history of 8 events per topic: a resume reaches at most 8 events back, on any node.
    CLUSTER_KW = {"nodes": 3, "node_args": ["--topic-history", "8", "--topic-retention",
                                            "capped.*=per_subject:3"]}

    def test_resume_on_another_node_reads_older_history_from_jetstream(self):
        a, b, c = self.cluster.nodes
        topic = "resume.t"
        live_b = SseSubscriber(b.port, topic, name="live@b")
        subs = [live_b]
        try:
            barrier(a.port, topic, [live_b])
            acks = []
            for k in range(12):
                status, ack, _ = publish(a.port, topic, {"k": k})
                self.assertEqual(status, 200, ack)
                acks.append(ack["id"])
            live_b.wait_for(lambda evs: evs and evs[-1]["id"] == acks[-1], 20, "the 12 publications")

            # c has no subscriber of the topic: its history starts now, the older events come
            # from JetStream (Last-Event-ID 6 back, since 8 back: the most a resume reaches).
            resume_c = SseSubscriber(c.port, topic, name="resume@c", last_event_id=acks[5])
            ws_c = WsSubscriber(c.port, topic, name="ws@c", since=acks[3])
            # b's history holds the last 8: a resume from there needs no JetStream.
            ring_b = SseSubscriber(b.port, topic, name="ring@b", query=f"?since={acks[6]}")
            subs += [resume_c, ws_c, ring_b]
            want = {resume_c: acks[6:], ws_c: acks[4:], ring_b: acks[7:]}
            for s, ids in want.items():
                s.wait_for(lambda evs, ids=ids: len(evs) >= len(ids), 20, f"{len(ids)} replayed events")
                self.assertEqual([e["id"] for e in s.snapshot()], ids, s.name)
                self.assertEqual([e["data"]["k"] for e in s.snapshot()],
                                 [acks.index(i) for i in ids], s.name)
            # b: 10 back, 2 read from JetStream, 8 from its history.
            far_b = SseSubscriber(b.port, topic, name="far@b", last_event_id=acks[1])
            # c: 10 back is further than a replay reaches: reset, then c's history (empty).
            far_c = SseSubscriber(c.port, topic, name="far@c", last_event_id=acks[1])
            subs += [far_b, far_c]
            want[far_b] = acks[2:]
            evs = far_b.wait_for(lambda evs: len(evs) >= 10, 20, "10 events")
            self.assertEqual([(e["event"], e["id"]) for e in evs], [("message", i) for i in acks[2:]])
            evs = far_c.wait_for(lambda evs: len(evs) >= 1, 20, "reset")
            self.assertEqual(evs[0]["event"], "reset", evs)

            # Live publications follow the replay on every resumed subscriber, from any node.
            for k in range(12, 15):
                status, ack, _ = publish(c.port, topic, {"k": k})
                self.assertEqual(status, 200, ack)
                acks.append(ack["id"])
            for s in subs:
                s.wait_for(lambda evs: evs and evs[-1]["id"] == acks[-1], 20, "the live publications")
            for s, ids in want.items():
                self.assertEqual([e["id"] for e in s.snapshot()], ids + acks[12:], s.name)
            self.assertEqual([e["id"] for e in far_c.snapshot()[1:]], acks[12:])
        finally:
            for s in subs:
                s.close()

    def test_unknown_epoch_resets_and_cluster_name_rules_and_retention(self):
        a, b, _ = self.cluster.nodes
        status, ack, _ = publish(a.port, "plain", {"k": 0})
        self.assertEqual(status, 200, ack)
        epoch, seq = parse_event_id(ack["id"])
        # An id of another epoch: the stream starts with `reset` (and b's history of the topic,
        # empty: b had no subscriber), then the live publications.
        other = ("0" * 8 if epoch != "0" * 8 else "1" * 8) + "-1"
        s = SseSubscriber(b.port, "plain", name="reset@b", last_event_id=other)
        try:
            evs = s.wait_for(lambda evs: len(evs) >= 1, 20, "reset")
            self.assertEqual(evs[0]["event"], "reset", evs)
            self.assertEqual((evs[0]["data"]["epoch"], evs[0]["data"]["seq"]), (epoch, seq))
            status, ack2, _ = publish(a.port, "plain", {"k": 1})
            self.assertEqual(status, 200, ack2)
            evs = s.wait_for(lambda evs: len(evs) >= 2, 20, "the next publication")
            self.assertEqual([(e["id"], e["data"]) for e in evs[1:]], [(ack2["id"], {"k": 1})])
        finally:
            s.close()

        # NATS subjects have no empty tokens: such names are refused in cluster mode.
        for name in ("a..b", "a.", ".a"):
            r = post(a.port, f"/v1/topics/{name}", {"x": 1})
            self.assertEqual(r.status, 400, (name, r.body))
            self.assertEqual(r.json()["error"]["code"], "invalid_topic", r.body)
        # capped.* keeps 3 messages per topic (--topic-retention): a resume from a dropped id is
        # a reset; from a retained one, the rest.
        ids = []
        for k in range(6):
            status, ack, _ = publish(b.port, "capped.x", {"k": k})
            self.assertEqual(status, 200, ack)
            ids.append(ack["id"])
        s = SseSubscriber(a.port, "capped.x", name="capped@a", last_event_id=ids[0])
        t = SseSubscriber(b.port, "capped.x", name="kept@b", last_event_id=ids[3])
        try:
            evs = s.wait_for(lambda evs: len(evs) >= 1, 20, "reset")
            self.assertEqual(evs[0]["event"], "reset", evs)
            evs = t.wait_for(lambda evs: len(evs) >= 2, 20, "2 retained")
            self.assertEqual([e["id"] for e in evs], ids[4:])
        finally:
            s.close()
            t.close()


if __name__ == "__main__":
    unittest.main()
