"""What an open WebSocket holds: the memory goal (at most 1 KiB of server RSS per idle WebSocket)
and the hand-over from HTTP that lets a WebSocket drop the request-reading state.

An upgraded connection gives back everything it needed to read HTTP requests (its input buffer,
parse offsets, the admission ticket): the bytes the client sent after the upgrade request go to
the WebSocket, whichever way the upgrade request was reached (read at once, or pipelined behind
an asynchronous answer and parsed later).
"""

import json
import resource
import time
import unittest

from harness import (Server, ResponseReader, connect, ws_frame, ws_handshake, ws_read_message)

MODEL = "ringcast-mock"


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def uses_mimalloc(pid):
    # The figure is the release build's (mimalloc's size classes); sanitizer builds use their own
    # allocator, with its own overheads.
    with open(f"/proc/{pid}/maps") as f:
        return "mimalloc" in f.read()


class HandOver(unittest.TestCase):
    def test_frames_pipelined_behind_an_upgrade_that_waited_reach_the_websocket(self):
        # The upgrade request waits behind a chat completion answered later (the mock's first
        # token comes after 300 ms); a text frame follows it in the same write. When the chat
        # answer is written, the upgrade is parsed, and the frame must reach the echo handler.
        with Server("--echo", "--mock-first-token-ms", 300) as srv:
            body = json.dumps({"model": MODEL, "max_tokens": 2,
                               "messages": [{"role": "user", "content": "hi"}]}).encode()
            key = "dGhlIHNhbXBsZSBub25jZQ=="
            raw = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body +
                   ("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode() +
                   ws_frame(0x1, b"after the upgrade"))
            with connect(srv.port) as s:
                s.sendall(raw)
                reader = ResponseReader(s, timeout=15)
                chat = reader.read()
                self.assertEqual(chat.status, 200, chat.body)
                self.assertEqual(chat.json()["object"], "chat.completion")
                up = reader.read(head_only=True)
                self.assertEqual(up.status, 101, up.raw_head)
                self.assertEqual(ws_read_message(reader, timeout=15), (0x1, b"after the upgrade"))
                # And the socket goes on as a WebSocket.
                s.sendall(ws_frame(0x1, b"next"))
                self.assertEqual(ws_read_message(reader, timeout=15), (0x1, b"next"))

    def test_frames_in_the_upgrades_own_read_reach_the_websocket(self):
        with Server("--echo") as srv:
            key = "dGhlIHNhbXBsZSBub25jZQ=="
            raw = (("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode() +
                   ws_frame(0x1, b"one") + ws_frame(0x2, b"two"))
            with connect(srv.port) as s:
                s.sendall(raw)
                reader = ResponseReader(s, timeout=15)
                self.assertEqual(reader.read(head_only=True).status, 101)
                self.assertEqual(ws_read_message(reader), (0x1, b"one"))
                self.assertEqual(ws_read_message(reader), (0x2, b"two"))


class IdleMemory(unittest.TestCase):
    N = 2000

    def test_an_idle_websocket_costs_at_most_1_kib_of_server_rss(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard < self.N + 200:
            self.skipTest(f"RLIMIT_NOFILE hard limit {hard} < {self.N + 200}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, self.N + 200), hard))
        # Few receive buffers, so warming them all up is quick: they are the shard's, shared by
        # every connection, and become resident as receives cycle through them (not per socket).
        with Server("--recv-buffers", 256) as srv:
            if not uses_mimalloc(srv.proc.pid):
                self.skipTest("not the release allocator (mimalloc)")
            with connect(srv.port) as warm:
                reader = ResponseReader(warm, timeout=15)
                for _ in range(600):  # every receive buffer used at least twice
                    warm.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    self.assertEqual(reader.read().status, 200)
            # A first batch of WebSockets: the allocator's pages for their objects are mapped.
            socks = [ws_handshake(srv.port)[0] for _ in range(200)]
            time.sleep(0.2)
            before = rss_bytes(srv.proc.pid)
            for _ in range(self.N):
                s, _, r = ws_handshake(srv.port)
                self.assertEqual(r.status, 101)
                socks.append(s)
            time.sleep(0.2)
            after = rss_bytes(srv.proc.pid)
            per = (after - before) / self.N
            for s in socks:
                s.close()
            self.assertLessEqual(per, 1024, f"{per:.0f} bytes per idle WebSocket")


if __name__ == "__main__":
    unittest.main()
