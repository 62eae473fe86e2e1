"""Cross-shard batching under the review's cases (REVIEW13-xshard): a pipelined burst from many
publisher connections does not cut subscribers that keep reading; deferred publications keep the
access log, 100 Continue, drain and end-of-input contracts of any other request. Raw sockets
(pipelining, half-close and exact wire order are the point)."""

import json
import os
import signal
import socket
import struct
import tempfile
import threading
import time
import unittest

from harness import Server, ResponseReader, connect, metric_sum, metrics, ws_frame, \
    ws_handshake, ws_read_message
from test_xshard import Publisher, publication, topic_homed_on

SHARDS = 2
MARK = b"Q7Zmark"


class RawSubscriber:
    """An SSE or WebSocket subscription whose socket a thread reads as fast as it can, counting
    the events carrying MARK in the raw bytes (the reader never falls behind the server)."""

    def __init__(self, port, topic, kind):
        if kind == "ws":
            self.sock, reader, r = ws_handshake(port)
            assert r.status == 101, r.status
            self.sock.sendall(ws_frame(0x1, json.dumps(
                {"id": "s", "action": "subscribe", "payload": {"topic": topic}}).encode()))
            _, payload = ws_read_message(reader)
            assert json.loads(payload)["event"] == "subscribed", payload
            self.data = bytearray(reader.buf)
        else:
            self.sock = connect(port)
            self.sock.sendall(f"GET /v1/topics/{topic}/events HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            self.data = bytearray()
        self.eof = False
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(60)
        try:
            while True:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    break
                with self.lock:
                    self.data += chunk
        except OSError:
            pass
        self.eof = True

    def count(self, mark=MARK):
        with self.lock:
            return self.data.count(mark)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reading thread
        except OSError:
            pass
        self.thread.join(5)
        self.sock.close()


def wait_until(cond, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


class PipelinedBurst(unittest.TestCase):
    def test_fast_readers_stay_connected_under_a_multi_publisher_burst(self):
        # Sixteen publishers each pipeline 128 publications to a topic homed on the other shard:
        # thousands of events reach each subscriber shard within a few turns. Subscribers that
        # read everything sent (WebSocket and SSE, on both shards) get every event and stay
        # connected; none is counted as a slow consumer.
        conns, per_conn = 16, 128
        with Server(shards=SHARDS) as srv:
            pubs = []
            for _ in range(64):
                p = Publisher(srv.port)
                if p.shard == 0 and len([q for q in pubs if q.shard == 0]) < conns:
                    pubs.append(p)
                else:
                    p.close()
                if len(pubs) == conns:
                    break
            self.assertEqual(len(pubs), conns)
            topic = topic_homed_on(1, "burst")
            subs = [RawSubscriber(srv.port, topic, kind) for kind in ["ws", "sse"] * 4]
            pubs[0].sock.sendall(publication(topic, {"warm": "Q7Zwarm"}))
            self.assertEqual(pubs[0].reader.read().status, 200)
            self.assertTrue(wait_until(lambda: all(s.count(b"Q7Zwarm") == 1 for s in subs)))

            body = {"m": MARK.decode(), "pad": "p" * 120}
            wire = b"".join(publication(topic, body) for _ in range(per_conn))
            for p in pubs:
                p.sock.sendall(wire)
            for p in pubs:
                acks = [p.reader.read() for _ in range(per_conn)]
                self.assertEqual({a.status for a in acks}, {200})
            total = conns * per_conn
            wait_until(lambda: all(s.count() == total or s.eof for s in subs))
            self.assertEqual([s.count() for s in subs], [total] * len(subs))
            self.assertFalse(any(s.eof for s in subs))
            self.assertEqual(metric_sum(metrics(srv.port), "ringcast_slow_consumers_total"), 0)
            for s in subs:
                s.close()
            for p in pubs:
                p.close()

    def test_a_reader_that_stops_is_still_cut_under_the_burst(self):
        # The converse: the per-turn limit only spreads a burst over turns; a subscriber that
        # stops reading still fills its backlog and is cut with 1008, in whole frames.
        conns, per_conn = 8, 128
        with Server("--stream-high-bytes", "65536", "--stream-low-bytes", "32768",
                    "--stream-max-bytes", "131072", "--slow-consumer-ms", "200",
                    "--send-buffer-bytes", "16384", shards=SHARDS) as srv:
            pubs = [Publisher(srv.port) for _ in range(conns)]
            topic = topic_homed_on(1, "stop")
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            s.settimeout(10)
            s.connect(("127.0.0.1", srv.port))
            s.sendall((b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       b"Sec-WebSocket-Version: 13\r\n\r\n"))
            reader = ResponseReader(s)
            self.assertEqual(reader.read(head_only=True).status, 101)
            s.sendall(ws_frame(0x1, json.dumps({"id": "s", "action": "subscribe",
                                                "payload": {"topic": topic}}).encode()))
            _, payload = ws_read_message(reader)
            self.assertEqual(json.loads(payload)["event"], "subscribed")
            wire = b"".join(publication(topic, {"i": i, "blob": "y" * 1000})
                            for i in range(per_conn))
            for p in pubs:
                p.sock.sendall(wire)
            for p in pubs:
                self.assertEqual({p.reader.read().status for _ in range(per_conn)}, {200})
            self.assertTrue(wait_until(lambda: metric_sum(
                metrics(srv.port), "ringcast_slow_consumers_total") == 1))
            messages, close_code = 0, None
            while close_code is None:
                opcode, payload = ws_read_message(reader, timeout=10)  # raises on a cut frame
                if opcode == 0x8:
                    close_code = int.from_bytes(payload[:2], "big")
                else:
                    json.loads(payload)
                    messages += 1
            self.assertEqual(close_code, 1008)
            self.assertLess(messages, conns * per_conn)
            s.close()
            for p in pubs:
                p.close()


def read_log(path, prefix, want, timeout=10.0):
    """The access log's lines whose request id starts with `prefix`, once there are `want`."""
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, encoding="utf-8") as f:
            lines = [json.loads(x) for x in f.read().splitlines()]
        lines = [x for x in lines if x["request_id"].startswith(prefix)]
        if len(lines) >= want:
            break
        time.sleep(0.05)
    return lines


class DeferredContracts(unittest.TestCase):
    def test_continue_leaves_after_earlier_deferred_answers(self):
        # P1 is answered from the other shard; P2 (same topic) sends its head only, expecting
        # 100 Continue. Responses go in request order: P1's 200, then P2's 100, then P2's 200.
        with Server(shards=SHARDS) as srv:
            pub = Publisher(srv.port)
            topic = topic_homed_on(1 - pub.shard, "cont")
            body = json.dumps({"k": 2}).encode()
            p2 = (f"POST /v1/topics/{topic} HTTP/1.1\r\nHost: x\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                  f"Expect: 100-continue\r\n\r\n").encode()
            pub.sock.sendall(publication(topic, {"k": 1}) + p2)
            first = pub.reader.read()
            self.assertEqual((first.status, first.json()["seq"]), (200, 1))
            self.assertEqual(pub.reader.read().status, 100)
            pub.sock.sendall(body)
            last = pub.reader.read()
            self.assertEqual((last.status, last.json()["seq"]), (200, 2))
            pub.close()

    def test_deferred_requests_are_logged_when_the_client_resets(self):
        # Pipelined publications to the other shard, then a reset before their answers can
        # have come back: each request still gets its access log line (499 when unanswered).
        n = 3
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "access.log")
            with Server("--access-log", log, shards=SHARDS) as srv:
                for attempt in range(5):
                    pub = Publisher(srv.port)
                    topic = topic_homed_on(1 - pub.shard, "rst")
                    prefix = f"rst{attempt}-"
                    pub.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
                    pub.sock.sendall(b"".join(
                        publication(topic, {"i": i}, f"x-request-id: {prefix}{i}\r\n")
                        for i in range(n)))
                    pub.sock.close()  # RST
                    lines = read_log(log, prefix, n)
                    self.assertEqual(sorted(x["request_id"] for x in lines),
                                     [f"{prefix}{i}" for i in range(n)])
                    for x in lines:
                        self.assertIn(x["status"], (200, 499))
                        self.assertEqual(x["route"], "/v1/topics/{topic}")
                        self.assertEqual(x["method"], "POST")

    def test_request_behind_the_last_deferred_answer_survives_a_half_close(self):
        # [POST to the other shard][GET] in one write, then FIN a little later: whenever the FIN
        # lands (before, with or after the POST's answer), the GET is answered too.
        with Server(shards=SHARDS) as srv:
            for attempt in range(40):
                pub = Publisher(srv.port)
                topic = topic_homed_on(1 - pub.shard, "fin")
                pub.sock.sendall(publication(topic, {"i": attempt}) +
                                 b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                time.sleep((attempt % 10) * 0.0002)
                pub.sock.shutdown(socket.SHUT_WR)
                self.assertEqual(pub.reader.read().status, 200)
                self.assertEqual(pub.reader.read().status, 200, f"attempt {attempt}")
                pub.close()

    def test_answers_written_during_a_drain_end_with_connection_close(self):
        # Pipelined publications to the other shard, and SIGTERM right behind them. When the
        # drain starts while their answers are coming back, the connection closes after the last
        # one, and that one says Connection: close (a keep-alive client must not send another
        # request into the closing connection); no earlier one does. When the drain comes after
        # every answer, an idle connection is closed, which looks the same as the bug on the
        # wire: so a few fresh servers, until one drain overlapped the answers (most do).
        n = 100
        for attempt in range(10):
            with Server(shards=SHARDS) as srv:
                pub = Publisher(srv.port)
                topic = topic_homed_on(1 - pub.shard, "drain")
                pub.sock.sendall(b"".join(publication(topic, {"i": i}) for i in range(n)))
                srv.send_signal(signal.SIGTERM)
                answers = []
                while True:
                    try:
                        answers.append(pub.reader.read())
                    except (ConnectionError, OSError):
                        break
                pub.close()
            if not answers:
                # SIGTERM got there before the server read the publications: an idle connection
                # is closed at once (the race every keep-alive client has with a drain). Retry.
                continue
            self.assertEqual({a.status for a in answers}, {200})
            self.assertEqual([a.json()["seq"] for a in answers], list(range(1, len(answers) + 1)))
            self.assertEqual([a for a in answers[:-1] if a.header("connection")], [])
            if answers[-1].header("connection") == "close":
                return
        self.fail("no drain overlapped the answers, or their last one lacked Connection: close")

if __name__ == "__main__":
    unittest.main()
