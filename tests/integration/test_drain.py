"""Draining on SIGTERM: streams in progress run to their end until --drain-timeout-ms, whatever is
still running then ends with a visible error (never a clean-looking end), and for
--drain-grace-ms the server keeps accepting while /readyz says 503. Clients: raw sockets and
curl-like readers for HTTP/SSE, Python `websockets` for WebSockets."""

import asyncio
import json
import signal
import socket
import time
import unittest

import websockets

from harness import Server, ResponseReader, assert_error_envelope, connect, get, metric_sum, metrics
from openai_client import post_json
from test_streams import SseReader

MODEL = "ringcast-mock"


def chat(max_tokens, **kw):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "drain me"}],
            "max_tokens": max_tokens}
    body.update(kw)
    return body


class ChatStream:
    """A streaming chat completion over a raw socket, read event by event."""

    def __init__(self, port, body):
        data = json.dumps(body).encode()
        self.sock = connect(port, timeout=30)
        self.sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                          % len(data) + data)
        self.reader = ResponseReader(self.sock, timeout=30)
        self.head = self.reader.read(head_only=True)
        self.text = ""
        self.terminated = False  # the chunked terminator arrived

    def events(self, timeout=30.0):
        """Yields data payloads until the chunked terminator; raises at EOF without it."""
        deadline = time.monotonic() + timeout
        while True:
            while "\n\n" in self.text:
                block, self.text = self.text.split("\n\n", 1)
                for line in block.split("\n"):
                    if line.startswith("data: "):
                        yield line[6:]
            line = self.reader._read_until(b"\r\n", deadline)
            size = int(line.split(b";")[0], 16)
            if size == 0:
                self.reader._read_until(b"\r\n", deadline)
                self.terminated = True
                return
            self.text += self.reader._read_exact(size, deadline).decode()
            self.reader._read_exact(2, deadline)

    def close(self):
        self.sock.close()


def generations_running(srv, n):
    """Waits until the server runs `n` generations (so a signal finds them in progress)."""
    deadline = time.monotonic() + 20
    while metric_sum(metrics(srv.port), "ringcast_engine_streams") != n:
        if time.monotonic() > deadline:
            raise AssertionError(f"the server never ran {n} generation(s)")
        time.sleep(0.02)


def content_deltas(datas):
    return [d for d in datas if '"content":"' in d and '"role"' not in d]


class DrainStreams(unittest.TestCase):
    def run_until_exit(self, run, *args, **kw):
        # Runs the coroutine `run(srv)` against a fresh server, which must then exit 0 by itself.
        srv = Server(*args, **kw)
        try:
            asyncio.run(run(srv))
            self.assertEqual(srv.proc.wait(20), 0)
        finally:
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_sse_chat_runs_to_its_end_during_drain(self):
        srv = Server("--mock-tokens-per-s", "40", "--drain-timeout-ms", "30000")
        try:
            stream = ChatStream(srv.port, chat(40, stream=True))
            events = stream.events()
            seen = [next(events), next(events)]  # the role chunk and a first delta
            srv.send_signal(signal.SIGTERM)
            seen += list(events)
            self.assertTrue(stream.terminated)
            self.assertEqual(seen[-1], "[DONE]")
            self.assertEqual(len(content_deltas(seen)), 40)
            self.assertEqual(stream.head.header("connection"), None)
            self.assertTrue(stream.reader.at_eof(), "the connection closes after the stream")
            self.assertEqual(srv.proc.wait(20), 0)
        finally:
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_sse_chat_cut_at_the_deadline_ends_with_an_error_event(self):
        srv = Server("--mock-tokens-per-s", "20", "--drain-timeout-ms", "500")
        try:
            stream = ChatStream(srv.port, chat(500, stream=True))
            events = stream.events()
            seen = [next(events), next(events)]
            srv.send_signal(signal.SIGTERM)
            seen += list(events)
            self.assertNotIn("[DONE]", seen)
            err = json.loads(seen[-1])["error"]
            self.assertEqual(err["code"], "draining")
            self.assertTrue(err["message"])
            self.assertTrue(stream.reader.at_eof())
            self.assertEqual(srv.proc.wait(20), 0)
        finally:
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_responses_stream_cut_at_the_deadline_ends_with_an_error_event(self):
        srv = Server("--mock-tokens-per-s", "20", "--drain-timeout-ms", "500")
        try:
            data = json.dumps({"model": MODEL, "input": "drain", "stream": True,
                               "max_output_tokens": 500}).encode()
            with connect(srv.port, timeout=30) as s:
                s.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                          % len(data) + data)
                reader = ResponseReader(s, timeout=30)
                reader._read_until(b"response.output_text.delta", time.monotonic() + 30)
                srv.send_signal(signal.SIGTERM)
                with self.assertRaises(ConnectionError):
                    while True:
                        reader._fill(time.monotonic() + 30)
            blocks = [b for b in reader.buf.decode(errors="replace").split("\n\n") if "event: " in b]
            last = dict(line.split(": ", 1) for line in blocks[-1].split("\n") if ": " in line)
            self.assertEqual(last["event"], "error")
            err = json.loads(last["data"])
            self.assertEqual((err["type"], err["code"]), ("error", "draining"))
            self.assertNotIn(b"response.completed", reader.buf)
            self.assertEqual(srv.proc.wait(20), 0)
        finally:
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_non_streaming_request_at_the_deadline_gets_503(self):
        srv = Server("--mock-tokens-per-s", "20", "--drain-timeout-ms", "500")
        try:
            with connect(srv.port, timeout=30) as s:
                data = json.dumps(chat(500)).encode()
                s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                          % len(data) + data)
                generations_running(srv, 1)
                srv.send_signal(signal.SIGTERM)
                reader = ResponseReader(s, timeout=30)
                r = reader.read()
                assert_error_envelope(self, r, 503, "draining")
                self.assertIsNotNone(r.header("retry-after"))
                self.assertEqual(r.header("connection"), "close")
                self.assertTrue(reader.at_eof())
            self.assertEqual(srv.proc.wait(20), 0)
        finally:
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_broker_stream_in_processing_cut_at_the_deadline_gets_an_error_event(self):
        srv = Server("--mock-tokens-per-s", "20", "--drain-timeout-ms", "600")
        try:
            r = post_json(srv.port, "/api/v1/message", {"user_id": "u1", "message": "hi", "max_tokens": 500})
            mid = r.json()["message_id"]
            sse = SseReader(srv.port, f"/api/v1/stream?user_id=u1&message_id={mid}")
            while sse.next_event()["event"] != "progress":
                pass
            srv.send_signal(signal.SIGTERM)
            last = sse.next_event()
            while last["event"] == "progress":
                last = sse.next_event()
            self.assertEqual(last["event"], "error")
            self.assertEqual(json.loads(last["data"])["code"], "draining")
            with self.assertRaises(EOFError):
                sse.next_block(timeout=10)
            self.assertEqual(srv.proc.wait(20), 0)
        finally:
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_topic_stream_ends_with_a_draining_event(self):
        srv = Server("--drain-timeout-ms", "30000")
        try:
            sse = SseReader(srv.port, "/v1/topics/news/events")
            post_json(srv.port, "/v1/topics/news", {"n": 1})
            self.assertEqual(sse.next_event()["event"], "message")
            srv.send_signal(signal.SIGTERM)
            last = sse.next_event()
            self.assertEqual(last["event"], "error")
            self.assertNotIn("id", last, "the final event does not move Last-Event-ID")
            data = json.loads(last["data"])
            self.assertEqual((data["topic"], data["code"]), ("news", "draining"))
            with self.assertRaises(EOFError):
                sse.next_block(timeout=10)
            self.assertEqual(srv.proc.wait(20), 0)  # no need to wait for the drain deadline
        finally:
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_ws_chat_runs_to_its_end_then_1001(self):
        async def run(srv):
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws") as ws:
                await ws.send(json.dumps({"id": "c1", "action": "chat.completion", "payload": chat(30)}))
                await ws.send(json.dumps({"id": "s1", "action": "subscribe", "payload": {"topic": "t"}}))
                events = [json.loads(await ws.recv())]
                while events[-1]["event"] != "chat.delta":
                    events.append(json.loads(await ws.recv()))
                srv.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.2)
                await ws.send(json.dumps({"id": "c2", "action": "chat.completion", "payload": chat(3)}))
                with self.assertRaises(websockets.ConnectionClosed) as closed:
                    while True:
                        events.append(json.loads(await asyncio.wait_for(ws.recv(), 20)))
                self.assertEqual(closed.exception.rcvd.code, 1001)
                refused = [e for e in events if e["id"] == "c2"]
                self.assertEqual([(e["event"], e["error"]["code"]) for e in refused], [("error", "draining")])
                mine = [e["event"] for e in events if e["id"] == "c1"]
                self.assertEqual(mine[-1], "chat.complete")
                self.assertEqual(mine.count("chat.delta"), 30)
                subs = [e for e in events if e["id"] == "s1"]
                self.assertEqual(subs[-1]["event"], "error")
                self.assertEqual(subs[-1]["error"]["code"], "draining")

        self.run_until_exit(run, "--mock-tokens-per-s", "40", "--drain-timeout-ms", "30000")

    def test_ws_action_during_drain_is_answered_by_an_idle_home_shard(self):
        # Every action takes a token from the anonymous budget's home shard (rps 0.01: no
        # leases). With one WebSocket on four shards, the home usually has no connection once
        # the listeners close; it must keep answering until every shard is done.
        async def run(srv):
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws") as ws:
                await ws.send(json.dumps({"id": "c1", "action": "chat.completion", "payload": chat(40)}))
                while json.loads(await asyncio.wait_for(ws.recv(), 20))["event"] != "chat.delta":
                    pass
                srv.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.3)
                await ws.send(json.dumps({"id": "c2", "action": "chat.completion", "payload": chat(3)}))
                while True:  # the answer comes long before the drain deadline (30 s)
                    e = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if e["id"] == "c2":
                        break
                self.assertEqual((e["event"], e["error"]["code"]), ("error", "draining"))

        self.run_until_exit(run, "--rate-limit-rps", "0.01", "--rate-limit-burst", "1000",
                            "--mock-tokens-per-s", "2", "--drain-timeout-ms", "30000", shards=4)

    def test_ws_chat_cut_at_the_deadline_gets_an_error_event_then_1001(self):
        async def run(srv):
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws") as ws:
                await ws.send(json.dumps({"id": "c1", "action": "chat.completion", "payload": chat(500)}))
                events = [json.loads(await ws.recv())]
                srv.send_signal(signal.SIGTERM)
                with self.assertRaises(websockets.ConnectionClosed) as closed:
                    while True:
                        events.append(json.loads(await asyncio.wait_for(ws.recv(), 20)))
                self.assertEqual(closed.exception.rcvd.code, 1001)
                self.assertEqual(events[-1]["event"], "error")
                self.assertEqual(events[-1]["error"]["code"], "draining")

        self.run_until_exit(run, "--mock-tokens-per-s", "20", "--drain-timeout-ms", "500")

    def test_responses_websocket_finishes_its_response_and_refuses_new_ones(self):
        async def run(srv):
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}/v1/responses") as ws:
                await ws.send(json.dumps({"type": "response.create", "model": MODEL, "input": "x",
                                          "max_output_tokens": 30}))
                events = [json.loads(await ws.recv())]
                while events[-1]["type"] != "response.output_text.delta":
                    events.append(json.loads(await ws.recv()))
                srv.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.2)
                await ws.send(json.dumps({"type": "response.create", "model": MODEL, "input": "y"}))
                with self.assertRaises(websockets.ConnectionClosed) as closed:
                    while True:
                        events.append(json.loads(await asyncio.wait_for(ws.recv(), 20)))
                self.assertEqual(closed.exception.rcvd.code, 1001)
                types = [e["type"] for e in events]
                self.assertIn(types[-1], ("response.completed", "response.incomplete"))  # its end
                errors = [e for e in events if e["type"] == "error"]
                self.assertEqual([e["error"]["code"] for e in errors], ["draining"])
                self.assertEqual(errors[0]["status"], 503)

        self.run_until_exit(run, "--mock-tokens-per-s", "40", "--drain-timeout-ms", "30000")

    def test_second_signal_ends_at_once_with_error_events(self):
        srv = Server("--mock-tokens-per-s", "20", "--drain-timeout-ms", "60000",
                     "--drain-grace-ms", "60000")
        try:
            stream = ChatStream(srv.port, chat(2000, stream=True))
            events = stream.events()
            seen = [next(events), next(events)]
            srv.send_signal(signal.SIGTERM)
            next(events)  # still streaming while draining
            srv.send_signal(signal.SIGTERM)
            seen += list(events)
            self.assertEqual(json.loads(seen[-1])["error"]["code"], "draining")
            self.assertEqual(srv.proc.wait(20), 0)
        finally:
            self.assertEqual(srv.stop(), 0, srv.log())


class DrainGrace(unittest.TestCase):
    def test_grace_period_accepts_with_readyz_503_and_connection_close(self):
        srv = Server("--mock-tokens-per-s", "20", "--drain-grace-ms", "3000",
                     "--drain-timeout-ms", "30000")
        try:
            idle = connect(srv.port)
            idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            idle_reader = ResponseReader(idle)
            self.assertEqual(idle_reader.read().status, 200)
            stream = ChatStream(srv.port, chat(2000, stream=True))  # keeps the process draining
            events = stream.events()
            next(events)
            srv.send_signal(signal.SIGTERM)
            self.assertTrue(idle_reader.at_eof(timeout=5), "idle keep-alive connections close")
            r = get(srv.port, "/readyz")
            self.assertEqual(r.status, 503)
            self.assertEqual(r.json(), {"status": "draining"})
            self.assertEqual(r.header("connection"), "close")
            self.assertEqual(get(srv.port, "/healthz").header("connection"), "close")
            # Once the grace period is over, the listener is closed.
            deadline = time.monotonic() + 15
            refused = False
            while not refused and time.monotonic() < deadline:
                try:
                    get(srv.port, "/healthz", timeout=2)
                    time.sleep(0.1)
                except OSError:
                    refused = True
            self.assertTrue(refused, "the listener closes after the grace period")
            stream.close()
            self.assertEqual(srv.proc.wait(20), 0)
        finally:
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_websocket_upgrade_during_drain_is_refused(self):
        srv = Server("--drain-grace-ms", "30000", "--drain-timeout-ms", "30000")
        try:
            keep = connect(srv.port)
            keep.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # unfinished: keeps it draining
            time.sleep(0.1)
            srv.send_signal(signal.SIGTERM)
            time.sleep(0.2)

            async def run():
                with self.assertRaises(websockets.InvalidStatusCode) as refused:
                    async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws"):
                        pass
                self.assertEqual(refused.exception.status_code, 503)
            asyncio.run(run())
            keep.close()
        finally:
            self.assertEqual(srv.stop(signal.SIGINT), 0, srv.log())


if __name__ == "__main__":
    unittest.main()
