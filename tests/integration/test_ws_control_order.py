"""WebSocket control replies keep their order relative to the data they arrived with: a ping
received between the fragments of a message (or between two messages) is answered before the
echo of what follows it. Raw sockets, so the frames are batched exactly as written (a library
client writes each frame on its own, which the server usually reads separately)."""

import time
import unittest

from harness import Server, ws_frame, ws_handshake, ws_read_frame

PING, PONG, TEXT, CONT = 0x9, 0xA, 0x1, 0x0


def read_frames(reader, n):
    """The next n frames from the server as (opcode, payload), server heartbeat pings skipped."""
    frames = []
    while len(frames) < n:
        fin, opcode, payload = ws_read_frame(reader, timeout=10)
        if opcode == PING and payload == b"":
            continue  # the server's own heartbeat
        frames.append((opcode, payload))
    return frames


class ControlOrder(unittest.TestCase):
    def check(self, srv, writes, want):
        s, reader, r = ws_handshake(srv.port, "/echo")
        self.assertEqual(r.status, 101)
        try:
            for i, chunk in enumerate(writes):
                if i:
                    time.sleep(0.05)  # separate reads at the server, most of the time
                s.sendall(chunk)
            self.assertEqual(read_frames(reader, len(want)), want)
        finally:
            s.close()

    def test_ping_between_fragments_answered_before_the_echo(self):
        first = ws_frame(TEXT, b"Hel", fin=False)
        ping = ws_frame(PING, b"between")
        last = ws_frame(CONT, b"lo")
        want = [(PONG, b"between"), (TEXT, b"Hello")]
        with Server("--echo") as srv:
            with self.subTest("one write"):
                self.check(srv, [first + ping + last], want)
            with self.subTest("separate writes"):
                self.check(srv, [first, ping, last], want)

    def test_ping_between_messages_answered_between_their_echoes(self):
        one, ping, two = ws_frame(TEXT, b"one"), ws_frame(PING, b"p"), ws_frame(TEXT, b"two")
        want = [(TEXT, b"one"), (PONG, b"p"), (TEXT, b"two")]
        with Server("--echo") as srv:
            with self.subTest("one write"):
                self.check(srv, [one + ping + two], want)
            with self.subTest("separate writes"):
                self.check(srv, [one, ping, two], want)
            with self.subTest("pings inside and between fragmented messages, one write"):
                self.check(srv, [ws_frame(TEXT, b"a", fin=False) + ws_frame(PING, b"1") +
                                 ws_frame(CONT, b"b") + ws_frame(PING, b"2") +
                                 ws_frame(TEXT, b"c", fin=False) + ws_frame(PING, b"3") +
                                 ws_frame(CONT, b"d")],
                           [(PONG, b"1"), (TEXT, b"ab"), (PONG, b"2"), (PONG, b"3"),
                            (TEXT, b"cd")])


if __name__ == "__main__":
    unittest.main()
