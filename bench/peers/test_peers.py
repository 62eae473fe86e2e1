"""The nchan, pushpin and floor_ws peers started through their modules and loaded by the real
ringcast-load: fan-out over WebSocket and SSE (100 subscribers, an HTTP publisher, --dialect
from the peer) with no loss, and ws-echo against floor_ws; every process gone afterwards. Also
ringcast-load's refusals of dialects where they make no sense, and the GRIP origin's event
parsing.

Every test method is its own CTest test (bench/CMakeLists.txt, label bench-smoke), run as
`test_peers.py Class.method`: a peer that is not installed (nginx with nchan, pushpin, a C
compiler and floor_ws.c) makes the test exit with SKIP_STATUS, which CTest reports as skipped
with the reason. Installed, the test runs and can fail. RINGCAST_LOAD_BIN names ringcast-load.
Nothing here asserts speed; the publication rates are low and every deadline generous.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))

import floor_ws  # noqa: E402
import grip_backend  # noqa: E402
import loadlib  # noqa: E402
import nchan  # noqa: E402
import peerproc  # noqa: E402
import pushpin  # noqa: E402

SKIP_STATUS = 77
SUBSCRIBERS = 100
# Low enough for pushpin on a loaded machine (~60 server-µs per delivery there); the warm-up
# covers pushpin's WebSocket subscription, which completes just after the 101 (see
# bench/load/fanout_dialect.h).
FANOUT = ["--rate", "20", "--duration", "1", "--warmup", "1.5", "--ready-timeout-ms", "120000",
          "--connect-timeout-ms", "30000"]
DRAIN = ["--drain-ms", "20000"]  # unless the peer asks for its own


def cpu_split():
    """(peer CPUs, client CPUs): the first allowed CPU for the peer, the rest for the client."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) == 1:
        return str(cpus[0]), str(cpus[0])
    return str(cpus[0]), ",".join(str(c) for c in cpus[1:])


def peer_args(module):
    p = argparse.ArgumentParser()
    module.add_options(p)
    return p.parse_args([])


class PeerTest(unittest.TestCase):
    module = None

    def setUp(self):
        self.args = peer_args(self.module)
        reason = self.module.available(self.args)
        if reason:
            self.skipTest("%s: %s" % (self.module.NAME, reason))
        self.tmp = tempfile.TemporaryDirectory(prefix="ringcast-peer-test-")
        self.addCleanup(self.tmp.cleanup)
        self.peer_cpus, self.client_cpus = cpu_split()

    def run_load(self, peer, mode, *flags):
        sub = None
        if "--sub" in flags:
            sub = flags[flags.index("--sub") + 1]
        own = peer.load_flags(mode, sub)
        args = list(flags) + own + ["--cpus", self.client_cpus.split(",")[0]]
        if "--drain-ms" not in own:
            args += DRAIN
        if peer.pub_target:
            args += ["--pub-target", peer.pub_target]
        for pid in peer.pids:
            args += ["--server-pid", pid]
        try:
            return loadlib.run_load(mode, peer.target, *args, timeout=240)
        except loadlib.LoadError as e:
            self.fail("%s\n--- peer logs ---\n%s" % (e, peer.log_tails()))

    def check_ok(self, report):
        self.assertEqual(report["status"], "ok", report["_text"])
        self.assertEqual(report["errors"]["total"], 0, report["_text"])
        self.assertGreater(report["count"], 0, report["_text"])
        self.assertIsNotNone(report["server"], "server CPU not measured")
        self.assertGreater(report["server"]["cpu_s"], 0, report["_text"])

    def check_gone(self, pids):
        left = [p for p in pids if peerproc.start_time(p) is not None]
        self.assertEqual(left, [], "processes left behind")

    def fanout(self, sub):
        with self.module.start(self.args, self.tmp.name, self.peer_cpus) as peer:
            pids = list(peer.pids) + list(peer.aux_pids)
            for pid in list(pids):
                pids += peerproc.descendants(pid)
            self.assertTrue(peer.pids, "no server pids")
            report = self.run_load(peer, "fanout", "-c", str(SUBSCRIBERS), "--sub", sub,
                                   "--pub", "http", *FANOUT)
        self.check_gone(pids)
        self.check_ok(report)
        self.assertEqual(report["dialect"], self.module.NAME, report["_text"])
        self.assertEqual(report["ready"], SUBSCRIBERS + 1)
        self.assertGreater(report["published"], 0)
        self.assertEqual(report["publish_acked"], report["published"])
        # Every subscriber got every publication of the whole run (checked by sequence; here
        # as a count): nothing lost, nothing repeated.
        self.assertEqual(report["count_whole_run"], report["published"] * SUBSCRIBERS,
                         report["_text"])


class Nchan(PeerTest):
    module = nchan

    def test_fanout_ws(self):
        self.fanout("ws")

    def test_fanout_sse(self):
        self.fanout("sse")


class Pushpin(PeerTest):
    module = pushpin

    def test_fanout_ws(self):
        self.fanout("ws")

    def test_fanout_sse(self):
        self.fanout("sse")

    def test_runs_as_several_processes_all_pinned_and_measured(self):
        with self.module.start(self.args, self.tmp.name, self.peer_cpus) as peer:
            names = set()
            for pid in peer.pids:
                with open("/proc/%d/comm" % pid) as f:
                    names.add(f.read().strip())
                allowed = os.sched_getaffinity(pid)
                self.assertEqual(allowed, {int(self.peer_cpus)}, "pid %d not pinned" % pid)
            self.assertLessEqual({"condure", "zurl", "pushpin-proxy", "pushpin-handler"}, names)
            self.assertEqual(len(peer.aux_pids), 1)  # the GRIP origin, not the server's CPU
            self.assertNotIn(peer.aux_pids[0], peer.pids)
            self.assertTrue(peer.pub_target and peer.pub_target != peer.target)
            pids = list(peer.pids) + list(peer.aux_pids)
        self.check_gone(pids)


class FloorWs(PeerTest):
    module = floor_ws

    def test_ws_echo(self):
        with self.module.start(self.args, self.tmp.name, self.peer_cpus) as peer:
            pids = list(peer.pids)
            report = self.run_load(peer, "ws-echo", "-c", "50", "--duration", "1",
                                   "--warmup", "0.5", "--ready-timeout-ms", "60000")
        self.check_gone(pids)
        self.check_ok(report)


class Dialects(unittest.TestCase):
    """ringcast-load refuses dialect settings that make no sense (a non-zero exit and the
    reason), before connecting anywhere."""

    def refused(self, *args):
        r = subprocess.run([loadlib.load_bin()] + list(args), capture_output=True, text=True,
                           timeout=60)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stderr

    def test_self_numbered_dialects_publish_over_http_only(self):
        err = self.refused("fanout", "--dialect", "pushpin", "--pub", "ws")
        self.assertIn("--pub http", err)

    def test_nchan_dialect_is_for_fanout_only(self):
        self.assertIn("fanout only", self.refused("ws-echo", "--dialect", "nchan"))

    def test_unknown_dialect(self):
        self.assertIn("--dialect", self.refused("fanout", "--dialect", "centrifugo"))


class GripEvents(unittest.TestCase):
    """The origin's WebSocket-over-HTTP event parsing and formatting."""

    def test_parses_events_with_and_without_content(self):
        body = b"OPEN\r\nTEXT 5\r\nhello\r\nCLOSE 2\r\n\x03\xe8\r\n"
        self.assertEqual(grip_backend.parse_events(body),
                         [("OPEN", b""), ("TEXT", b"hello"), ("CLOSE", b"\x03\xe8")])

    def test_truncated_event_is_refused(self):
        with self.assertRaises(ValueError):
            grip_backend.parse_events(b"TEXT 5\r\nhel")
        with self.assertRaises(ValueError):
            grip_backend.parse_events(b"OPEN")

    def test_formats_events(self):
        self.assertEqual(grip_backend.event("OPEN"), b"OPEN\r\n")
        self.assertEqual(grip_backend.event("TEXT", b"c:{}" * 4), b"TEXT 10\r\n" + b"c:{}" * 4
                         + b"\r\n")


def main(argv):
    """Runs the named tests (Class.method); exits SKIP_STATUS if all of them were skipped."""
    module = sys.modules[__name__]
    loader = unittest.defaultTestLoader
    suite = (loader.loadTestsFromNames(argv, module) if argv
             else loader.loadTestsFromModule(module))
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    if not result.wasSuccessful():
        return 1
    if result.testsRun > 0 and len(result.skipped) == result.testsRun:
        for _, reason in result.skipped:
            print("SKIPPED: %s" % reason)
        return SKIP_STATUS
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
