"""Topics across two ringcast nodes through a real nats-server with JetStream (one NATS server on
loopback, started and stopped by the tests): one order and the same ids everywhere, resume on the
other node (from the local history or from the stream), resets, 503 nats_unavailable while NATS
is down and recovery without a restart, the per-node consumer's lifetime."""

import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

import websockets

from harness import Server, assert_error_envelope, get
from test_streams import SseReader, post

NATS_BIN = shutil.which("nats-server") or "/usr/sbin/nats-server"


class NatsServer:
    """One nats-server with JetStream on loopback; random ports the first time, the same ports
    (and store) when started again."""

    def __init__(self):
        self.store = tempfile.mkdtemp(prefix="rc-nats-")
        self.port = -1
        self.monitor_port = -1
        self.proc = None
        self.start()

    def start(self, timeout=15.0):
        cmd = [NATS_BIN, "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.monitor_port),
               "-js", "-sd", self.store]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        lines, ready = [], threading.Event()

        def read():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace")
                lines.append(line)
                m = re.search(r"Listening for client connections on 127\.0\.0\.1:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                m = re.search(r"Starting http monitor on 127\.0\.0\.1:(\d+)", line)
                if m:
                    self.monitor_port = int(m.group(1))
                if "Server is ready" in line:
                    ready.set()

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        if not ready.wait(timeout):
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("nats-server did not start:\n" + "".join(lines))

    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc:
            self.reader.join(5)
            self.proc.stderr.close()

    def close(self):
        self.stop()
        shutil.rmtree(self.store, ignore_errors=True)

    def js_api(self, subject, body=b""):
        """One JetStream API request over a raw NATS connection; the JSON answer."""
        import socket
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as c, \
                c.makefile("rb") as f:
            f.readline()  # INFO
            c.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\n'
                      b"SUB _INBOX.rctest 1\r\n" +
                      f"PUB {subject} _INBOX.rctest {len(body)}\r\n".encode() + body +
                      b"\r\nPING\r\n")
            while True:
                line = f.readline()
                if line.startswith(b"MSG "):
                    n = int(line.split()[-1])
                    return json.loads(f.read(n + 2)[:n])
                if not line or line.startswith(b"-ERR"):
                    raise AssertionError(f"NATS: {line!r}")

    def consumers(self, stream="RC_T0"):
        """Consumers of `stream` (from the monitoring endpoint)."""
        url = f"http://127.0.0.1:{self.monitor_port}/jsz?streams=true&consumers=true"
        with urllib.request.urlopen(url, timeout=5) as r:
            jsz = json.load(r)
        for account in jsz.get("account_details", []):
            for s in account.get("stream_detail", []):
                if s["name"] == stream:
                    return len(s.get("consumer_detail") or [])
        return 0


def wait_for(cond, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def ready(node):
    try:
        return get(node.port, "/readyz", timeout=2).status == 200
    except OSError:
        return False


def events(sub, n, timeout=15.0):
    return [sub.next_event(timeout) for _ in range(n)]


def ws_url(node):
    return f"ws://127.0.0.1:{node.port}/ws"


class Cluster(unittest.TestCase):
    """A NATS server and two ringcast nodes (two shards each), fresh for every test."""

    node_args = ()

    def setUp(self):
        self.nats = NatsServer()
        self.addCleanup(self.nats.close)
        self.nodes = []
        for name in ("n1", "n2"):
            node = Server("--nats", self.nats.url(), "--node-id", name, *self.node_args, shards=2)
            self.nodes.append(node)
            self.addCleanup(self.stop_node, node)
        for node in self.nodes:
            wait_for(lambda: ready(node), what="the node to be ready")

    def stop_node(self, node):
        code = node.stop()
        self.assertEqual(code, 0, node.log())

    def publish(self, node, topic, body):
        r = post(node.port, f"/v1/topics/{topic}", body)
        self.assertEqual(r.status, 200, r.body)
        return r.json()


class Delivery(Cluster):
    def test_publication_reaches_sse_and_ws_on_both_nodes_once_with_the_same_ids(self):
        n1, n2 = self.nodes
        first = self.publish(n1, "news", {"i": -1})
        self.assertRegex(first["id"], r"^[0-9a-f]{8}-\d+$")
        self.assertEqual(first["id"], f"{first['id'].split('-')[0]}-{first['seq']}")
        # Subscribing from the first publication on: nothing after it can be missed, whether it
        # comes from the stream or live.
        sse = [SseReader(n.port, "/v1/topics/news/events", {"Last-Event-ID": first["id"]})
               for n in (n1, n2)]
        for s in sse:
            self.assertEqual(s.head.status, 200)

        async def run():
            wss = [await websockets.connect(ws_url(n)) for n in (n1, n2)]
            for i, ws in enumerate(wss):
                await ws.send(json.dumps({"id": f"s{i}", "action": "subscribe",
                                          "payload": {"topic": "news", "since": first["id"]}}))
                sub = json.loads(await asyncio.wait_for(ws.recv(), 15))
                self.assertEqual(sub["event"], "subscribed", sub)
            acks, received = [], [[], []]
            for i in range(10):  # from both nodes, HTTP and WebSocket
                if i % 3 == 2:
                    await wss[0].send(json.dumps({"id": f"p{i}", "action": "publish",
                                                  "payload": {"topic": "news", "data": {"i": i}}}))
                    while len(acks) <= i:
                        m = json.loads(await asyncio.wait_for(wss[0].recv(), 15))
                        if m["event"] == "published":
                            acks.append(m["data"])
                        elif m["event"] == "message":
                            received[0].append(m["data"])
                else:
                    acks.append(self.publish(self.nodes[i % 2], "news", {"i": i}))
            for ws, msgs in zip(wss, received):
                while len(msgs) < 10:
                    m = json.loads(await asyncio.wait_for(ws.recv(), 15))
                    self.assertEqual(m["event"], "message", m)
                    msgs.append(m["data"])
            for ws in wss:
                await ws.close()
            return acks, received

        acks, received = asyncio.run(run())
        want = [(a["id"], i) for i, a in enumerate(acks)]
        seqs = [a["seq"] for a in acks]
        self.assertEqual(seqs, sorted(seqs))
        for msgs in received:
            self.assertEqual([(m["id"], m["data"]["i"]) for m in msgs], want)
        for s in sse:
            got = events(s, 10)
            self.assertEqual([(e["id"], json.loads(e["data"])["i"]) for e in got], want)
            s.close()

    def test_concurrent_publishers_on_both_nodes_one_order_everywhere(self):
        n1, n2 = self.nodes
        first = self.publish(n1, "race", {"start": True})
        subs = [SseReader(n.port, "/v1/topics/race/events", {"Last-Event-ID": first["id"]})
                for n in (n1, n2, n1, n2)]
        acks, errors = [], []

        def publisher(node, tag):
            try:
                for i in range(40):
                    acks.append(self.publish(node, "race", {"p": tag, "i": i}))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=publisher, args=(n, t))
                   for n, t in ((n1, "a"), (n2, "b"), (n1, "c"), (n2, "d"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(len(acks), 160)
        orders = []
        for s in subs:
            got = events(s, 160)
            orders.append([(e["id"], e["data"]) for e in got])
            s.close()
        for order in orders[1:]:
            self.assertEqual(order, orders[0])
        seqs = [int(i.split("-")[1]) for i, _ in orders[0]]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(sorted(seqs), sorted(a["seq"] for a in acks))
        for tag in "abcd":  # each publisher's own order is kept
            mine = [json.loads(d)["i"] for _, d in orders[0] if json.loads(d)["p"] == tag]
            self.assertEqual(mine, list(range(40)))

    def test_chat_deltas_with_x_ringcast_topic_reach_the_other_node(self):
        n1, n2 = self.nodes
        first = self.publish(n2, "gen", {"start": True})
        sub = SseReader(n2.port, "/v1/topics/gen/events", {"Last-Event-ID": first["id"]})
        body = {"model": "ringcast-mock", "messages": [{"role": "user", "content": "hello there"}],
                "stream": True}
        r = post(n1.port, "/v1/chat/completions", body, {"x-ringcast-topic": "gen"})
        self.assertEqual(r.status, 200, r.body)
        types = []
        while "done" not in types:
            types.append(json.loads(sub.next_event()["data"])["type"])
        self.assertGreater(types.count("delta"), 0)
        sub.close()

    def test_topic_names_that_are_no_nats_subject_are_refused(self):
        n1 = self.nodes[0]
        for name in (".a", "a.", "a..b"):
            r = post(n1.port, f"/v1/topics/{name}", {"x": 1})
            assert_error_envelope(self, r, 400, "invalid_topic")
        r = get(n1.port, "/v1/topics/a..b/events")
        assert_error_envelope(self, r, 400, "invalid_topic")


class Resume(Cluster):
    node_args = ("--topic-history", "4", "--topic-retention", "capped.*=per_subject:3")

    def test_last_event_id_on_the_other_node_reads_the_stream(self):
        n1, n2 = self.nodes
        acks = [self.publish(n1, "r", {"i": i}) for i in range(4)]
        # n2 has never had a subscriber of "r": everything after the id comes from the stream.
        sub = SseReader(n2.port, "/v1/topics/r/events", {"Last-Event-ID": acks[1]["id"]})
        got = events(sub, 2)
        self.assertEqual([(e["id"], json.loads(e["data"])["i"]) for e in got],
                         [(acks[2]["id"], 2), (acks[3]["id"], 3)])
        live = self.publish(n1, "r", {"i": 4})
        e = sub.next_event()
        self.assertEqual((e["id"], json.loads(e["data"])["i"]), (live["id"], 4))
        sub.close()

    def test_resume_before_the_local_history_joins_stream_and_history(self):
        n1, n2 = self.nodes
        acks = [self.publish(n1, "j", {"i": i}) for i in range(3)]
        # A subscriber on n2 from now on: n2's history starts after event 2.
        watcher = SseReader(n2.port, "/v1/topics/j/events", {"Last-Event-ID": acks[2]["id"]})
        acks += [self.publish(n1, "j", {"i": i}) for i in range(3, 5)]
        self.assertEqual([json.loads(e["data"])["i"] for e in events(watcher, 2)], [3, 4])
        # From event 0: 1 and 2 from the stream, 3 and 4 from n2's history, no duplicate.
        sub = SseReader(n2.port, "/v1/topics/j/events", {"Last-Event-ID": acks[0]["id"]})
        got = events(sub, 4)
        self.assertEqual([e["id"] for e in got], [a["id"] for a in acks[1:5]])
        acks.append(self.publish(n2, "j", {"i": 5}))
        self.assertEqual(sub.next_event()["id"], acks[5]["id"])
        self.assertEqual(watcher.next_event()["id"], acks[5]["id"])
        sub.close()
        watcher.close()

    def test_resume_reaches_topic_history_events_back_then_resets(self):
        n1, n2 = self.nodes
        acks = [self.publish(n1, "far", {"i": i}) for i in range(10)]
        # n2 has no history of "far": 4 events back (--topic-history) are read from the stream.
        sub = SseReader(n2.port, "/v1/topics/far/events", {"Last-Event-ID": acks[5]["id"]})
        self.assertEqual([e["id"] for e in events(sub, 4)], [a["id"] for a in acks[6:]])
        sub.close()
        # 8 back is further than a resume reaches: reset, then n2's history (empty), then live.
        sub = SseReader(n2.port, "/v1/topics/far/events", {"Last-Event-ID": acks[1]["id"]})
        reset = sub.next_event()
        self.assertEqual(reset["event"], "reset")
        self.assertNotIn("id", reset)
        self.assertEqual(json.loads(reset["data"])["seq"], acks[9]["seq"])
        live = self.publish(n1, "far", {"i": 10})
        self.assertEqual(sub.next_event()["id"], live["id"])
        sub.close()

    def test_reset_when_the_resume_point_is_gone_from_the_stream(self):
        n1, n2 = self.nodes
        # capped.* keeps 3 events per topic in the stream (--topic-retention).
        acks = [self.publish(n1, "capped.x", {"i": i}) for i in range(6)]
        sub = SseReader(n2.port, "/v1/topics/capped.x/events", {"Last-Event-ID": acks[1]["id"]})
        reset = sub.next_event()
        self.assertEqual(reset["event"], "reset")
        self.assertEqual(json.loads(reset["data"])["topic"], "capped.x")
        live = self.publish(n1, "capped.x", {"i": 6})
        self.assertEqual(sub.next_event()["id"], live["id"])
        sub.close()
        # From a retained one: the rest.
        sub = SseReader(n2.port, "/v1/topics/capped.x/events", {"Last-Event-ID": acks[4]["id"]})
        self.assertEqual([e["id"] for e in events(sub, 2)], [acks[5]["id"], live["id"]])
        sub.close()

    def test_reset_on_a_foreign_epoch_or_another_topics_id(self):
        n1, n2 = self.nodes
        acks = [self.publish(n1, "b", {"i": i}) for i in range(3)]
        epoch = acks[0]["id"].split("-")[0]
        foreign = ("0" if epoch[0] != "0" else "1") + epoch[1:]
        sub = SseReader(n2.port, "/v1/topics/b/events", {"Last-Event-ID": f"{foreign}-2"})
        reset = sub.next_event()
        self.assertEqual(reset["event"], "reset")
        self.assertEqual(json.loads(reset["data"])["epoch"], epoch)
        sub.close()
        # An id of another topic from before the node's history (n1 has had no subscriber of
        # "b") is no resume point for this one: the stream cannot tell whether "b" lost events
        # after it.
        other = self.publish(n1, "other", {"x": 1})
        self.publish(n1, "b", {"i": 3})
        sub = SseReader(n1.port, "/v1/topics/b/events", {"Last-Event-ID": other["id"]})
        self.assertEqual(sub.next_event()["event"], "reset")
        sub.close()

    def test_ws_since_on_the_other_node(self):
        n1, n2 = self.nodes
        acks = [self.publish(n1, "w", {"i": i}) for i in range(3)]

        async def run():
            async with websockets.connect(ws_url(n2)) as ws:
                await ws.send(json.dumps({"id": "s", "action": "subscribe",
                                          "payload": {"topic": "w", "since": acks[0]["id"]}}))
                sub = json.loads(await asyncio.wait_for(ws.recv(), 15))
                self.assertEqual(sub["event"], "subscribed", sub)
                self.assertEqual(sub["data"]["epoch"], acks[0]["id"].split("-")[0])
                return [json.loads(await asyncio.wait_for(ws.recv(), 15))["data"]
                        for _ in range(2)]

        got = asyncio.run(run())
        self.assertEqual([(m["id"], m["data"]["i"]) for m in got],
                         [(acks[1]["id"], 1), (acks[2]["id"], 2)])


class Consumers(Cluster):
    def test_one_consumer_per_node_only_while_it_has_subscribers(self):
        n1, n2 = self.nodes
        first = self.publish(n1, "c", {"i": 0})
        self.assertEqual(self.nats.consumers(), 0)
        # Subscribers on both shards of n1 (several connections): still one consumer for n1.
        subs = [SseReader(n1.port, "/v1/topics/c/events", {"Last-Event-ID": first["id"]})
                for _ in range(4)]
        wait_for(lambda: self.nats.consumers() == 1, what="n1's consumer")
        other = SseReader(n2.port, "/v1/topics/c/events", {"Last-Event-ID": first["id"]})
        wait_for(lambda: self.nats.consumers() == 2, what="n2's consumer")
        ack = self.publish(n2, "c", {"i": 1})
        for s in subs + [other]:
            self.assertEqual(s.next_event()["id"], ack["id"])
        for s in subs + [other]:
            s.close()
        # After a short linger nobody's consumer is left.
        wait_for(lambda: self.nats.consumers() == 0, what="the consumers to go")


class NatsDown(Cluster):
    def test_503_while_nats_is_down_then_recovery_without_restart(self):
        n1, n2 = self.nodes
        first = self.publish(n1, "d", {"i": 0})
        live = SseReader(n2.port, "/v1/topics/d/events", {"Last-Event-ID": first["id"]})
        before = self.publish(n1, "d", {"i": 1})
        self.assertEqual(live.next_event()["id"], before["id"])

        self.nats.stop()
        wait_for(lambda: not ready(n1) and not ready(n2), what="the nodes to notice")
        r = post(n1.port, "/v1/topics/d", {"i": 2})
        err = assert_error_envelope(self, r, 503, "nats_unavailable")
        self.assertEqual(err["type"], "server_error")
        self.assertTrue(r.header("retry-after"))
        r = get(n2.port, "/v1/topics/d/events")
        assert_error_envelope(self, r, 503, "nats_unavailable")
        body = {"model": "ringcast-mock", "messages": [{"role": "user", "content": "hi"}]}
        r = post(n1.port, "/v1/chat/completions", body, {"x-ringcast-topic": "d"})
        assert_error_envelope(self, r, 503, "nats_unavailable")

        async def ws_publish():
            async with websockets.connect(ws_url(n1)) as ws:
                out = []
                for action, payload in (("publish", {"topic": "d", "data": 1}),
                                        ("subscribe", {"topic": "d"})):
                    await ws.send(json.dumps({"id": "x", "action": action, "payload": payload}))
                    out.append(json.loads(await asyncio.wait_for(ws.recv(), 15)))
                return out

        for m in asyncio.run(ws_publish()):
            self.assertEqual((m["event"], m["error"]["code"], m["error"]["status"]),
                             ("error", "nats_unavailable", 503), m)
            self.assertGreaterEqual(m["error"]["retry_after_ms"], 1000)

        self.nats.start()
        wait_for(lambda: ready(n1) and ready(n2), timeout=30, what="the nodes to recover")
        after = [self.publish(n, "d", {"i": i}) for i, n in ((2, n1), (3, n2))]
        # The subscriber from before the outage goes on with no gap and no duplicate.
        got = events(live, 2, timeout=30)
        self.assertEqual([e["id"] for e in got], [a["id"] for a in after])
        self.assertEqual(after[0]["id"].split("-")[0], first["id"].split("-")[0])
        live.close()


class StreamCreatedAgain(Cluster):
    """A topic stream created again (a NATS server restarted without its store, or the stream
    deleted while the nodes stay connected): subscribers get a reset, never silence, and every
    node uses the new stream's epoch."""

    def publish_when_ready(self, node, topic, body):
        deadline = time.monotonic() + 30
        while True:
            r = post(node.port, f"/v1/topics/{topic}", body)
            if r.status == 200 or time.monotonic() > deadline:
                self.assertEqual(r.status, 200, r.body)
                return r.json()
            time.sleep(0.2)

    def check_reset_then_new_ids(self, live, old_epoch):
        n1, n2 = self.nodes
        first = self.publish_when_ready(n1, "z", {"i": 100})
        new_epoch = first["id"].split("-")[0]
        self.assertNotEqual(new_epoch, old_epoch)
        reset = live.next_event(timeout=30)
        self.assertEqual(reset["event"], "reset", reset)
        self.assertEqual(json.loads(reset["data"])["epoch"], new_epoch)
        # n2 may not have seen the new stream yet: its publication reaches no stream and is
        # refused (503) until it has checked its streams, which that refusal starts.
        after = [self.publish_when_ready(n, "z", {"i": i}) for i, n in ((101, n1), (102, n2))]
        self.assertEqual({a["id"].split("-")[0] for a in after}, {new_epoch})
        got = []
        while not got or got[-1] != after[-1]["id"]:
            got.append(live.next_event(timeout=30)["id"])
        self.assertEqual(got[-2:], [a["id"] for a in after])
        self.assertLessEqual(set(got), {first["id"]} | {a["id"] for a in after})
        # A new subscriber on the node that already had a consumer: the new stream's ids.
        fresh = SseReader(n2.port, "/v1/topics/z/events", {"Last-Event-ID": after[0]["id"]})
        self.assertEqual(fresh.next_event(timeout=30)["id"], after[1]["id"])
        last = self.publish(n1, "z", {"i": 103})
        self.assertEqual(fresh.next_event(timeout=30)["id"], last["id"])
        self.assertEqual(live.next_event(timeout=30)["id"], last["id"])
        fresh.close()

    def subscribed_on_n2(self):
        n1, n2 = self.nodes
        acks = [self.publish(n1, "z", {"i": i}) for i in range(5)]
        live = SseReader(n2.port, "/v1/topics/z/events", {"Last-Event-ID": acks[-1]["id"]})
        ack = self.publish(n1, "z", {"i": 5})
        self.assertEqual(live.next_event()["id"], ack["id"])
        return live, ack["id"].split("-")[0]

    def test_store_lost_subscribers_get_a_reset_and_the_new_epoch(self):
        n1, n2 = self.nodes
        live, old_epoch = self.subscribed_on_n2()
        self.nats.stop()
        wait_for(lambda: not ready(n1) and not ready(n2), what="the nodes to notice")
        shutil.rmtree(self.nats.store, ignore_errors=True)
        os.makedirs(self.nats.store)
        self.nats.start()
        wait_for(lambda: ready(n1) and ready(n2), timeout=30, what="the nodes to recover")
        self.check_reset_then_new_ids(live, old_epoch)
        live.close()

    def test_stream_deleted_while_connected_is_ensured_again(self):
        n1, n2 = self.nodes
        live, old_epoch = self.subscribed_on_n2()
        answer = self.nats.js_api("$JS.API.STREAM.DELETE.RC_T0")
        self.assertTrue(answer.get("success"), answer)
        self.check_reset_then_new_ids(live, old_epoch)
        live.close()

    def test_a_node_that_missed_the_new_stream_never_answers_with_the_old_epoch(self):
        """The race: the stream deleted and created again (here by the test, as another node
        would) with another epoch, then publications on nodes that have not checked their
        streams since. Whatever they answer, an id never names the old stream's epoch."""
        n1, n2 = self.nodes
        old = [self.publish(n, "z", {"i": i}) for i, n in enumerate((n1, n2))]
        old_epoch = old[0]["id"].split("-")[0]
        self.assertEqual(old[1]["id"], f"{old_epoch}-2")
        config = self.nats.js_api("$JS.API.STREAM.INFO.RC_T0")["config"]
        self.assertEqual(config["description"], f"ringcast epoch {old_epoch}")
        new_epoch = "0badc0de" if old_epoch != "0badc0de" else "0badcafe"
        # The configuration a node would create: the epoch wherever it is (description, and
        # the subjects when they carry it).
        config = json.loads(json.dumps(config).replace(old_epoch, new_epoch))
        answer = self.nats.js_api("$JS.API.STREAM.DELETE.RC_T0")
        self.assertTrue(answer.get("success"), answer)
        created = self.nats.js_api("$JS.API.STREAM.CREATE.RC_T0", json.dumps(config).encode())
        self.assertNotIn("error", created)
        # Both nodes still know the old epoch (their periodic check runs every 5 s).
        for i, n in enumerate((n1, n2, n1, n2)):
            r = post(n.port, "/v1/topics/z", {"i": 10 + i})
            if r.status == 200:
                self.assertEqual(r.json()["id"].split("-")[0], new_epoch, r.body)
            else:
                assert_error_envelope(self, r, 503, "nats_unavailable")
                self.assertGreaterEqual(int(r.header("retry-after")), 1)
        # The refusal made them check their streams: they publish with the new epoch.
        ids = [self.publish_when_ready(n, "z", {"i": 20 + i})["id"] for i, n in enumerate((n1, n2))]
        self.assertEqual({i.split("-")[0] for i in ids}, {new_epoch})
        self.assertEqual(len(set(ids)), 2)


if __name__ == "__main__":
    unittest.main()
