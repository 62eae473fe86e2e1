"""Topic fan-out on the wire after the send path copies small deliveries into each connection's
own buffer and keeps larger ones as shared slices (server/src/connection_stream.cc): WebSocket
messages stay valid and whole, SSE events whole, in publication order whatever the mix of small
and large events; a slow subscriber fed only small (copied) events is still cut at the backlog
limits with whole frames. Clients: Python `websockets`, raw sockets."""

import asyncio
import json
import socket
import struct
import time
import unittest

import websockets

import test_streams
from harness import Server, ResponseReader, ws_frame, ws_read_message
from openai_client import post_json

# Below and above the copy threshold (2048 bytes per delivery), mixed.
SIZES = [10, 3000, 200, 1900, 2100, 5, 70000, 400, 1, 2040, 2060, 300]


class FanoutFrames(unittest.TestCase):
    def test_small_and_large_events_arrive_whole_and_in_order(self):
        async def run(srv):
            sse = test_streams.SseReader(srv.port, "/v1/topics/mix/events")
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws",
                                          max_size=1 << 20) as ws:
                await ws.send(json.dumps({"id": "sub-1", "action": "subscribe",
                                          "payload": {"topic": "mix"}}))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
                self.assertEqual(reply["event"], "subscribed")
                await asyncio.sleep(0.1)  # the SSE subscription reaches the topic's home
                for rounds in range(3):
                    for i, n in enumerate(SIZES):
                        post_json(srv.port, "/v1/topics/mix", {"i": i, "r": rounds, "p": "x" * n})
                for rounds in range(3):
                    for i, n in enumerate(SIZES):
                        # websockets fails on an invalid or interleaved frame.
                        e = json.loads(await asyncio.wait_for(ws.recv(), 10))
                        self.assertEqual(e["id"], "sub-1")
                        self.assertEqual(e["event"], "message")
                        self.assertEqual(e["data"]["data"], {"i": i, "r": rounds, "p": "x" * n})
                        ev = sse.next_event()
                        self.assertEqual(ev["event"], "message")
                        self.assertEqual(json.loads(ev["data"]), {"i": i, "r": rounds, "p": "x" * n})
            sse.close()

        with Server() as srv:
            asyncio.run(run(srv))

    def test_slow_subscriber_of_small_events_gets_whole_frames_then_1008(self):
        with Server("--stream-high-bytes", "65536", "--stream-low-bytes", "32768",
                    "--stream-max-bytes", "131072", "--slow-consumer-ms", "200",
                    "--send-buffer-bytes", "16384") as srv:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            s.settimeout(10)
            s.connect(("127.0.0.1", srv.port))
            key = "dGhlIHNhbXBsZSBub25jZQ=="
            s.sendall((f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                       f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
            reader = ResponseReader(s)
            self.assertEqual(reader.read(head_only=True).status, 101)
            s.sendall(ws_frame(0x1, json.dumps({"id": "s", "action": "subscribe",
                                                "payload": {"topic": "small"}}).encode()))
            _, payload = ws_read_message(reader)
            self.assertEqual(json.loads(payload)["event"], "subscribed")
            # Stop reading; publish small events (each copied) far beyond the send window,
            # the kernel's buffers and the backlog.
            blob = "y" * 1000
            total = 900
            for i in range(total):
                post_json(srv.port, "/v1/topics/small", {"i": i, "blob": blob})
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
            self.assertLess(messages, total)
            s.close()


if __name__ == "__main__":
    unittest.main()
