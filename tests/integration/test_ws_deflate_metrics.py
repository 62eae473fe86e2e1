"""permessage-deflate counters on /metrics (the ringcast_ws_deflate_* families): messages and
bytes each way, compress-once fan-out hits, contexts held and refused, and the inflate errors
closed 1009/1007. Raw sockets, so the test knows each compressed byte on the wire."""

import json
import time
import unittest

from harness import Server, metric_sum, metrics, ws_frame, ws_handshake
from test_ws_deflate import close_code, deflate, inflate, post, read_message, ws_subscribe

OFFER = {"Sec-WebSocket-Extensions": "permessage-deflate"}
OFFER_ALONE = {"Sec-WebSocket-Extensions": "permessage-deflate; server_no_context_takeover"}


def deflate_figures(port):
    m = metrics(port)

    def get(name, **labels):
        v = metric_sum(m, "ringcast_ws_deflate_" + name, **labels)
        assert v is not None, name + str(labels)
        return v
    return {
        "compressed": get("messages_total", direction="compress"),
        "decompressed": get("messages_total", direction="decompress"),
        "compress_in": get("uncompressed_bytes_total", direction="compress"),
        "compress_out": get("compressed_bytes_total", direction="compress"),
        "decompress_in": get("compressed_bytes_total", direction="decompress"),
        "decompress_out": get("uncompressed_bytes_total", direction="decompress"),
        "fanout_compressed": get("fanout_deliveries_total", result="compressed"),
        "fanout_shared": get("fanout_deliveries_total", result="shared"),
        "contexts": get("contexts"),
        "refused": get("contexts_refused_total"),
        "e1009": get("inflate_errors_total", code="1009"),
        "e1007": get("inflate_errors_total", code="1007"),
    }


def delta(before, after):
    return {k: after[k] - before[k] for k in after}


class DeflateMetrics(unittest.TestCase):
    def test_counters_follow_the_wire(self):
        flags = ("--echo", "--ws-deflate", "--ws-deflate-contexts-max", "1",
                 "--ws-deflate-min-bytes", "100", "--ws-message-bytes-max", "65536")
        with Server(*flags) as srv:
            start = deflate_figures(srv.port)
            self.assertEqual(set(start.values()), {0})  # every series there from the start
            # A connection that keeps its context: one compressed message in, its echo out.
            keep, keep_r, _ = ws_handshake(srv.port, "/echo", OFFER)
            msg = json.dumps({"words": [f"w{i * 7919 % 1009}" for i in range(300)]}).encode()
            z = deflate(msg)
            keep.sendall(ws_frame(0x1, z, rsv=4))
            opcode, rsv1, _, payload = read_message(keep_r)
            self.assertTrue(rsv1)
            self.assertEqual(inflate(payload), msg)
            d = delta(start, deflate_figures(srv.port))
            self.assertEqual((d["decompressed"], d["decompress_in"], d["decompress_out"]),
                             (1, len(z), len(msg)))
            self.assertEqual((d["compressed"], d["compress_in"], d["compress_out"]),
                             (1, len(msg), len(payload)))
            self.assertEqual((d["contexts"], d["refused"]), (1, 0))
            # The cap (1) is reached: a client asking to keep a context is refused; one that
            # asks for none is not counted.
            subs = []
            for offer in (OFFER, OFFER_ALONE):
                s, r, resp = ws_handshake(srv.port, "/ws", offer)
                self.assertIn("server_no_context_takeover", resp.header("sec-websocket-extensions"))
                subs.append((s, r))
            before = deflate_figures(srv.port)
            self.assertEqual((before["refused"], before["contexts"]), (1, 1))
            # Fan-out to two subscribers without context: compressed once, shared once.
            for i, (s, r) in enumerate(subs):
                ws_subscribe(s, r, f"s{i}", "m")
                self.assertEqual(json.loads(read_message(r)[3])["event"], "subscribed")
            event = {"text": "lorem ipsum dolor sit amet " * 20}
            self.assertEqual(post(srv.port, "/v1/topics/m", event).status, 200)
            for i, (s, r) in enumerate(subs):
                opcode, rsv1, _, payload = read_message(r)
                self.assertTrue(rsv1)
                self.assertEqual(json.loads(inflate(payload))["data"]["data"], event)
            d = delta(before, deflate_figures(srv.port))
            self.assertEqual((d["fanout_compressed"], d["fanout_shared"], d["compressed"]),
                             (1, 1, 1))
            self.assertGreater(d["compress_in"], len(json.dumps(event)) - 1)
            self.assertLess(d["compress_out"], d["compress_in"] / 4)
            # Inflate errors, by the close code sent.
            before = deflate_figures(srv.port)
            for wire, code in [(ws_frame(0x2, deflate(b"\0" * (1 << 20), 9), rsv=4), 1009),
                               (ws_frame(0x1, b"\xff\xff\xff\xff not deflate", rsv=4), 1007)]:
                s, r, _ = ws_handshake(srv.port, "/echo", OFFER_ALONE)
                s.sendall(wire)
                self.assertEqual(close_code(r), code)
                s.close()
            d = delta(before, deflate_figures(srv.port))
            self.assertEqual((d["e1009"], d["e1007"], d["decompressed"]), (1, 1, 0))
            # The context is given back when its connection ends.
            keep.close()
            for s, _ in subs:
                s.close()
            deadline = time.monotonic() + 10
            while deflate_figures(srv.port)["contexts"] != 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual(deflate_figures(srv.port)["contexts"], 0)


if __name__ == "__main__":
    unittest.main()
