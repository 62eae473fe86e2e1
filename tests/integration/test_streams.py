"""SSE, WebSocket and topics on the real server: Python `websockets` and curl as clients, raw
sockets for frames no library would send."""

import asyncio
import json
import signal
import socket
import struct
import subprocess
import time
import unittest

import websockets

from harness import (Server, ResponseReader, assert_error_envelope, connect, get, metric, metric_sum,
                     metrics, request, ws_close_code, ws_frame, ws_handshake, ws_read_message)


def post(port, path, body, headers=None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    raw = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(data)}\r\n{extra}\r\n").encode() + data
    return request(port, raw)


class SseReader:
    """Reads SSE events from a raw socket stream (chunked HTTP/1.1)."""

    def __init__(self, port, path, headers=None, version="1.1"):
        self.sock = connect(port)
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.sock.sendall(f"GET {path} HTTP/{version}\r\nHost: x\r\n{extra}\r\n".encode())
        self.reader = ResponseReader(self.sock)
        self.head = self.reader.read(head_only=True)
        self.chunked = "chunked" in (self.head.header("transfer-encoding") or "")
        self.text = ""

    def _more(self, deadline):
        if self.chunked:
            line = self.reader._read_until(b"\r\n", deadline)
            size = int(line.split(b";")[0], 16)
            if size == 0:
                raise EOFError("stream ended")
            self.text += self.reader._read_exact(size, deadline).decode()
            self.reader._read_exact(2, deadline)
        else:
            self.reader._fill(deadline)
            self.text += self.reader.buf.decode()
            self.reader.buf = b""

    def next_block(self, timeout=10.0):
        """The next blank-line-terminated block (an event or a comment), as a list of lines."""
        deadline = time.monotonic() + timeout
        while "\n\n" not in self.text:
            self._more(deadline)
        block, self.text = self.text.split("\n\n", 1)
        return block.split("\n")

    def next_event(self, timeout=10.0):
        """The next event (comments and retry hints skipped): dict of id, event, data."""
        while True:
            lines = self.next_block(timeout)
            fields = {}
            for line in lines:
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                fields[name] = fields[name] + "\n" + value if name in fields else value
            if "data" in fields:
                return fields

    def close(self):
        self.sock.close()


class Sse(unittest.TestCase):
    def test_headers_and_events(self):
        with Server() as srv:
            sub = SseReader(srv.port, "/v1/topics/news/events")
            self.assertEqual(sub.head.status, 200)
            self.assertEqual(sub.head.header("content-type"), "text/event-stream; charset=utf-8")
            self.assertEqual(sub.head.header("cache-control"), "no-cache")
            self.assertEqual(sub.head.header("x-accel-buffering"), "no")
            self.assertTrue(sub.head.header("x-request-id"))
            time.sleep(0.1)  # the subscription reaches the topic's home
            r = post(srv.port, "/v1/topics/news", {"headline": "a\nb", "n": 1})
            self.assertEqual(r.status, 200)
            ack = r.json()
            self.assertEqual(ack["topic"], "news")
            self.assertEqual(ack["seq"], 1)
            ev = sub.next_event()
            self.assertEqual(ev["id"], ack["id"])
            self.assertEqual(ev["event"], "message")
            self.assertEqual(json.loads(ev["data"]), {"headline": "a\nb", "n": 1})
            sub.close()

    def test_pipelined_publications_answered_and_delivered_in_order(self):
        # Publications to a topic homed on the publisher's shard complete within the turn,
        # those homed elsewhere a few turns later: either way each connection's answers and
        # each subscriber's events keep the order of the requests.
        n = 60
        with Server(shards=2) as srv:
            topics = [f"pipe{i}" for i in range(4)]  # with 2 shards, both homes are likely used
            subs = {t: SseReader(srv.port, f"/v1/topics/{t}/events") for t in topics}
            time.sleep(0.2)
            with connect(srv.port) as s:
                batch = b""
                for i in range(n):
                    body = json.dumps({"i": i}).encode()
                    batch += (f"POST /v1/topics/{topics[i % 4]} HTTP/1.1\r\nHost: x\r\n"
                              f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                              ).encode() + body
                s.sendall(batch)
                reader = ResponseReader(s)
                acks = [reader.read() for _ in range(n)]
            self.assertTrue(all(a.status == 200 for a in acks))
            for i, a in enumerate(acks):
                ack = json.loads(a.body)
                self.assertEqual((ack["topic"], ack["seq"]), (topics[i % 4], i // 4 + 1))
            for k, t in enumerate(topics):
                got = [json.loads(subs[t].next_event()["data"])["i"] for _ in range(n // 4)]
                self.assertEqual(got, list(range(k, n, 4)))
                subs[t].close()

    def test_curl_receives_stream(self):
        with Server() as srv:
            proc = subprocess.Popen(["curl", "-sN", "--max-time", "5", srv.url("/v1/topics/t/events")],
                                    stdout=subprocess.PIPE)
            time.sleep(0.3)
            for i in range(3):
                post(srv.port, "/v1/topics/t", {"i": i})
            out = b""
            deadline = time.monotonic() + 5
            while out.count(b"event: message") < 3 and time.monotonic() < deadline:
                out += proc.stdout.read1(4096)
            proc.kill()
            proc.wait()
            self.assertEqual(out.count(b"event: message"), 3, out)
            self.assertIn(b'data: {"i":2}', out)

    def test_resume_with_last_event_id_and_since(self):
        with Server(shards=2) as srv:
            ids = [post(srv.port, "/v1/topics/r", {"i": i}).json()["id"] for i in range(6)]
            sub = SseReader(srv.port, "/v1/topics/r/events", {"Last-Event-ID": ids[2]})
            got = [json.loads(sub.next_event()["data"])["i"] for _ in range(3)]
            self.assertEqual(got, [3, 4, 5])
            post(srv.port, "/v1/topics/r", {"i": 6})
            self.assertEqual(json.loads(sub.next_event()["data"])["i"], 6)  # live after replay
            sub.close()
            sub = SseReader(srv.port, f"/v1/topics/r/events?since={ids[4]}")
            self.assertEqual([json.loads(sub.next_event()["data"])["i"] for _ in range(2)], [5, 6])
            sub.close()

    def test_reset_when_gap_older_than_history_or_epoch_unknown(self):
        with Server("--topic-history", "3") as srv:
            ids = [post(srv.port, "/v1/topics/h", {"i": i}).json()["id"] for i in range(10)]
            sub = SseReader(srv.port, "/v1/topics/h/events", {"Last-Event-ID": ids[1]})
            reset = sub.next_event()
            self.assertEqual(reset["event"], "reset")
            self.assertNotIn("id", reset)  # a reset doesn't move Last-Event-ID
            info = json.loads(reset["data"])
            self.assertEqual((info["topic"], info["seq"], info["oldest"]), ("h", 10, 8))
            self.assertEqual([json.loads(sub.next_event()["data"])["i"] for _ in range(3)], [7, 8, 9])
            sub.close()
            # An id from another epoch (e.g. before a restart) is a reset too.
            sub = SseReader(srv.port, "/v1/topics/h/events", {"Last-Event-ID": "deadbeef-9"})
            self.assertEqual(sub.next_event()["event"], "reset")
            sub.close()
            samples = metrics(srv.port)
            self.assertEqual(metric_sum(samples, "ringcast_topic_resets_total"), 2)

    def test_heartbeat_comments_on_silence(self):
        with Server("--heartbeat-ms", "200") as srv:
            sub = SseReader(srv.port, "/v1/topics/quiet/events")
            self.assertEqual(sub.next_block(timeout=3), [": ping"])
            self.assertEqual(sub.next_block(timeout=3), [": ping"])
            sub.close()

    def test_http10_stream_is_close_delimited(self):
        with Server() as srv:
            sub = SseReader(srv.port, "/v1/topics/old/events", version="1.0")
            self.assertFalse(sub.chunked)
            self.assertEqual(sub.head.header("connection"), "close")
            time.sleep(0.1)
            post(srv.port, "/v1/topics/old", {"x": 1})
            self.assertEqual(json.loads(sub.next_event()["data"]), {"x": 1})
            sub.close()

    def test_bad_topic_and_body(self):
        with Server("--publish-bytes-max", "100") as srv:
            assert_error_envelope(self, post(srv.port, "/v1/topics/bad%20name", {"x": 1}), 400,
                                  "invalid_topic")
            assert_error_envelope(self, post(srv.port, "/v1/topics/" + "x" * 200, {}), 400,
                                  "invalid_topic")
            assert_error_envelope(self, post(srv.port, "/v1/topics/t", b"{not json"), 400,
                                  "invalid_json")
            assert_error_envelope(self, post(srv.port, "/v1/topics/t", {"x": "y" * 200}), 413,
                                  "body_too_large")
            assert_error_envelope(self, get(srv.port, "/v1/topics/t"), 405, "method_not_allowed")

    def test_drain_ends_sse_stream(self):
        srv = Server()
        try:
            sub = SseReader(srv.port, "/v1/topics/d/events")
            time.sleep(0.1)
            srv.send_signal(signal.SIGTERM)
            # Never a silent end: a final error event says why (see test_drain.py), then EOF.
            last = sub.next_event(timeout=5)
            self.assertEqual((last["event"], json.loads(last["data"])["code"]), ("error", "draining"))
            with self.assertRaises((EOFError, ConnectionError)):
                sub.next_event(timeout=5)
            self.assertEqual(srv.proc.wait(10), 0)
        finally:
            self.assertEqual(srv.stop(), 0)


def ws_url(srv, path="/ws"):
    return f"ws://127.0.0.1:{srv.port}{path}"


async def ws_request(ws, msg):
    await ws.send(json.dumps(msg))
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


class WebSocketBroker(unittest.TestCase):
    def test_errors_keep_connection_open(self):
        async def run(srv):
            async with websockets.connect(ws_url(srv)) as ws:
                cases = [
                    ("not json", None, "invalid_json"),
                    ("[1,2]", None, "invalid_request"),
                    (json.dumps({"action": "publish"}), None, "invalid_request"),
                    (json.dumps({"id": "a"}), "a", "invalid_request"),
                    (json.dumps({"id": "b", "action": "fly"}), "b", "unknown_action"),
                    (json.dumps({"id": "c", "action": "subscribe", "payload": []}), "c", "invalid_request"),
                    (json.dumps({"id": "d", "action": "subscribe", "payload": {}}), "d", "invalid_topic"),
                    (json.dumps({"id": "e", "action": "subscribe", "payload": {"topic": "a b"}}), "e",
                     "invalid_topic"),
                    (json.dumps({"id": "f", "action": "publish", "payload": {"topic": "t"}}), "f",
                     "invalid_request"),
                    (json.dumps({"id": "g", "action": "unsubscribe", "payload": {"topic": "t"}}), "g",
                     "not_subscribed"),
                ]
                for raw, want_id, code in cases:
                    await ws.send(raw)
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    self.assertEqual(msg["event"], "error", raw)
                    self.assertEqual(msg["id"], want_id, raw)
                    self.assertEqual(msg["error"]["code"], code, raw)
                    self.assertTrue(msg["error"]["message"])
                await ws.send(b"\x01\x02")  # binary: not part of this protocol
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                self.assertEqual(msg["error"]["code"], "unsupported_data")
                # Still open and working.
                health = await ws_request(ws, {"id": "h", "action": "system.health"})
                self.assertEqual(health["event"], "system.health")
                self.assertEqual(set(health["data"]), {"status", "shards", "connections",
                                                       "queue_depth", "uptime_s"})
        with Server() as srv:
            asyncio.run(run(srv))

    def test_subscription_limits(self):
        async def run(srv):
            async with websockets.connect(ws_url(srv)) as ws:
                for i in range(2):
                    ok = await ws_request(ws, {"id": f"s{i}", "action": "subscribe",
                                               "payload": {"topic": f"t{i}"}})
                    self.assertEqual(ok["event"], "subscribed")
                dup = await ws_request(ws, {"id": "x", "action": "subscribe", "payload": {"topic": "t0"}})
                self.assertEqual(dup["error"]["code"], "already_subscribed")
                over = await ws_request(ws, {"id": "y", "action": "subscribe", "payload": {"topic": "t9"}})
                self.assertEqual(over["error"]["code"], "too_many_topics")
                un = await ws_request(ws, {"id": "u", "action": "unsubscribe", "payload": {"topic": "t0"}})
                self.assertEqual(un["event"], "unsubscribed")
        with Server("--topics-per-connection-max", "2") as srv:
            asyncio.run(run(srv))

    def test_ws_since_resumes_from_history(self):
        async def run(srv):
            ids = [post(srv.port, "/v1/topics/w", {"i": i}).json()["id"] for i in range(5)]
            async with websockets.connect(ws_url(srv)) as ws:
                sub = await ws_request(ws, {"id": "s", "action": "subscribe",
                                            "payload": {"topic": "w", "since": ids[1]}})
                self.assertEqual((sub["event"], sub["data"]["seq"]), ("subscribed", 5))
                got = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(3)]
                self.assertEqual([m["data"]["data"]["i"] for m in got], [2, 3, 4])
                self.assertTrue(all(m["id"] == "s" and m["event"] == "message" for m in got))
        with Server(shards=2) as srv:
            asyncio.run(run(srv))

    def test_flow_pause_and_resume_at_inflight_cap(self):
        with Server("--ws-inflight-max", "4") as srv:
            s, reader, r = ws_handshake(srv.port)
            self.assertEqual(r.status, 101)
            # 20 health checks in one write: all are read before any completes (each gathers
            # every shard's metrics through the mailboxes, so it finishes in a later turn).
            batch = b"".join(ws_frame(0x1, json.dumps({"id": f"h{i}",
                                                       "action": "system.health"}).encode())
                             for i in range(20))
            s.sendall(batch)
            events = []
            while not any(e.get("event") == "flow.resume" for e in events):
                opcode, payload = ws_read_message(reader)
                events.append(json.loads(payload))
            kinds = [e["event"] for e in events]
            self.assertIn("flow.pause", kinds)
            self.assertLess(kinds.index("flow.pause"), kinds.index("flow.resume"))
            paused = [e for e in events if e["event"] == "error"]
            self.assertTrue(paused)
            self.assertTrue(all(e["error"]["code"] == "flow_paused" for e in paused))
            s.close()


class WebSocketProtocol(unittest.TestCase):
    def test_handshake_rejections(self):
        with Server() as srv:
            r = request(srv.port, b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                  b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")
            assert_error_envelope(self, r, 400, "websocket_handshake")  # no key
            r = request(srv.port, b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                  b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  b"Sec-WebSocket-Version: 8\r\n\r\n")
            assert_error_envelope(self, r, 426, "websocket_handshake")
            self.assertEqual(r.header("sec-websocket-version"), "13")
            r = request(srv.port, b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                  b"Connection: Upgrade\r\nSec-WebSocket-Key: short\r\n"
                                  b"Sec-WebSocket-Version: 13\r\n\r\n")
            assert_error_envelope(self, r, 400, "websocket_handshake")
            r = get(srv.port, "/ws")
            assert_error_envelope(self, r, 400, "websocket_handshake")
            r = request(srv.port, b"POST /ws HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            assert_error_envelope(self, r, 405, "method_not_allowed")
            r = get(srv.port, "/echo")
            assert_error_envelope(self, r, 404)  # not enabled without --echo

    def test_close_codes_for_bad_frames(self):
        cases = [
            ("unmasked client frame", ws_frame(0x1, b"hi", mask=False), 1002),
            ("reserved opcode", ws_frame(0x3, b"hi"), 1002),
            ("RSV bit without extension", ws_frame(0x1, b"hi", rsv=4), 1002),
            ("fragmented ping", ws_frame(0x9, b"x", fin=False), 1002),
            ("oversized ping", ws_frame(0x9, b"x" * 126), 1002),
            ("continuation without start", ws_frame(0x0, b"x"), 1002),
            ("invalid UTF-8 text", ws_frame(0x1, b"\xc3\x28"), 1007),
            ("invalid UTF-8 across fragments", ws_frame(0x1, b"ok\xe2", fin=False) +
             ws_frame(0x0, b"\x28\xa1"), 1007),
            ("message over the limit", ws_frame(0x1, b"a" * 2000), 1009),
            ("invalid close code", ws_frame(0x8, struct.pack("!H", 999)), 1002),
        ]
        with Server("--echo", "--ws-message-bytes-max", "1024") as srv:
            for name, frames, code in cases:
                with self.subTest(name):
                    s, reader, r = ws_handshake(srv.port, "/echo")
                    self.assertEqual(r.status, 101)
                    s.sendall(frames)
                    self.assertEqual(ws_close_code(reader), code)
                    self.assertTrue(reader.at_eof())
                    s.close()
            samples = metrics(srv.port)
            self.assertGreaterEqual(metric_sum(samples, "ringcast_ws_protocol_errors_total"),
                                    len(cases))
            self.assertEqual(get(srv.port, "/healthz").status, 200)

    def test_echo_text_binary_fragments_and_limit(self):
        async def run(srv):
            async with websockets.connect(ws_url(srv, "/echo"), max_size=2 << 20) as ws:
                for payload in ["", "x", "é✓" * 1000, "a" * 65536, "b" * (1 << 20)]:
                    await ws.send(payload)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 10), payload)
                for payload in [b"", bytes(range(256)) * 300]:
                    await ws.send(payload)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 10), payload)
                await ws.send(["frag", "mented", " message"])  # sent as three frames
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "fragmented message")
                await ws.ping(b"p")
                await ws.send("c" * ((1 << 20) + 1))
                with self.assertRaises(websockets.ConnectionClosed) as ctx:
                    await asyncio.wait_for(ws.recv(), 10)
                self.assertEqual(ctx.exception.rcvd.code, 1009)
        with Server("--echo") as srv:
            asyncio.run(run(srv))

    def test_server_pings_idle_socket_and_closes_dead_one(self):
        with Server("--echo", "--heartbeat-ms", "200", "--ws-idle-timeout-ms", "1000") as srv:
            s, reader, r = ws_handshake(srv.port, "/echo")
            fin, opcode, payload = __import__("harness").ws_read_frame(reader, timeout=3)
            self.assertEqual(opcode, 0x9)  # ping after silence
            # We never answer: the idle timeout closes with 1001.
            self.assertEqual(ws_close_code(reader, timeout=5), 1001)
            s.close()

    def test_session_held_only_inside_a_message_and_the_stream_continues(self):
        with Server("--echo", "--heartbeat-ms", "200") as srv:
            s, reader, r = ws_handshake(srv.port, "/echo")
            s.sendall(ws_frame(0x1, b"first"))
            self.assertEqual(ws_read_message(reader), (0x1, b"first"))
            self.assertEqual(metric_sum(metrics(srv.port), "ringcast_ws_sessions"), 0)
            # Half a message keeps it, through quiet heartbeat periods, until the rest arrives.
            s.sendall(ws_frame(0x1, b"sec", fin=False))
            deadline = time.monotonic() + 5
            while metric_sum(metrics(srv.port), "ringcast_ws_sessions") != 1:
                self.assertLess(time.monotonic(), deadline, "no session for the open message")
                time.sleep(0.05)
            time.sleep(0.5)
            self.assertEqual(metric_sum(metrics(srv.port), "ringcast_ws_sessions"), 1)
            s.sendall(ws_frame(0x0, b"ond"))  # a new session continues the stream
            self.assertEqual(ws_read_message(reader), (0x1, b"second"))
            self.assertEqual(metric_sum(metrics(srv.port), "ringcast_ws_sessions"), 0)
            s.sendall(ws_frame(0x1, b"third"))
            self.assertEqual(ws_read_message(reader), (0x1, b"third"))
            s.close()

    def test_close_handshake_and_drain(self):
        async def run(srv):
            async with websockets.connect(ws_url(srv)) as ws:
                await ws.close(1000, "bye")
                self.assertEqual(ws.close_code, 1000)
            ws = await websockets.connect(ws_url(srv))
            srv.send_signal(signal.SIGTERM)
            with self.assertRaises(websockets.ConnectionClosed) as ctx:
                await asyncio.wait_for(ws.recv(), 10)
            self.assertEqual(ctx.exception.rcvd.code, 1001)
        srv = Server()
        try:
            asyncio.run(run(srv))
            self.assertEqual(srv.proc.wait(10), 0)
        finally:
            self.assertEqual(srv.stop(), 0)


class FanOut(unittest.TestCase):
    def test_500_subscribers_across_shards_get_every_event_in_order(self):
        n_subs, n_events = 500, 30

        async def subscriber(srv, i, ready, results):
            async with websockets.connect(ws_url(srv), max_queue=None) as ws:
                msg = await ws_request(ws, {"id": f"s{i}", "action": "subscribe",
                                            "payload": {"topic": "big"}})
                assert msg["event"] == "subscribed", msg
                ready.append(i)
                got = []
                while len(got) < n_events:
                    m = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    assert m["id"] == f"s{i}" and m["event"] == "message", m
                    got.append(m["data"]["seq"])
                results[i] = got

        async def run(srv):
            ready, results = [], {}
            tasks = [asyncio.create_task(subscriber(srv, i, ready, results)) for i in range(n_subs)]
            while len(ready) < n_subs:
                await asyncio.sleep(0.05)
                for t in tasks:
                    if t.done() and t.exception():
                        raise t.exception()
            loop = asyncio.get_running_loop()
            for k in range(n_events):
                await loop.run_in_executor(None, post, srv.port, "/v1/topics/big", {"k": k})
            await asyncio.wait_for(asyncio.gather(*tasks), 120)
            return results

        with Server(shards=2) as srv:
            results = asyncio.run(run(srv))
            self.assertEqual(len(results), n_subs)
            for i, seqs in results.items():
                self.assertEqual(seqs, list(range(1, n_events + 1)), f"subscriber {i}")
            samples = metrics(srv.port)
            self.assertEqual(metric_sum(samples, "ringcast_topic_deliveries_total"),
                             n_subs * n_events)
            for shard in ("0", "1"):  # subscribers on both shards received
                self.assertGreater(metric(samples, "ringcast_topic_deliveries_total", shard=shard), 0)

    def test_non_reading_subscriber_is_dropped_others_keep_up(self):
        payload = {"blob": "z" * 8000}
        n_events = 300
        args = ["--stream-high-bytes", "65536", "--stream-low-bytes", "16384",
                "--stream-max-bytes", "262144", "--slow-consumer-ms", "300",
                "--send-buffer-bytes", "32768"]
        with Server(*args, shards=2) as srv:
            # The slow one: an SSE subscriber with a tiny receive buffer that never reads.
            slow = socket.socket()
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.connect(("127.0.0.1", srv.port))
            slow.sendall(b"GET /v1/topics/flood/events HTTP/1.1\r\nHost: x\r\n\r\n")
            fast = [SseReader(srv.port, "/v1/topics/flood/events") for _ in range(5)]
            time.sleep(0.2)
            received = [0] * len(fast)
            with connect(srv.port) as pub:
                body = json.dumps(payload).encode()
                reader = ResponseReader(pub)
                for k in range(n_events):
                    pub.sendall(b"POST /v1/topics/flood HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                                % len(body) + body)
                    self.assertEqual(reader.read().status, 200)
                    for i, f in enumerate(fast):  # the readers keep up
                        while received[i] <= k:
                            ev = f.next_event()
                            self.assertEqual(int(ev["id"].split("-")[1]), received[i] + 1)
                            received[i] += 1
            self.assertEqual(received, [n_events] * len(fast))
            samples = metrics(srv.port)
            self.assertEqual(metric_sum(samples, "ringcast_slow_consumers_total"), 1)
            # The slow connection was closed by the server.
            slow.settimeout(5)
            got = b""
            try:
                while True:
                    chunk = slow.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            except ConnectionResetError:
                pass
            self.assertLess(got.count(b"event: message"), n_events)
            for f in fast:
                f.close()


if __name__ == "__main__":
    unittest.main()
