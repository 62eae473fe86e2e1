"""The wire log's taps (wire_log.py, RINGCAST_WIRE_LOG): what they write for SSE responses cut at
any byte, for fragmented WebSocket messages, and for a live server's /ws and topic traffic
through harness.connect() and the `websockets` library."""

import asyncio
import json
import os
import struct
import tempfile
import unittest

import websockets

import wire_log
from harness import Server, connect, request, ws_frame, ws_handshake, ws_read_message


class TapTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.saved = wire_log.LOG
        wire_log.LOG = os.path.join(self.dir.name, "wire.jsonl")

    def tearDown(self):
        wire_log.LOG = self.saved
        self.dir.cleanup()

    def logged(self):
        if not os.path.exists(wire_log.LOG):
            return []
        with open(wire_log.LOG, encoding="utf-8") as f:
            return [json.loads(line) for line in f]


def chunked(*parts):
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def server_frame(opcode, payload, fin=True):
    n = len(payload)
    head = struct.pack("!BB", (0x80 if fin else 0) | opcode, n) if n < 126 else \
        struct.pack("!BBH", (0x80 if fin else 0) | opcode, 126, n)
    return head + payload


class ResponseTapTest(TapTest):
    def test_sse_events_are_logged_whatever_the_recv_boundaries(self):
        tap = wire_log.ResponseTap()
        tap.sent(b"POST /v1/topics/news HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
                 b"GET /v1/topics/news/events?since=0 HTTP/1.1\r\nHost: x\r\n\r\n")
        body = '{"topic":"news","seq":1,"id":"0123abcd-1"}'.encode()
        sse = chunked(b"event: reset\ndata: {\"topic\":\"news\",\"epoch\":\"0123abcd\",\"seq\":1,\"oldest\":1}\n\n",
                      b": ping\n\n",
                      "id: 0123abcd-1\nevent: message\ndata: {\"s\":\"é\"}\n\n".encode(),
                      b"id: 0123abcd-2\nevent: mess", b"age\ndata: [1,\ndata: 2]\n\n",
                      b"event: message\ndata: not json\n\n")
        wire = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body +
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + sse)
        for i in range(len(wire)):  # one byte at a time
            tap.received(wire[i:i + 1])
        route = "/v1/topics/news/events"
        self.assertEqual(self.logged(), [
            {"kind": "sse", "route": route, "message": {"event": "reset", "data": {"topic": "news", "epoch": "0123abcd", "seq": 1, "oldest": 1}}},
            {"kind": "sse", "route": route, "message": {"event": "message", "id": "0123abcd-1", "data": {"s": "é"}}},
            {"kind": "sse", "route": route, "message": {"event": "message", "id": "0123abcd-2", "data": [1, 2]}},
            {"kind": "sse", "route": route, "message": {"event": "message", "unparsable_data": "not json"}},
        ])
        self.assertEqual(tap.state, "head")

    def test_sse_of_other_routes_is_not_logged(self):
        tap = wire_log.ResponseTap()
        tap.sent(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        tap.received(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
                     chunked(b"data: {\"x\":1}\n\n", b"data: [DONE]\n\n"))
        self.assertEqual(self.logged(), [])

    def test_websocket_messages_after_the_upgrade_are_reassembled(self):
        tap = wire_log.ResponseTap()
        tap.sent(b"GET /ws?api_key=k HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
        wire = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n" +
                server_frame(0x1, b'{"id":"s1",', fin=False) + server_frame(0x9, b"") +
                server_frame(0x0, b'"event":"message","data":{"topic":"t","seq":1,"id":"0123abcd-1","data":' + b"7" * 200 + b"}}") +
                server_frame(0x1, b'{"event":"flow.pause"}') + server_frame(0x1, b"oops") +
                server_frame(0x8, b"\x03\xe8") + server_frame(0x1, b'{"after":"close"}'))
        for i in range(0, len(wire), 5):
            tap.received(wire[i:i + 5])
        got = [e["message"] for e in self.logged()]
        self.assertEqual(got, [{"id": "s1", "event": "message", "data": {"topic": "t", "seq": 1, "id": "0123abcd-1", "data": int("7" * 200)}},
                               {"event": "flow.pause"}, {"not_json": "oops"}])
        self.assertEqual({e["route"] for e in self.logged()}, {"/ws"})

    def test_other_websocket_routes_are_not_logged(self):
        tap = wire_log.ResponseTap()
        tap.sent(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
        tap.received(b"HTTP/1.1 101 Switching Protocols\r\n\r\n" + server_frame(0x1, b'{"id":"x"}'))
        self.assertEqual(self.logged(), [])


class LiveTapTest(TapTest):
    def test_raw_sockets_and_websockets_clients_log_what_they_receive(self):
        wire_log.install_websockets_tap()
        with Server(shards=2) as srv:
            r = request(srv.port, b"POST /v1/topics/news HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{\"n\":1}")
            self.assertEqual(r.status, 200)
            s, reader, _ = ws_handshake(srv.port)
            s.sendall(ws_frame(0x1, b'{"id":"s1","action":"subscribe","payload":{"topic":"news","since":0}}'))
            self.assertEqual(json.loads(ws_read_message(reader)[1])["event"], "subscribed")
            self.assertEqual(json.loads(ws_read_message(reader)[1])["event"], "message")
            s.close()

            async def lib():
                async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws") as ws:
                    await ws.send(json.dumps({"id": "h1", "action": "system.health"}))
                    return json.loads(await ws.recv())
            self.assertEqual(asyncio.run(lib())["event"], "system.health")

            sock = connect(srv.port)
            sock.sendall(b"GET /v1/topics/news/events?since=0 HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while b"event: message" not in data:
                data += sock.recv(65536)
            sock.close()
        events = [(e["kind"], e["route"], e["message"].get("event")) for e in self.logged()]
        self.assertEqual(events, [("ws", "/ws", "subscribed"), ("ws", "/ws", "message"),
                                  ("ws", "/ws", "system.health"),
                                  ("sse", "/v1/topics/news/events", "message")])


if __name__ == "__main__":
    unittest.main()
