"""Topic events reach subscribers on the publication's own shard in the loop turn that read the
publication (server/src/topics_outbox.cc): the publisher's answer and the events leave in that
turn's sends. Counted on the wire by the client's kernel (TCP_INFO data segments received), with
a raw-socket WebSocket client that subscribes to the topic it publishes to: its `published`
answer and its `message` event leave in one send, hence one segment. Delivered a turn later,
they were two sends (two segments) per publication. Also: the copies of one small publication
held for N subscribers' sends are sized to it (peak RSS, /proc VmHWM), not 4 KiB each."""

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


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(ln for ln in f if ln.startswith("VmHWM")).split()[1])


class FanoutSendBuffers(unittest.TestCase):
    def test_one_small_publication_does_not_hold_4_kib_per_subscriber(self):
        # One ~300-byte publication to N WebSocket subscribers: each subscriber's copy of it is
        # held until its send completes, and all N are written in the same turn. Sized to the
        # delivery that is 512 bytes each; a fixed 4 KiB start was N x 4 KiB at the peak.
        n = 2000
        with Server() as srv:
            socks = []
            try:
                for _ in range(n):
                    s, reader, r = ws_handshake(srv.port)
                    socks.append((s, reader))
                    self.assertEqual(r.status, 101)
                    s.sendall(ws_frame(0x1, json.dumps({"id": "s", "action": "subscribe",
                                                        "payload": {"topic": "buf.t"}}).encode()))
                    self.assertEqual(read_json(reader)["event"], "subscribed")
                before = vm_hwm_kib(srv.proc.pid)
                pub, pub_reader, _ = ws_handshake(srv.port)
                socks.append((pub, pub_reader))
                pub.sendall(ws_frame(0x1, json.dumps({"id": "p", "action": "publish", "payload": {
                    "topic": "buf.t", "data": {"pad": "x" * 200}}}).encode()))
                self.assertEqual(read_json(pub_reader)["event"], "published")
                for s, reader in socks[:n]:
                    self.assertEqual(read_json(reader)["data"]["data"], {"pad": "x" * 200})
                grown = vm_hwm_kib(srv.proc.pid) - before
                # 4 KiB each would be 8,000 KiB; 512 bytes each is 1,000 KiB.
                self.assertLess(grown, n * 2, f"peak RSS grew {grown} KiB for one publication")
            finally:
                for s, _ in socks:
                    s.close()

if __name__ == "__main__":
    unittest.main()
