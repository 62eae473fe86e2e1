"""The broker queue across ringcast nodes joined through a real nats-server with JetStream
(docs/cluster.md): enqueue on any node and watch on any node with resume, per-user order across
nodes, takeover when the owning node is killed (nothing lost, exactly one terminal event), 503
broker_unavailable while NATS is down and recovery without a restart, cancel from another node."""

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

import websockets

from harness import Server, assert_error_envelope, get, metrics, request
from openai_client import post_json

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
LEASE_MS = 3000  # small, but renewals keep up on a loaded machine
PARTITIONS = 8


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nats:
    """A nats-server with JetStream on a loopback port, storing under `store` (kept across
    restarts)."""

    def __init__(self, store, port=None):
        self.store = store
        self.port = port or free_port()
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen([NATS_SERVER, "-js", "-sd", self.store, "-a", "127.0.0.1",
                                      "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nats-server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.port}"


def node(nats, name, shards=2, tokens_per_s=40):
    return Server("--nats", nats.url, "--node-id", name, "--broker-lease-ms", LEASE_MS,
                  "--broker-partitions", PARTITIONS, "--mock-tokens-per-s", tokens_per_s,
                  shards=shards)


def kill(server):
    """kill -9, as a crash would."""
    server.proc.kill()
    server.proc.wait(10)
    server._reader.join(5)


def enqueue(port, user, text, **kw):
    body = {"user_id": user, "message": text}
    body.update(kw)
    return post_json(port, "/api/v1/message", body)


def enqueue_ok(port, user, text, timeout=30, **kw):
    """Enqueues, retrying while no node works the partition yet (503 broker_unavailable)."""
    deadline = time.monotonic() + timeout
    while True:
        r = enqueue(port, user, text, **kw)
        if r.status == 202 or time.monotonic() > deadline:
            assert r.status == 202, (r.status, r.body)
            return r.json()
        assert r.status == 503, (r.status, r.body)
        time.sleep(0.2)


def stream_url(user, message_id):
    return "/api/v1/stream?" + urllib.parse.urlencode({"user_id": user, "message_id": message_id})


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
            out.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
    return out


def full_log(port, user, message_id, last_event_id=None):
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else None
    r = get(port, stream_url(user, message_id), headers, timeout=90)
    assert r.status == 200, (r.status, r.body)
    return parse_sse(r.body)


def partitions_owned(port):
    total = 0
    for (name, labels), value in metrics(port).items():
        if name == "ringcast_broker_partitions":
            total += value
    return int(total)


def wait_until(predicate, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def wait_balanced(*servers):
    """Every partition owned, and by more than one node when there are several."""
    def balanced():
        owned = [partitions_owned(s.port) for s in servers]
        return sum(owned) == PARTITIONS and all(n > 0 for n in owned)
    wait_until(balanced, 40, "the partitions to spread over the nodes")


def check_lifecycle(test, log, message_id):
    seqs = [seq for seq, _, _ in log]
    test.assertEqual(seqs, sorted(set(seqs)), "ids increase, none repeated")
    test.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))), "no gap")
    kinds = [k for _, k, _ in log]
    test.assertEqual(kinds[0], "queued")
    test.assertIn("processing", kinds)
    test.assertEqual(kinds[-1], "done")
    test.assertEqual(sum(k in ("done", "error") for k in kinds), 1, kinds)
    test.assertEqual(log[-1][2]["message_id"], message_id)


class Cluster(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="rc-broker-nats-")
        self.nats = Nats(self.dir)
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            if s.proc.poll() is None:
                s.stop()
        self.nats.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, name, **kw):
        s = node(self.nats, name, **kw)
        self.servers.append(s)
        return s

    def test_enqueue_on_any_node_watch_on_any_node_with_resume(self):
        a, b = self.start("a"), self.start("b")
        wait_balanced(a, b)
        sent = []
        for i in range(6):
            origin = (a, b)[i % 2]
            user = f"user-{i}"
            body = enqueue_ok(origin.port, user, f"hello {i}", max_tokens=4)
            self.assertEqual(body["status"], "queued")
            self.assertRegex(body["message_id"], r"^msg_\d+_[0-9a-f]{16}$")
            sent.append((user, body["message_id"]))
        for user, mid in sent:
            on_a, on_b = full_log(a.port, user, mid), full_log(b.port, user, mid)
            check_lifecycle(self, on_a, mid)
            self.assertEqual(on_a, on_b, "the same events with the same ids on every node")
            self.assertEqual([k for _, k, _ in on_a].count("progress"), 4)
            # Resume after any event, on either node: exactly the rest.
            cut = on_a[1][0]
            self.assertEqual(full_log(b.port, user, mid, last_event_id=cut), on_a[2:])
            self.assertEqual(full_log(a.port, user, mid, last_event_id=cut), on_a[2:])
        # Another user's message, or no message: 404 on every node.
        for s in (a, b):
            assert_error_envelope(self, get(s.port, stream_url("intruder", sent[0][1])), 404,
                                  "message_not_found")
            assert_error_envelope(self, get(s.port, stream_url("u", "msg_0_0123456789abcdef")),
                                  404, "message_not_found")
        # WebSocket message.stream on both nodes, resuming after the first event.
        user, mid = sent[0]

        async def ws_events(port):
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
                await ws.send(json.dumps({"id": "w", "action": "message.stream", "payload": {
                    "user_id": user, "message_id": mid, "last_event_id": "1"}}))
                out = []
                while True:
                    ev = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    self.assertNotEqual(ev["event"], "error", ev)
                    out.append((int(ev["event_id"]), ev["event"], ev["data"]))
                    if ev["event"] in ("done", "error"):
                        return out
        expected = full_log(a.port, user, mid, last_event_id=1)
        for s in (a, b):
            self.assertEqual(asyncio.run(ws_events(s.port)), expected)

    def test_a_users_messages_keep_their_order_across_nodes(self):
        a, b = self.start("a", tokens_per_s=10), self.start("b", tokens_per_s=10)
        wait_balanced(a, b)
        ids = []
        for i in range(6):
            # Each takes a second: all are queued before the first ends.
            body = enqueue_ok((a, b)[i % 2].port, "orderly", f"message {i}", max_tokens=10)
            self.assertEqual(body["queue_position"], i, "one queue, in arrival order")
            ids.append(body["message_id"])
        for i, mid in enumerate(ids):
            log = full_log((b, a)[i % 2].port, "orderly", mid)
            check_lifecycle(self, log, mid)
            # Position updates count down as the messages before it finish, in order.
            positions = [d["position"] for _, k, d in log if k == "queued"]
            self.assertEqual(positions, list(range(i, -1, -1)), log)

    def test_owner_killed_mid_processing_its_work_completes_on_another_node(self):
        a = self.start("a", tokens_per_s=10)
        wait_until(lambda: partitions_owned(a.port) == PARTITIONS, 30, "node a to own everything")
        ids = [enqueue_ok(a.port, "survivor", f"job {i}", max_tokens=40)["message_id"]
               for i in range(3)]
        other = enqueue_ok(a.port, "bystander", "queued too", max_tokens=3)["message_id"]
        b = self.start("b", tokens_per_s=40)
        # Node a is processing the first message (b reads its stored progress), then dies.
        wait_until(lambda: full_log_until(b.port, "survivor", ids[0], "progress"), 30,
                   "the first message to be processing on node a")
        kill(a)
        for mid in ids:
            check_lifecycle(self, full_log(b.port, "survivor", mid), mid)
        first = full_log(b.port, "survivor", ids[0])
        attempts = [d.get("attempt", 1) for _, k, d in first if k == "processing"]
        self.assertEqual(attempts, [1, 2], first)
        self.assertEqual(first[-1][2]["usage"]["completion_tokens"], 40)
        check_lifecycle(self, full_log(b.port, "bystander", other), other)
        # Node b works every partition now and takes new messages.
        wait_until(lambda: partitions_owned(b.port) == PARTITIONS, 30, "node b to own everything")
        mid = enqueue_ok(b.port, "survivor", "again", max_tokens=2)["message_id"]
        check_lifecycle(self, full_log(b.port, "survivor", mid), mid)

    def test_nats_down_answers_503_then_recovers_without_a_restart(self):
        a = self.start("a", tokens_per_s=10)
        mid = enqueue_ok(a.port, "u1", "before", max_tokens=2)["message_id"]
        check_lifecycle(self, full_log(a.port, "u1", mid), mid)
        # Accepted and processing when NATS goes away: it is not lost.
        slow = enqueue_ok(a.port, "u3", "through the outage", max_tokens=30)["message_id"]
        wait_until(lambda: full_log_until(a.port, "u3", slow, "progress"), 20, "processing")
        watching = {}
        watcher = threading.Thread(target=lambda: watching.update(log=full_log(a.port, "u3", slow)))
        watcher.start()
        time.sleep(0.3)
        self.nats.stop()
        def refused():
            r = enqueue(a.port, "u1", "while down", max_tokens=2)
            self.assertIn(r.status, (202, 503), r.body)
            return r.status == 503
        wait_until(refused, 20, "enqueues to be refused")
        r = enqueue(a.port, "u2", "while down", max_tokens=2)
        err = assert_error_envelope(self, r, 503, "broker_unavailable")
        self.assertEqual(err["type"], "server_error")
        self.assertGreaterEqual(int(r.header("retry-after")), 1)
        # Watching needs the stored log too.
        assert_error_envelope(self, get(a.port, stream_url("u9", "msg_0_0123456789abcdef")), 503,
                              "broker_unavailable")
        time.sleep(LEASE_MS / 1000)  # past the lease: the node has let its partitions go
        self.nats.start()
        mid = enqueue_ok(a.port, "u1", "after", max_tokens=2, timeout=40)["message_id"]
        check_lifecycle(self, full_log(a.port, "u1", mid), mid)
        log = full_log(a.port, "u3", slow)
        check_lifecycle(self, log, slow)
        self.assertEqual([d.get("attempt", 1) for _, k, d in log if k == "processing"], [1, 2], log)
        # A watcher streaming through the outage got the same, once each.
        watcher.join(60)
        self.assertEqual(watching.get("log"), log)

    def test_a_message_ending_while_nats_is_down_ends_once_for_its_watchers(self):
        """Its end cannot be stored while NATS is down: watchers must not see it until it is
        (the node lets the partition go, and whoever works it next runs the message again)."""
        a = self.start("a", tokens_per_s=10)
        mid = enqueue_ok(a.port, "u1", "before", max_tokens=2)["message_id"]
        check_lifecycle(self, full_log(a.port, "u1", mid), mid)
        # 1.5 s of work: it ends during the outage, before the node gives up its lease.
        slow = enqueue_ok(a.port, "u3", "ends during the outage", max_tokens=15)["message_id"]
        wait_until(lambda: full_log_until(a.port, "u3", slow, "progress"), 20, "processing")
        watching = {}
        watcher = threading.Thread(target=lambda: watching.update(log=full_log(a.port, "u3", slow)))
        watcher.start()
        time.sleep(0.1)
        self.nats.stop()
        time.sleep(2 * LEASE_MS / 1000)  # past the lease: the node has let its partitions go
        self.nats.start()
        mid = enqueue_ok(a.port, "u1", "after", max_tokens=2, timeout=40)["message_id"]
        check_lifecycle(self, full_log(a.port, "u1", mid), mid)
        log = full_log(a.port, "u3", slow)
        check_lifecycle(self, log, slow)
        attempts = [d.get("attempt", 1) for _, k, d in log if k == "processing"]
        self.assertIn(attempts, ([1], [1, 2]), log)
        # The watcher that streamed through the outage saw the stored log, one end only.
        watcher.join(90)
        self.assertEqual(watching.get("log"), log)
        self.assertEqual(sum(k in ("done", "error") for _, k, _ in watching["log"]), 1)

    def test_events_in_flight_when_nats_dies_are_stored_without_a_gap(self):
        """Lifecycle events are stored with an acknowledgement, sent again after a reconnect:
        the stored log has every event the watcher saw, even those NATS lost (frozen, then kill -9)."""
        a = self.start("a", tokens_per_s=200)
        slow = enqueue_ok(a.port, "u3", "streams through the crash", max_tokens=400)["message_id"]
        wait_until(lambda: full_log_until(a.port, "u3", slow, "progress"), 20, "processing")
        watching = {}
        watcher = threading.Thread(target=lambda: watching.update(log=full_log(a.port, "u3", slow)))
        watcher.start()
        time.sleep(0.2)
        # Frozen, then killed: what the node wrote meanwhile was never read by the server.
        self.nats.proc.send_signal(signal.SIGSTOP)
        time.sleep(0.5)
        self.nats.proc.kill()
        self.nats.proc.wait(10)
        time.sleep(0.3)
        self.nats.start()
        watcher.join(90)
        # Node b has none of it in memory: it reads the stored log.
        b = self.start("b")
        wait_until(lambda: full_log_until(b.port, "u3", slow, "done"), 30, "node b to read it")
        log = full_log(b.port, "u3", slow)
        check_lifecycle(self, log, slow)
        self.assertEqual(watching.get("log"), log)

    def test_cancel_from_another_node(self):
        a, b = self.start("a", tokens_per_s=10), self.start("b", tokens_per_s=10)
        wait_balanced(a, b)
        for i in range(4):
            user = f"canceller-{i}"
            first = enqueue_ok(a.port, user, "long", max_tokens=40)["message_id"]
            second = enqueue_ok(b.port, user, "queued", max_tokens=2)["message_id"]
            # The queued one from one node, the processing one from the other (one of the two is
            # not the partition's owner).
            here, there = (a, b) if i % 2 else (b, a)
            r = request(here.port, f"DELETE /api/v1/message/{second}?user_id={user} HTTP/1.1\r\n"
                                   "Host: x\r\n\r\n".encode())
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json(), {"message_id": second, "status": "cancelled",
                                        "previous_status": "queued"})
            wait_until(lambda: full_log_until(there.port, user, first, "processing"), 20,
                       "the first message to start")
            r = request(there.port, f"DELETE /api/v1/message/{first}?user_id={user} HTTP/1.1\r\n"
                                    "Host: x\r\n\r\n".encode())
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json()["previous_status"], "processing")
            for mid in (first, second):
                log = full_log(here.port, user, mid)
                self.assertEqual(log[-1][1], "error")
                self.assertEqual(log[-1][2]["code"], "cancelled")
                self.assertEqual(sum(k in ("done", "error") for _, k, _ in log), 1)
                again = request(there.port, f"DELETE /api/v1/message/{mid}?user_id={user} "
                                            "HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                assert_error_envelope(self, again, 409, "message_finished")
            nobody = request(here.port, f"DELETE /api/v1/message/{first}?user_id=else HTTP/1.1\r\n"
                                        "Host: x\r\n\r\n".encode())
            assert_error_envelope(self, nobody, 404, "message_not_found")


def full_log_until(port, user, message_id, kind):
    """Whether the lifecycle (read for up to 10 s) has an event of `kind` yet."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {stream_url(user, message_id)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and f"event: {kind}".encode() not in data:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
            if not data.startswith(b"HTTP/1.1 200") and len(data) >= 12:
                return False  # not ready yet (503 while the node connects)
    return f"event: {kind}".encode() in data


if __name__ == "__main__":
    unittest.main()
