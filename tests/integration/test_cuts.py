"""Server-side cuts other than draining — a deadline, an engine failure, a slow consumer, a
server-initiated close — are visible to the client: an error event, a close code after whole
frames, an unterminated chunked body; never a clean-looking end. Clients: Python `websockets`,
raw sockets."""

import asyncio
import json
import socket
import struct
import time
import unittest

import websockets

from harness import (Server, ResponseReader, connect, ws_frame, ws_handshake, ws_read_frame,
                     ws_read_message)
from openai_client import post_json

MODEL = "ringcast-mock"


def chat(prompt, max_tokens):
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}


async def collect_until_error_or_complete(ws, request_id, timeout=20):
    events = []
    while True:
        e = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if e.get("id") != request_id:
            continue
        events.append(e)
        if e["event"] in ("error", "chat.complete"):
            return events


class WebSocketCuts(unittest.TestCase):
    def test_ws_chat_deadline_and_engine_failure_are_error_events(self):
        async def run(srv):
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws") as ws:
                await ws.send(json.dumps({"id": "d", "action": "chat.completion", "payload": chat("x", 200)}))
                events = await collect_until_error_or_complete(ws, "d")
                self.assertEqual(events[-1]["error"]["code"], "deadline_exceeded")
                prompt = "please fail ringcast-mock:error-after=3"
                await ws.send(json.dumps({"id": "f", "action": "chat.completion", "payload": chat(prompt, 10)}))
                events = await collect_until_error_or_complete(ws, "f")
                self.assertEqual([e["event"] for e in events].count("chat.delta"), 3)
                self.assertEqual(events[-1]["error"]["code"], "mock_error")
                # The connection stays usable after a failed request.
                await ws.send(json.dumps({"id": "ok", "action": "chat.completion", "payload": chat("y", 2)}))
                events = await collect_until_error_or_complete(ws, "ok")
                self.assertEqual(events[-1]["event"], "chat.complete")

        with Server("--mock-tokens-per-s", "100", "--request-timeout-ms", "500") as srv:
            asyncio.run(run(srv))

    def test_broker_engine_failure_is_an_error_event(self):
        with Server() as srv:
            r = post_json(srv.port, "/api/v1/message",
                          {"user_id": "u", "message": "fail ringcast-mock:error-after=2", "max_tokens": 8})
            mid = r.json()["message_id"]
            with connect(srv.port) as s:
                s.sendall(f"GET /api/v1/stream?user_id=u&message_id={mid} HTTP/1.1\r\nHost: x\r\n\r\n"
                          .encode())
                body = ResponseReader(s, timeout=20).read().body.decode()
            events = [dict(line.split(": ", 1) for line in b.split("\n") if ": " in line)
                      for b in body.split("\n\n") if "event: " in b]
            self.assertEqual([e["event"] for e in events].count("progress"), 2)
            self.assertEqual(events[-1]["event"], "error")
            self.assertEqual(json.loads(events[-1]["data"])["code"], "mock_error")

    def test_server_close_releases_the_connection_once_the_client_answers(self):
        with Server("--ws-idle-timeout-ms", "300") as srv:
            s, reader, r = ws_handshake(srv.port)
            self.assertEqual(r.status, 101)
            while True:
                _, opcode, payload = ws_read_frame(reader)
                if opcode == 0x8:
                    break
            self.assertEqual(struct.unpack("!H", payload[:2])[0], 1001)
            s.sendall(ws_frame(0x8, payload[:2]))
            # The handshake is complete: the server closes TCP now, not after a wait.
            self.assertTrue(reader.at_eof(timeout=3), "the server held the connection after the close")
            s.close()

    def test_slow_subscriber_gets_whole_frames_then_1008(self):
        with Server("--stream-high-bytes", "65536", "--stream-low-bytes", "32768",
                    "--stream-max-bytes", "131072", "--slow-consumer-ms", "200",
                    "--send-buffer-bytes", "16384") as srv:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            s.settimeout(10)
            s.connect(("127.0.0.1", srv.port))
            key = "dGhlIHNhbXBsZSBub25jZQ=="
            s.sendall((f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
            reader = ResponseReader(s)
            self.assertEqual(reader.read(head_only=True).status, 101)
            s.sendall(ws_frame(0x1, json.dumps({"id": "s", "action": "subscribe",
                                                "payload": {"topic": "flood"}}).encode()))
            _, payload = ws_read_message(reader)
            self.assertEqual(json.loads(payload)["event"], "subscribed")
            # Stop reading; publish far more than the kernel buffers and the backlog hold.
            blob = "x" * 8000
            for i in range(120):
                post_json(srv.port, "/v1/topics/flood", {"i": i, "blob": blob})
            time.sleep(6)  # longer than the server's wait for a close answer
            messages, close_code = 0, None
            while close_code is None:
                opcode, payload = ws_read_message(reader, timeout=10)  # raises on a cut frame
                if opcode == 0x8:
                    close_code = struct.unpack("!H", payload[:2])[0]
                    self.assertEqual(payload[2:].decode(), "slow consumer")
                else:
                    event = json.loads(payload)  # every message whole
                    self.assertEqual(event["data"]["data"]["i"], messages)
                    messages += 1
            self.assertEqual(close_code, 1008)
            self.assertLess(messages, 120)
            s.close()

    def test_slow_sse_subscriber_sees_an_unterminated_stream(self):
        with Server("--stream-high-bytes", "65536", "--stream-low-bytes", "32768",
                    "--stream-max-bytes", "131072", "--slow-consumer-ms", "200",
                    "--send-buffer-bytes", "16384") as srv:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            s.settimeout(10)
            s.connect(("127.0.0.1", srv.port))
            s.sendall(b"GET /v1/topics/flood/events HTTP/1.1\r\nHost: x\r\n\r\n")
            reader = ResponseReader(s, timeout=20)
            self.assertEqual(reader.read(head_only=True).status, 200)
            blob = "x" * 8000
            for i in range(120):
                post_json(srv.port, "/v1/topics/flood", {"i": i, "blob": blob})
            # A chunked body without its terminator: every HTTP client reports the stream as cut.
            with self.assertRaises(ConnectionError):
                while True:
                    line = reader._read_until(b"\r\n", time.monotonic() + 20)
                    size = int(line.split(b";")[0], 16)
                    self.assertNotEqual(size, 0, "a slow consumer's stream must not end cleanly")
                    reader._read_exact(size + 2, time.monotonic() + 20)
            s.close()


if __name__ == "__main__":
    unittest.main()
