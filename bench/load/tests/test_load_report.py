"""ringcast-load's JSON report against a real ringcast: the "histograms" and "timeline" sections
(docs/budgets.md, "ringcast-load's JSON"), --timeline-ms, and the open-loop modes' freedom from
coordinated omission.

Every test method is its own CTest test (bench/CMakeLists.txt). RINGCAST_BIN and
RINGCAST_LOAD_BIN name the binaries. Nothing here asserts speed: the coordinated-omission tests
stop the load generator itself (SIGSTOP) for a second and check that the requests due meanwhile
count that second, which holds however slow the machine is.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import loadlib  # noqa: E402

HIST_NAMES = {"latency", "ttft_overhead", "token_gap", "token_jitter", "enqueue_admitted",
              "enqueue_rejected", "to_processing", "to_done"}
CHAT_SERVER = ["--mock-first-token-ms", "2", "--mock-tokens-per-s", "200"]
CHAT_LOAD = ["--max-tokens", "4", "--first-token-ms", "2", "--tokens-per-s", "200"]


class ReportChecks(unittest.TestCase):
    def check_histograms(self, report, expected):
        hists = report["histograms"]
        self.assertEqual(set(hists), set(expected))
        self.assertLessEqual(set(hists), HIST_NAMES)
        for name, h in hists.items():
            self.assertEqual(h["unit"], "ns", name)
            self.assertGreater(h["count"], 0, name)
            values = [b[0] for b in h["buckets"]]
            self.assertEqual(values, sorted(set(values)), f"{name}: buckets ascending, distinct")
            self.assertTrue(all(b[1] > 0 for b in h["buckets"]), f"{name}: no empty bucket")
            self.assertEqual(sum(b[1] for b in h["buckets"]), h["count"], name)
        self.assertEqual(hists["latency"]["count"], report["count"])
        self.assertEqual(hists["latency"]["count"], report["latency_ns"]["count"])

    def check_timeline(self, report, interval_ms, duration_s, server):
        t = report["timeline"]
        self.assertEqual(t["interval_ms"], interval_ms)
        points = t["points"]
        intervals = -(-round(duration_s * 1000) // interval_ms)
        self.assertEqual(len(points), intervals)
        ends = [p["t_s"] for p in points]
        self.assertEqual(ends, sorted(ends))
        self.assertAlmostEqual(ends[0], interval_ms / 1000)
        self.assertAlmostEqual(ends[-1], duration_s)
        self.assertEqual(sum(p["ops"] for p in points), report["count"])
        self.assertEqual(sum(p["errors"] for p in points), 0)
        hists = report["histograms"]
        for name in hists:
            self.assertEqual(
                sum(p["latencies"].get(name, {"count": 0})["count"] for p in points),
                hists[name]["count"], f"{name}: the timeline's samples are the window's")
        top = max(b[0] for b in hists["latency"]["buckets"])
        for p in points:
            self.assertEqual(set(p), {"t_s", "ops", "ops_per_s", "errors", "server_cpu_cores",
                                      "server_rss_bytes", "latencies"})
            self.assertLessEqual(set(p["latencies"]), set(hists))
            for name, l in p["latencies"].items():
                self.assertGreater(l["count"], 0)
                self.assertLessEqual(l["p50"], l["p99"])
                self.assertLessEqual(l["p99"], l["max"])
            if "latency" in p["latencies"]:
                self.assertLessEqual(p["latencies"]["latency"]["max"], top)
            if server:
                self.assertIsInstance(p["server_cpu_cores"], float)
                self.assertGreaterEqual(p["server_cpu_cores"], 0)
                self.assertGreater(p["server_rss_bytes"], 0)
            else:
                self.assertIsNone(p["server_cpu_cores"])
                self.assertIsNone(p["server_rss_bytes"])
        # ops_per_s is ops over the interval's own length (the last may be shorter).
        previous = 0.0
        for p in points:
            length = p["t_s"] - previous
            previous = p["t_s"]
            self.assertAlmostEqual(p["ops_per_s"], p["ops"] / length,
                                   delta=1e-6 * p["ops_per_s"] + 1e-9)


class HistogramsAndTimeline(ReportChecks):
    def test_http_with_server_figures(self):
        with loadlib.Server() as server:
            report = loadlib.run_load("http", server.target, "-c", "2", "--duration", "1",
                                      "--warmup", "0.2", "--timeline-ms", "250", "-q",
                                      server_pid=server.pid, timeout=120)
        self.check_histograms(report, {"latency"})
        self.check_timeline(report, 250, 1.0, server=True)

    def test_last_interval_is_shorter_and_no_server_without_pid(self):
        with loadlib.Server("--echo") as server:
            report = loadlib.run_load("ws-echo", server.target, "-c", "2", "--duration", "0.5",
                                      "--warmup", "0.2", "--timeline-ms", "200", "-q",
                                      timeout=120)
        self.check_histograms(report, {"latency"})
        self.check_timeline(report, 200, 0.5, server=False)
        self.assertAlmostEqual(report["timeline"]["points"][-1]["t_s"], 0.5)

    def test_chat_histograms(self):
        with loadlib.Server(*CHAT_SERVER) as server:
            report = loadlib.run_load("sse-chat", server.target, "-c", "4", "--duration", "1",
                                      "--warmup", "0.2", "-q", *CHAT_LOAD, timeout=120)
        self.check_histograms(report, {"latency", "ttft_overhead", "token_gap", "token_jitter"})
        self.check_timeline(report, 1000, 1.0, server=False)
        # The same samples as the streams section's summaries.
        s = report["streams"]
        self.assertEqual(report["histograms"]["ttft_overhead"]["count"],
                         s["ttft_overhead_ns"]["count"])
        self.assertEqual(report["histograms"]["token_gap"]["count"], s["token_gap_ns"]["count"])

    def test_broker_histograms(self):
        with loadlib.Server() as server:
            report = loadlib.run_load("broker", server.target, "-c", "2", "--rate", "200",
                                      "--users", "20", "--max-tokens", "2", "--duration", "1",
                                      "--warmup", "0.2", "--timeline-ms", "500", "-q",
                                      timeout=120)
        self.check_histograms(report, {"latency", "enqueue_admitted", "to_processing", "to_done"})
        self.check_timeline(report, 500, 1.0, server=False)
        self.assertEqual(report["histograms"]["enqueue_admitted"]["count"],
                         report["streams"]["admitted"])


class TimelineOption(unittest.TestCase):
    def run_bad(self, *args):
        proc = subprocess.run([loadlib.load_bin(), "http", "--target", "127.0.0.1:9", *args],
                              capture_output=True, text=True, timeout=60)
        self.assertNotEqual(proc.returncode, 0)
        return proc.stderr + proc.stdout

    def test_interval_out_of_range(self):
        for value in ("99", "10001", "x"):
            self.assertIn("--timeline-ms", self.run_bad("--timeline-ms", value))

    def test_too_many_intervals(self):
        out = self.run_bad("--duration", "20000", "--timeline-ms", "100")
        self.assertIn("--timeline-ms", out)
        self.assertIn("100000", out)


class CoordinatedOmission(unittest.TestCase):
    """An open loop's latency counts from when each request was due. Stopping ringcast-load for
    STALL_S leaves the requests due meanwhile unsent; sent on waking, they must still count the
    wait. Measured from the moment they were written, only the few already in flight when it
    stopped would be slow."""

    STALL_S = 1.0
    RATE = 200

    @staticmethod
    def requests_answered(port):
        """The server's answered POSTs (every shard's series; none pre-summed)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            text = r.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith("ringcast_requests_total{") and 'shard="all"' not in line \
                    and "/healthz" not in line and "/metrics" not in line:
                total += float(line.rsplit(" ", 1)[1])
        return total

    def wait_for_load(self, port, proc):
        """Until the server has answered a few of the load's requests: the load is running."""
        deadline = time.monotonic() + 60
        while self.requests_answered(port) < 5:
            self.assertIsNone(proc.poll(), "ringcast-load ended early")
            self.assertLess(time.monotonic(), deadline, "the load never started")
            time.sleep(0.05)

    def run_stalled(self, mode, target, *args):
        port = int(target.rsplit(":", 1)[1])
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "report.json")
            cmd = [loadlib.load_bin(), mode, "--target", target, "--json", out, "-q",
                   "--rate", str(self.RATE), "--warmup", "0.5", "--duration", "5", *args]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True)
            try:
                self.wait_for_load(port, proc)
                time.sleep(0.8)  # inside the window (opens 0.5 s after the load starts)
                proc.send_signal(signal.SIGSTOP)
                time.sleep(self.STALL_S)
                proc.send_signal(signal.SIGCONT)
                output, _ = proc.communicate(timeout=120)
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGCONT)
                    proc.kill()
                    proc.wait(10)
            self.assertEqual(proc.returncode, 0, output)
            with open(out, encoding="utf-8") as f:
                return json.load(f)

    def slow_samples(self, report, name):
        """Samples of at least half the stall."""
        return sum(c for v, c in report["histograms"][name]["buckets"]
                   if v >= self.STALL_S / 2 * 1e9)

    def test_broker_counts_from_the_schedule(self):
        with loadlib.Server() as server:
            report = self.run_stalled("broker", server.target, "-c", "2", "--users", "20",
                                      "--max-tokens", "2", "--stream-fraction", "0")
        # Requests due in the first half of the stall waited at least half of it.
        due = self.RATE * self.STALL_S / 2
        self.assertGreaterEqual(self.slow_samples(report, "latency"), due * 0.5,
                                report["latency_ns"])
        self.assertGreaterEqual(self.slow_samples(report, "enqueue_admitted"), due * 0.5)
        self.assertGreaterEqual(report["latency_ns"]["max"], self.STALL_S * 0.8e9)

    def test_fanout_counts_from_the_schedule(self):
        subscribers = 2
        with loadlib.Server() as server:
            report = self.run_stalled("fanout", server.target, "-c", str(subscribers))
        due = self.RATE * self.STALL_S / 2 * subscribers
        self.assertGreaterEqual(self.slow_samples(report, "latency"), due * 0.5,
                                report["latency_ns"])
        self.assertGreaterEqual(report["latency_ns"]["max"], self.STALL_S * 0.8e9)


if __name__ == "__main__":
    unittest.main()
