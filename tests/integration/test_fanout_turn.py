"""Topic events reach subscribers on the publication's own shard in the loop turn that read the
publication (server/src/topics_outbox.cc): the publisher's answer and the events leave in that
turn's sends. Counted on the wire by the client's kernel (TCP_INFO data segments received), with
a raw-socket WebSocket client that subscribes to the topic it publishes to: its `published`
answer and its `message` event leave in one send, hence one segment. Delivered a turn later,
they were two sends (two segments) per publication."""

import json
import socket
import struct
import unittest

from harness import Server, ws_frame, ws_handshake, ws_read_message

# struct tcp_info (linux/tcp.h): tcpi_data_segs_in is the __u32 at byte 152 (Linux 4.6+).
TCPI_DATA_SEGS_IN = 152


def data_segments_in(sock):
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    if len(info) < TCPI_DATA_SEGS_IN + 4:
        raise unittest.SkipTest("TCP_INFO has no tcpi_data_segs_in on this kernel")
    return struct.unpack_from("I", info, TCPI_DATA_SEGS_IN)[0]


def read_json(reader):
    opcode, payload = ws_read_message(reader)
    assert opcode == 0x1, opcode
    return json.loads(payload)


class FanoutTurn(unittest.TestCase):
    def test_answer_and_event_of_a_publication_leave_in_one_send(self):
        n = 10
        with Server() as srv:
            s, reader, r = ws_handshake(srv.port)
            self.assertEqual(r.status, 101)
            s.sendall(ws_frame(0x1, json.dumps({"id": "sub", "action": "subscribe",
                                                "payload": {"topic": "turn.t"}}).encode()))
            self.assertEqual(read_json(reader)["event"], "subscribed")
            segments = 0
            for i in range(n):
                before = data_segments_in(s)
                publish = {"id": f"p{i}", "action": "publish",
                           "payload": {"topic": "turn.t", "data": {"i": i}}}
                s.sendall(ws_frame(0x1, json.dumps(publish).encode()))
                answer, event = read_json(reader), read_json(reader)
                self.assertEqual((answer["id"], answer["event"]), (f"p{i}", "published"))
                self.assertEqual((event["id"], event["event"]), ("sub", "message"))
                self.assertEqual(event["data"]["data"], {"i": i})
                self.assertEqual(event["data"]["seq"], answer["data"]["seq"])
                segments += data_segments_in(s) - before
            # One segment per publication; two (a turn apart) would be 2n. A little slack for a
            # heartbeat or a retransmission on a loaded machine.
            self.assertLessEqual(segments, n + n // 4,
                                 f"{segments} data segments for {n} publications")
            s.close()


if __name__ == "__main__":
    unittest.main()
