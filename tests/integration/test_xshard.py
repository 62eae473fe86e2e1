"""Publications that cross shards: an HTTP publisher pipelining to a topic homed on another
shard (docs/api.md, topics). Its publications reach the home together and are answered in
request order, whatever else is pipelined with them. Raw sockets (the pipelining and the
half-close are the point)."""

import json
import os
import socket
import tempfile
import time
import unittest

from harness import Server, ResponseReader, connect, metrics

SHARDS = 2


def home_of(topic):
    """The topic's home shard, as ringcast computes it (FNV-1a 64 of the name, modulo shards)."""
    h = 0xcbf29ce484222325
    for c in topic.encode():
        h = ((h ^ c) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h % SHARDS


def topic_homed_on(shard, prefix):
    return next(f"{prefix}{i}" for i in range(1000) if home_of(f"{prefix}{i}") == shard)


def per_shard(samples, name, **labels):
    """{shard: value} of `name`, summed over the labels not given."""
    out = {}
    for (n, have), v in samples.items():
        have = dict(have)
        if n != name or any(have.get(k) != w for k, w in labels.items()):
            continue
        out[have["shard"]] = out.get(have["shard"], 0.0) + v
    return out


def publication(topic, body, headers=""):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return (f"POST /v1/topics/{topic} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n{headers}\r\n").encode() + data


class Publisher:
    """A keep-alive connection, and the shard that accepted it (found from /metrics)."""

    def __init__(self, port):
        before = per_shard(metrics(port), "ringcast_requests_total", route="/healthz")
        self.sock = connect(port)
        self.reader = ResponseReader(self.sock)
        self.sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert self.reader.read().status == 200
        after = per_shard(metrics(port), "ringcast_requests_total", route="/healthz")
        grown = [s for s, v in after.items() if v > before.get(s, 0.0)]
        assert len(grown) == 1, (before, after)
        self.shard = int(grown[0])

    def close(self):
        self.sock.close()


class SseSubscriber:
    """An SSE subscription read from a raw socket (chunked)."""

    def __init__(self, port, topic):
        self.sock = connect(port)
        self.sock.sendall(f"GET /v1/topics/{topic}/events HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        self.reader = ResponseReader(self.sock)
        head = self.reader.read(head_only=True)
        assert head.status == 200, head.status
        self.text = ""

    def next_data(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            while "\n\n" not in self.text:
                line = self.reader._read_until(b"\r\n", deadline)
                size = int(line.split(b";")[0], 16)
                self.text += self.reader._read_exact(size, deadline).decode()
                self.reader._read_exact(2, deadline)
            block, self.text = self.text.split("\n\n", 1)
            data = [ln[6:] for ln in block.split("\n") if ln.startswith("data: ")]
            if data:
                return json.loads("\n".join(data))

    def close(self):
        self.sock.close()


class CrossShardPublisher(unittest.TestCase):
    def test_pipelined_publications_cross_to_the_home_together(self):
        # A run of publications to a topic homed on the other shard travels as a run: the
        # publisher's shard dispatches them all before the first answer, the home sequences them
        # in one turn and sends their events and answers back together. One mailbox message per
        # publication each way (before) would be at least 2 per publication.
        n = 50
        with Server(shards=SHARDS) as srv:
            pub = Publisher(srv.port)
            topic = topic_homed_on(1 - pub.shard, "xs")
            subs = [SseSubscriber(srv.port, topic) for _ in range(4)]
            # The subscriptions are live once the first publication reaches them.
            pub.sock.sendall(publication(topic, {"i": 0}))
            self.assertEqual(pub.reader.read().json()["seq"], 1)
            for s in subs:
                self.assertEqual(s.next_data()["i"], 0)
            before = per_shard(metrics(srv.port), "ringcast_cross_shard_messages_sent_total")

            pub.sock.sendall(b"".join(publication(topic, {"i": i}) for i in range(1, n + 1)))
            acks = [pub.reader.read() for _ in range(n)]
            self.assertEqual([a.status for a in acks], [200] * n)
            self.assertEqual([a.json()["seq"] for a in acks], list(range(2, n + 2)))
            for s in subs:
                self.assertEqual([s.next_data()["i"] for _ in range(n)], list(range(1, n + 1)))

            after = per_shard(metrics(srv.port), "ringcast_cross_shard_messages_sent_total")
            sent = sum(after.values()) - sum(before.values())
            self.assertLess(sent, n // 2, f"{sent} cross-shard messages for {n} publications")
            for s in subs:
                s.close()
            pub.close()

    def test_answers_keep_request_order_behind_deferred_ones(self):
        # Behind publications answered from the other shard: a request that is not a publication
        # waits for them, errors and same-shard publications are held until their turn, and a
        # Connection: close is honoured after the answers before it.
        with Server(shards=SHARDS) as srv:
            pub = Publisher(srv.port)
            remote = topic_homed_on(1 - pub.shard, "rem")
            local = topic_homed_on(pub.shard, "loc")
            pub.sock.sendall(b"".join([
                publication(remote, {"k": 1}),
                publication(remote, {"k": 2}),
                b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                publication(remote, {"k": 3}),
                publication(remote, b"{not json"),
                publication(local, {"k": 4}),
                publication(remote, {"k": 5}),
                b"GET /v1/topics/x HTTP/1.1\r\nHost: x\r\n\r\n",
                publication(remote, {"k": 6}, "Connection: close\r\n"),
                publication(remote, {"k": 7}),  # after the close: never answered
            ]))
            got = []
            for _ in range(9):
                r = pub.reader.read()
                body = r.json() if r.body.startswith(b"{") else {}
                got.append((r.status, body.get("topic"), body.get("seq")))
                last = r
            self.assertEqual(got, [
                (200, remote, 1), (200, remote, 2), (200, None, None), (200, remote, 3),
                (400, None, None), (200, local, 1), (200, remote, 4), (405, None, None),
                (200, remote, 5)])
            self.assertEqual(last.header("connection"), "close")
            self.assertTrue(pub.reader.at_eof())
            pub.close()

    def test_half_closed_publisher_gets_every_answer(self):
        n = 20
        with Server(shards=SHARDS) as srv:
            pub = Publisher(srv.port)
            topic = topic_homed_on(1 - pub.shard, "half")
            pub.sock.sendall(b"".join(publication(topic, {"i": i}) for i in range(n)))
            pub.sock.shutdown(socket.SHUT_WR)
            acks = [pub.reader.read() for _ in range(n)]
            self.assertEqual([a.json()["seq"] for a in acks], list(range(1, n + 1)))
            self.assertTrue(pub.reader.at_eof())
            pub.close()

    def test_deferred_answers_keep_their_request_ids_and_access_log_lines(self):
        # Each answer carries its own request's x-request-id, and each request gets its own
        # access log line (route, status, bytes of its own answer).
        n = 8
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "access.log")
            with Server("--access-log", log, shards=SHARDS) as srv:
                pub = Publisher(srv.port)
                topic = topic_homed_on(1 - pub.shard, "log")
                reqs = [publication(topic, {"i": i}, f"x-request-id: xs-{i}\r\n") for i in range(n)]
                reqs.insert(3, publication(topic, b"[", "x-request-id: xs-bad\r\n"))
                pub.sock.sendall(b"".join(reqs))
                answers = [pub.reader.read() for _ in range(n + 1)]
                ids = [a.header("x-request-id") for a in answers]
                want = [f"xs-{i}" for i in range(n)]
                want.insert(3, "xs-bad")
                self.assertEqual(ids, want)
                pub.close()
                lines = []
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    with open(log, encoding="utf-8") as f:
                        lines = [json.loads(x) for x in f.read().splitlines()]
                    if sum(1 for x in lines if x["request_id"].startswith("xs-")) == n + 1:
                        break
                    time.sleep(0.05)
            mine = {x["request_id"]: x for x in lines if x["request_id"].startswith("xs-")}
            self.assertEqual(set(mine), set(want))
            for rid, a in zip(ids, answers):
                line = mine[rid]
                self.assertEqual(line["route"], "/v1/topics/{topic}")
                self.assertEqual(line["status"], a.status)
                self.assertEqual(line["bytes_out"], len(a.raw_head) + len(a.body))


if __name__ == "__main__":
    unittest.main()
