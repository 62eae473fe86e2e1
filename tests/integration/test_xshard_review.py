"""Cross-shard batching under the review's cases (REVIEW13-xshard): a pipelined burst from many
publisher connections does not cut subscribers that keep reading; deferred publications keep the
access log, 100 Continue, drain and end-of-input contracts of any other request. Raw sockets
(pipelining, half-close and exact wire order are the point)."""

import json
import os
import socket
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


if __name__ == "__main__":
    unittest.main()
