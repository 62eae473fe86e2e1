"""permessage-deflate (RFC 7692) on the real server: Python `websockets` (which offers it by
default), and raw sockets for what no library sends (bombs, corrupt data, hostile offers) and to
look at the frames themselves (RSV1, context takeover, compress-once fan-out)."""

import asyncio
import json
import struct
import unittest
import zlib

import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from harness import Server, metric_sum, metrics, request, ws_frame, ws_handshake

TAIL = b"\x00\x00\xff\xff"


def ws_url(srv, path="/ws"):
    return f"ws://127.0.0.1:{srv.port}{path}"


def post(port, path, body):
    data = json.dumps(body).encode()
    raw = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(data)}\r\n\r\n").encode() + data
    return request(port, raw)


def read_frame(reader, timeout=10.0):
    """One server frame: (fin, rsv1, opcode, payload)."""
    import time
    deadline = time.monotonic() + timeout
    head = reader._read_exact(2, deadline)
    n = head[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", reader._read_exact(2, deadline))[0]
    elif n == 127:
        n = struct.unpack("!Q", reader._read_exact(8, deadline))[0]
    return bool(head[0] & 0x80), bool(head[0] & 0x40), head[0] & 0x0F, reader._read_exact(n, deadline)


def read_message(reader, timeout=10.0):
    """One data message or close frame, pings skipped: (opcode, compressed?, frames, payload)."""
    frames = []
    while True:
        fin, rsv1, opcode, payload = read_frame(reader, timeout)
        if opcode in (0x9, 0xA):
            continue
        frames.append((rsv1, opcode, payload))
        if opcode == 0x8 or fin:
            return frames[0][1], frames[0][0], frames, b"".join(p for _, _, p in frames)


def close_code(reader, timeout=10.0):
    while True:
        opcode, _, _, payload = read_message(reader, timeout)
        if opcode == 0x8:
            return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


def inflate(data, d=None):
    d = d or zlib.decompressobj(-15)
    return d.decompress(data + TAIL)


def deflate(data, level=6):
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[:-4]


class Negotiation(unittest.TestCase):
    def test_off_by_default(self):
        async def run(srv):
            async with websockets.connect(ws_url(srv, "/echo")) as ws:
                self.assertIsNone(ws.response_headers.get("Sec-WebSocket-Extensions"))
                await ws.send("x" * 1000)
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "x" * 1000)
        with Server("--echo") as srv:
            asyncio.run(run(srv))
            # And an RSV1 frame is a protocol error there.
            s, reader, r = ws_handshake(srv.port, "/echo",
                                        {"Sec-WebSocket-Extensions": "permessage-deflate"})
            self.assertEqual(r.status, 101)
            self.assertIsNone(r.header("sec-websocket-extensions"))
            s.sendall(ws_frame(0x1, deflate(b"hello"), rsv=4))
            self.assertEqual(close_code(reader), 1002)
            s.close()

    def test_answers_and_hostile_offers(self):
        cases = [
            ("permessage-deflate", "permessage-deflate; client_no_context_takeover"),
            ("permessage-deflate; client_max_window_bits",
             "permessage-deflate; client_no_context_takeover"),
            ("permessage-deflate; server_no_context_takeover; client_no_context_takeover",
             "permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
            ("permessage-deflate; server_max_window_bits=10",
             "permessage-deflate; client_no_context_takeover; server_max_window_bits=10"),
            ("permessage-deflate; server_max_window_bits=15",
             "permessage-deflate; client_no_context_takeover; server_max_window_bits=12"),
            ("permessage-deflate; server_max_window_bits=8, permessage-deflate",
             "permessage-deflate; client_no_context_takeover"),
            ("x-foo; a=\"1, 2\", permessage-deflate; bogus, permessage-deflate; "
             "server_no_context_takeover",
             "permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
            ("permessage-deflate; server_max_window_bits", None),
            ("permessage-deflate; server_no_context_takeover=yes", None),
            ("permessage-deflate; a=\"unterminated, permessage-deflate", None),
            ("permessage-deflate;;;===,,,\"\\", None),
            (";" * 4000, None),
            ("x-webkit-deflate-frame", None),
        ]
        with Server("--echo", "--ws-deflate") as srv:
            for offer, want in cases:
                s, reader, r = ws_handshake(srv.port, "/echo", {"Sec-WebSocket-Extensions": offer})
                self.assertEqual(r.status, 101, offer)
                self.assertEqual(r.header("sec-websocket-extensions"), want, offer)
                s.sendall(ws_frame(0x1, b"still works"))
                self.assertEqual(read_message(reader)[3], b"still works")
                s.close()

    def test_contexts_cap_answers_no_context_takeover(self):
        with Server("--echo", "--ws-deflate", "--ws-deflate-contexts-max", "1") as srv:
            s1, _, r1 = ws_handshake(srv.port, "/echo", {"Sec-WebSocket-Extensions": "permessage-deflate"})
            s2, _, r2 = ws_handshake(srv.port, "/echo", {"Sec-WebSocket-Extensions": "permessage-deflate"})
            self.assertEqual(r1.header("sec-websocket-extensions"),
                             "permessage-deflate; client_no_context_takeover")
            self.assertEqual(r2.header("sec-websocket-extensions"),
                             "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
            s1.close()
            s2.close()


class CompressedEcho(unittest.TestCase):
    def test_websockets_client_echo(self):
        async def run(srv):
            async with websockets.connect(ws_url(srv, "/echo"), max_size=2 << 20) as ws:
                ext = ws.response_headers.get("Sec-WebSocket-Extensions")
                self.assertEqual(ext, "permessage-deflate; client_no_context_takeover")
                for payload in ["", "x", "é✓" * 1000, "a" * 65536, json.dumps({"k": list(range(5000))})]:
                    await ws.send(payload)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 10), payload)
                for payload in [b"", bytes(range(256)) * 300]:
                    await ws.send(payload)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 10), payload)
                await ws.send(["frag", "mented " * 100, " message"])  # compressed, three frames
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10),
                                 "frag" + "mented " * 100 + " message")
                # The limit applies to the inflated size.
                await ws.send("b" * ((1 << 20) + 1))
                with self.assertRaises(websockets.ConnectionClosed) as ctx:
                    await asyncio.wait_for(ws.recv(), 10)
                self.assertEqual(ctx.exception.rcvd.code, 1009)
        with Server("--echo", "--ws-deflate") as srv:
            asyncio.run(run(srv))

    def test_frames_on_the_wire(self):
        with Server("--echo", "--ws-deflate", "--ws-deflate-min-bytes", "64") as srv:
            # Context takeover kept: the second identical message is much shorter and needs the
            # first one's window.
            s, reader, _ = ws_handshake(srv.port, "/echo", {"Sec-WebSocket-Extensions": "permessage-deflate"})
            msg = json.dumps({"words": [f"w{i * 7919 % 1009}" for i in range(300)]}).encode()
            keep = zlib.decompressobj(-15)
            sizes = []
            for _ in range(2):
                s.sendall(ws_frame(0x1, msg))
                opcode, rsv1, frames, payload = read_message(reader)
                self.assertTrue(rsv1)
                self.assertEqual(inflate(payload, keep), msg)
                sizes.append(len(payload))
            self.assertLess(sizes[1], sizes[0] / 4)
            s.sendall(ws_frame(0x1, b"short"))  # under --ws-deflate-min-bytes
            self.assertEqual(read_message(reader)[:2], (0x1, False))
            # A compressed message from the client (fragmented, RSV1 on the first frame only).
            z = deflate(msg)
            s.sendall(ws_frame(0x1, z[:10], fin=False, rsv=4) + ws_frame(0x9, b"p") +
                      ws_frame(0x0, z[10:]))
            opcode, rsv1, frames, payload = read_message(reader)
            self.assertEqual(inflate(payload, keep), msg)
            s.close()
            # server_no_context_takeover: every message decodes alone.
            s, reader, r = ws_handshake(srv.port, "/echo", {
                "Sec-WebSocket-Extensions": "permessage-deflate; server_no_context_takeover"})
            for _ in range(2):
                s.sendall(ws_frame(0x2, msg))
                opcode, rsv1, frames, payload = read_message(reader)
                self.assertEqual((opcode, rsv1), (0x2, True))
                self.assertEqual(inflate(payload), msg)
            s.close()


class HostileCompressedInput(unittest.TestCase):
    def setUp(self):
        self.offer = {"Sec-WebSocket-Extensions": "permessage-deflate"}

    def test_bomb_closes_1009(self):
        bomb = deflate(b"\0" * (8 << 20), 9)
        self.assertLess(len(bomb), 16 << 10)
        with Server("--echo", "--ws-deflate", "--ws-message-bytes-max", "65536") as srv:
            for wire in [ws_frame(0x2, bomb, rsv=4),
                         ws_frame(0x2, bomb[:100], fin=False, rsv=4) + ws_frame(0x0, bomb[100:])]:
                s, reader, _ = ws_handshake(srv.port, "/echo", self.offer)
                s.sendall(wire)
                self.assertEqual(close_code(reader), 1009)
                s.close()
            self.assertGreaterEqual(metric_sum(metrics(srv.port), "ringcast_ws_protocol_errors_total"), 2)

    def test_bad_data_closes_1007(self):
        with Server("--echo", "--ws-deflate") as srv:
            for wire in [ws_frame(0x1, b"\xff\xff\xff\xff not deflate", rsv=4),
                         ws_frame(0x1, deflate(b"\xc3\x28 invalid utf-8"), rsv=4),
                         ws_frame(0x1, deflate(b"x" * 1000)[:5], rsv=4)]:  # cut inside a block
                s, reader, _ = ws_handshake(srv.port, "/echo", self.offer)
                s.sendall(wire)
                self.assertEqual(close_code(reader), 1007)
                s.close()
            # RSV1 on a continuation or a control frame stays a protocol error.
            for wire in [ws_frame(0x1, b"a", fin=False) + ws_frame(0x0, deflate(b"b"), rsv=4),
                         ws_frame(0x9, b"", rsv=4)]:
                s, reader, _ = ws_handshake(srv.port, "/echo", self.offer)
                s.sendall(wire)
                self.assertEqual(close_code(reader), 1002)
                s.close()


def ws_subscribe(s, reader, rid, topic):
    s.sendall(ws_frame(0x1, json.dumps({"id": rid, "action": "subscribe",
                                        "payload": {"topic": topic}}).encode()))


class CompressOnceFanout(unittest.TestCase):
    def test_mixed_subscribers(self):
        async def run(srv):
            keep = await websockets.connect(ws_url(srv))  # default offer: context takeover
            plain = await websockets.connect(ws_url(srv), compression=None)
            alone = await websockets.connect(ws_url(srv), extensions=[
                ClientPerMessageDeflateFactory(server_no_context_takeover=True)])
            self.assertIsNone(plain.response_headers.get("Sec-WebSocket-Extensions"))
            self.assertIn("server_no_context_takeover",
                          alone.response_headers.get("Sec-WebSocket-Extensions"))
            clients = {"keep": keep, "plain": plain, "alone": alone}
            for name, ws in clients.items():
                await ws.send(json.dumps({"id": name, "action": "subscribe", "payload": {"topic": "f"}}))
                ok = json.loads(await asyncio.wait_for(ws.recv(), 10))
                self.assertEqual(ok["event"], "subscribed")
            # Raw subscribers without context: compressed prefix (a stored block) + the shared
            # continuation; their continuations are byte-identical.
            raws = []
            for i in range(2):
                s, reader, r = ws_handshake(srv.port, "/ws", {
                    "Sec-WebSocket-Extensions": "permessage-deflate; server_no_context_takeover"})
                ws_subscribe(s, reader, f"raw{i}", "f")
                self.assertEqual(json.loads(read_message(reader)[3])["event"], "subscribed")
                raws.append((s, reader))
            events = [{"i": i, "text": "lorem ipsum dolor sit amet " * (5 + i)} for i in range(5)]
            events.append({"i": 5})  # under --ws-deflate-min-bytes: uncompressed for everyone
            for e in events:
                self.assertEqual(post(srv.port, "/v1/topics/f", e).status, 200)
            for name, ws in clients.items():
                for e in events:
                    m = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    self.assertEqual((m["id"], m["event"], m["data"]["data"]), (name, "message", e))
            continuations = []
            for i, (s, reader) in enumerate(raws):
                got = []
                for e in events:
                    opcode, rsv1, frames, payload = read_message(reader)
                    self.assertEqual(len(frames), 2)
                    self.assertEqual([f[0] for f in frames], [rsv1, False])
                    text = inflate(payload) if rsv1 else payload
                    m = json.loads(text)
                    self.assertEqual((m["id"], m["data"]["data"]), (f"raw{i}", e))
                    got.append((rsv1, frames[1][2]))
                self.assertEqual([g[0] for g in got], [True] * 5 + [False])
                continuations.append([g[1] for g in got])
                s.close()
            self.assertEqual(continuations[0], continuations[1])
            for ws in clients.values():
                await ws.close()
        with Server("--ws-deflate", "--ws-deflate-min-bytes", "100") as srv:
            asyncio.run(run(srv))
        # Two shards: each compresses for its own subscribers, same result.
        with Server("--ws-deflate", "--ws-deflate-min-bytes", "100", shards=2) as srv:
            asyncio.run(run(srv))


if __name__ == "__main__":
    unittest.main()
