"""Tests of bench/stream-compare, bench/http-compare and their engine bench/comparelib.py.

The logic (interleaving, medians, ratio columns, skip reasons) is tested with made-up reports,
so every figure in a table is seen to come from a measurement; the --quick paths run end to
end against ringcast, a second ringcast started through the peer interface
(test_compare_peers/twin.py), a peer that fails to start (broken.py), and whichever real peers
are installed, and must leave no process behind, also when stopped by SIGTERM.
Run: /usr/bin/python3 -m unittest test_compare (from bench/; CTest does, label bench-smoke).
"""

import argparse
import importlib.machinery
import importlib.util
import json
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import benchlib  # noqa: E402
import comparelib as cl  # noqa: E402

FAKE_PEERS = HERE / "test_compare_peers"
REAL_PEERS = "floor_ws,uws,nchan,pushpin"


def load_script(name):
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"), str(HERE / name))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def report(us_per_op=None, per_second=1000.0, p50_ns=1e6, p99_ns=2e6, status="ok", lost=0,
           disturbed=False, late=0):
    """A ringcast-load report as far as the scripts read it."""
    return {"status": status, "per_second": per_second,
            "latency_ns": {"p50": p50_ns, "p99": p99_ns},
            "server": {"cpu_us_per_op": us_per_op, "ops_per_cpu_s": 1e6 / us_per_op,
                       "cores": 0.9, "busiest_thread_share": 0.9},
            "client": {"busiest_thread_share": 0.8},
            "errors": {"total": lost + late, "seq_missing": lost, "incomplete_missing": late},
            "machine": {"disturbed": disturbed}, "_disturbed": disturbed}


class FakeModule:
    def __init__(self, supports):
        self.SUPPORTS = set(supports)


def targets(spec):
    """[(name, supports or skip reason)] -> Targets."""
    out = []
    for name, what in spec:
        if isinstance(what, str):
            out.append(cl.Target(name, skip=what))
        else:
            out.append(cl.Target(name, module=FakeModule(what)))
    return out


def fake_args(**kw):
    a = argparse.Namespace(runs=3, machine="CPU, 2 cores, kernel K", command="bench/x --quick",
                           client_cpus="1", duration=1.0, warmup=0.3, window=32,
                           echo_connections=[100], subscribers=[100], subs=["ws"],
                           latency_subscribers=100)
    for k, v in kw.items():
        setattr(a, k, v)
    return a


class EngineTest(unittest.TestCase):
    def test_runs_are_interleaved(self):
        self.assertEqual(cl.interleaved(["a", "b", "c"], 2),
                         [(0, "a"), (0, "b"), (0, "c"), (1, "a"), (1, "b"), (1, "c")])
        calls = []
        results, failed = cl.run_interleaved(["a", "b"], 3, lambda n, i: calls.append((n, i)) or i)
        self.assertEqual(calls, [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)])
        self.assertEqual(results, {"a": [0, 1, 2], "b": [0, 1, 2]})
        self.assertEqual(failed, {})

    def test_a_failing_target_is_dropped_with_its_reason_and_the_others_go_on(self):
        calls = []

        def one(name, i):
            calls.append((name, i))
            if name == "b" and i == 1:
                raise cl.TargetFailed("server exited\nlog tail")
            return i

        results, failed = cl.run_interleaved(["a", "b", "c"], 3, one)
        self.assertEqual(failed, {"b": "server exited"})
        self.assertEqual(results["b"], [0])
        self.assertEqual(results["c"], [0, 1, 2])
        self.assertNotIn(("b", 2), calls)

    def test_medians_use_only_ok_runs(self):
        runs = [report(3.0, p99_ns=9e6), report(1.0, p99_ns=1e6), report(2.0, p99_ns=5e6),
                report(100.0, status="errors", lost=7), report(4.0, disturbed=True, lost=2)]
        s = cl.summarise(runs)
        self.assertEqual((s["runs"], s["ok_runs"], s["disturbed_runs"]), (5, 4, 1))
        self.assertEqual(s["server_us_per_op"], 2.5)  # median of 3, 1, 2, 4; not 100
        self.assertEqual(s["p99_us"], 3500.0)  # median of 9, 1, 5 and 2 ms, in µs
        self.assertEqual(s["lost"], 7)
        self.assertIsNone(cl.summarise([report(1.0, status="errors")])["server_us_per_op"])

    def test_ratio(self):
        self.assertEqual(cl.ratio(6.0, 4.0), 1.5)
        self.assertIsNone(cl.ratio(None, 4.0))
        self.assertIsNone(cl.ratio(1.0, None))
        self.assertIsNone(cl.ratio(1.0, 0))

    def test_skip_reasons(self):
        ts = targets([("a", {"echo"}), ("b", "nginx not found"), ("c", {"http"}),
                      ("d", {"echo"})])
        self.assertEqual(cl.skips_for(ts, "echo", {"d": "exited at start-up"}),
                         {"b": "nginx not found", "c": "does not serve echo",
                          "d": "exited at start-up"})

    def test_peer_modules_are_loaded_or_skipped_with_a_reason(self):
        with tempfile.TemporaryDirectory() as d:
            Path(d, "badpeer.py").write_text("raise ImportError('needs libfoo')\n")
            ts = cl.load_targets(["ringcast", "twin", "nosuchpeer", "badpeer"],
                                 cl.peer_dirs([str(FAKE_PEERS), d]))
        by = {t.name: t for t in ts}
        self.assertEqual([t.name for t in ts], ["ringcast", "twin", "nosuchpeer", "badpeer"])
        self.assertTrue(by["ringcast"].supports("echo") and by["twin"].supports("fanout-sse"))
        self.assertIn("no peer module nosuchpeer.py", by["nosuchpeer"].skip)
        self.assertIn("needs libfoo", by["badpeer"].skip)
        p = argparse.ArgumentParser(conflict_handler="resolve")
        cl.add_peer_options(p, ts)
        args = p.parse_args(["--twin-unavailable", "no twin today", "--shards", "2"])
        self.assertEqual(args.shards, 2)
        cl.check_available(ts, args)
        self.assertEqual(by["twin"].skip, "no twin today")
        self.assertIsNone(by["twin"].module)

    def test_peer_load_flags_are_listed_once_per_distinct_value(self):
        runs = {"nchan": [{"_peer_flags": ["--dialect", "nchan"]}] * 2,
                "pushpin": [{"_peer_flags": ["--dialect", "pushpin"]},
                            {"_peer_flags": ["--dialect", "pushpin", "--sse-x"]}],
                "ringcast": [{"_peer_flags": []}]}
        flags = cl.merge_peer_flags({}, runs)
        self.assertEqual(flags, {"nchan": ["--dialect nchan"],
                                 "pushpin": ["--dialect pushpin", "--dialect pushpin --sse-x"]})
        text = "\n".join(cl.footer({}, "M", "C", "L", flags=flags))
        self.assertIn("nchan's own load flags: `--dialect nchan`", text)
        self.assertNotIn("ringcast's own", text)

    def test_footer_names_machine_command_and_skips(self):
        machine = cl.machine_line()
        with open("/proc/sys/kernel/osrelease") as f:
            self.assertIn("kernel " + f.read().strip(), machine)
        self.assertRegex(machine, r", \d+ cores, ")
        lines = cl.footer({"uws": "--uws-src not given"}, machine, "bench/stream-compare --quick")
        text = "\n".join(lines)
        self.assertIn("uws skipped: --uws-src not given", text)
        self.assertIn("Machine: " + machine, text)
        self.assertIn("Command: `bench/stream-compare --quick`", text)
        long = "g++ " + "x.o " * 200
        text = "\n".join(cl.footer({"uws": long + "\nerror: ..."}, machine, "c"))
        self.assertIn("* uws skipped: g++ x.o", text)
        self.assertLess(max(len(l) for l in text.splitlines()), 330)


class TablesTest(unittest.TestCase):
    """The scripts' tables, from made-up measurements: every figure and ratio follows them."""

    def setUp(self):
        self.sc = load_script("stream-compare")
        self.hc = load_script("http-compare")
        self.order = []
        self.saved = cl.measure

    def tearDown(self):
        cl.measure = self.saved

    def fake_measure(self, per_target):
        def measure(args, target, mode, load_args, sub=None, extra=None, timing=True):
            self.order.append(target.name)
            return per_target[target.name].pop(0)
        cl.measure = measure

    def rows(self, out, first_cell):
        return [l.split(" | ") for l in out if l.startswith("| " + first_cell)]

    def test_echo_ratios_to_floor_ws_and_uws(self):
        self.fake_measure({"ringcast": [report(5.0), report(6.0), report(4.0, disturbed=True)],
                           "floor_ws": [report(4.0)] * 3,
                           "uws": [report(8.0), report(9.0), report(7.0)]})
        ts = targets([("ringcast", {"echo"}), ("floor_ws", {"echo"}), ("uws", {"echo"}),
                      ("nchan", {"fanout-ws"}), ("pushpin", "pushpin not installed")])
        out, results = [], {"tables": {}}
        self.sc.bench_echo(fake_args(), ts, results, out)
        self.assertEqual(self.order, ["ringcast", "floor_ws", "uws"] * 3)
        rows = {r[1]: r for r in self.rows(out, "100")}
        self.assertEqual(set(rows), {"ringcast", "floor_ws", "uws"})
        self.assertEqual(rows["ringcast"][5:8], ["5.000", "1.25×", "1.60×"])
        self.assertEqual(rows["floor_ws"][5:8], ["4.000", "1.00×", "2.00×"])
        self.assertEqual(rows["uws"][5:8], ["8.000", "2.00×", "1.00×"])
        self.assertEqual(rows["ringcast"][-1], "3/3 (1 disturbed) |")
        self.assertEqual(rows["uws"][-1], "3/3 |")
        text = "\n".join(out)
        self.assertIn("nchan skipped: does not serve echo", text)
        self.assertIn("pushpin skipped: pushpin not installed", text)

    def test_echo_without_uws_has_no_uws_ratio(self):
        self.fake_measure({"ringcast": [report(5.0)] * 3, "floor_ws": [report(4.0)] * 3})
        ts = targets([("ringcast", {"echo"}), ("floor_ws", {"echo"}),
                      ("uws", "--uws-src DIR not given")])
        out = []
        self.sc.bench_echo(fake_args(), ts, {"tables": {}}, out)
        rows = {r[1]: r for r in self.rows(out, "100")}
        self.assertEqual(rows["ringcast"][6:8], ["1.25×", "-"])
        self.assertIn("uws skipped: --uws-src DIR not given", "\n".join(out))

    def test_fanout_ratio_is_ringcast_over_each_peer_per_cpu_second(self):
        self.fake_measure({"ringcast": [report(0.5)] * 3, "nchan": [report(2.0)] * 3,
                           "pushpin": [report(1.0, lost=3, late=40)] * 3})
        ts = targets([("ringcast", {"fanout-ws"}), ("nchan", {"fanout-ws"}),
                      ("pushpin", {"fanout-ws"})])
        out = []
        self.sc.bench_fanout(fake_args(), ts, {"tables": {}}, out)
        rows = {r[2]: r for r in self.rows(out, "ws")}
        self.assertEqual(rows["ringcast"][7:9], ["2.00M", "1.00×"])
        self.assertEqual(rows["nchan"][7:9], ["500k", "4.00×"])
        self.assertEqual(rows["pushpin"][8], "2.00×")
        self.assertEqual(rows["pushpin"][11:13], ["3", "40"])  # lost, undelivered
        self.assertEqual(rows["nchan"][11:13], ["0", "0"])

    def test_latency_p99_over_the_best_peer(self):
        self.fake_measure({"ringcast": [report(1.0, p99_ns=3e6)] * 3,
                           "uws": [report(1.0, p99_ns=2e6)] * 3})
        ts = targets([("ringcast", {"fanout-ws"}), ("uws", {"fanout-ws"})])
        out = []
        self.sc.bench_latency(fake_args(), ts, {"tables": {}}, out)
        rows = {r[1]: r for r in self.rows(out, "ws")}
        self.assertEqual(rows["ringcast"][5:7], ["3,000", "1.50×"])
        self.assertEqual(rows["uws"][5:7], ["2,000", "1.00×"])
        self.assertIn("publisher paced at 500 publications/s", "\n".join(out))

    def test_deflate_compares_each_peer_on_with_off(self):
        def r(us, wire, payload=1000.0, lost=0):
            x = report(us, lost=lost)
            x["client"].update({"ws_messages_in": 100, "ws_wire_bytes_in": wire * 100,
                                "ws_payload_bytes_in": payload * 100})
            return x
        self.fake_measure({"ringcast": [r(2.0, 1004), r(3.0, 250), r(2.0, 1004), r(3.0, 250)],
                           "uws": [r(1.0, 1004), r(4.0, 300, 990, lost=2), r(1.0, 1004),
                                   r(4.0, 300, 990)]})
        ts = targets([("ringcast", {"fanout-deflate"}), ("uws", {"fanout-deflate"}),
                      ("nchan", {"fanout-ws"})])
        out, results = [], {"tables": {}}
        self.sc.bench_deflate(fake_args(runs=2, deflate_payloads=[1000],
                                        deflate_subscribers=[100]), ts, results, out)
        self.assertEqual(self.order, ["ringcast", "ringcast", "uws", "uws"] * 2)
        rows = {(x[2], x[3]): x for x in self.rows(out, "1,000")}
        self.assertEqual(set(rows), {("ringcast", "off"), ("ringcast", "on"), ("uws", "off"),
                                     ("uws", "on")})
        # server µs, µs on ÷ off, wire B/msg, wire on ÷ off, payload B/msg, lossless
        self.assertEqual(rows[("ringcast", "on")][6:12],
                         ["3.000", "1.50×", "250", "0.25×", "1,000", "yes"])
        self.assertEqual(rows[("ringcast", "off")][6:12],
                         ["2.000", "1.00×", "1,004", "1.00×", "1,000", "yes"])
        self.assertEqual(rows[("uws", "on")][6:10], ["4.000", "4.00×", "300", "0.30×"])
        self.assertEqual(rows[("uws", "on")][11], "no")  # it lost deliveries
        self.assertIn("deflate_1000_100", results["tables"])
        self.assertIn("nchan skipped: does not serve fanout-deflate", "\n".join(out))
        self.assertIn("--payload-fill tokens", "\n".join(out))

    def test_lossless_needs_the_same_payload_as_without_compression(self):
        m = {"lost": 0, "undelivered": 0, "errors": 0, "payload_bytes_per_message": 900.0}
        self.assertEqual(self.sc.lossless(m, {"payload_bytes_per_message": 1000.0}),
                         "no (payload 900 B vs 1000 B)")
        self.assertEqual(self.sc.lossless(m, {"payload_bytes_per_message": 905.0}), "yes")
        self.assertEqual(self.sc.lossless(dict(m, errors=1), m), "no")

    def test_http_ratios_to_floor_and_nginx(self):
        self.fake_measure({"ringcast": [report(5.0)] * 3, "nginx": [report(10.0)] * 3,
                           "floor": [report(4.0), report(4.0), report(4.0, status="errors")]})
        ts = targets([("ringcast", {"http"}), ("nginx", {"http"}), ("floor", {"http"}),
                      ("uws", {"echo"})])
        sc = {"key": "ka50", "title": "keep-alive, 50 connections", "connections": 50,
              "pipeline": 1}
        out = []
        self.hc.bench_scenario(fake_args(), ts, sc, {"tables": {}}, out)
        rows = {r[0][2:]: r for r in (l.split(" | ") for l in out if l.startswith("| "))}
        self.assertEqual(rows["ringcast"][4:7], ["5.00", "1.25×", "2.00×"])
        self.assertEqual(rows["nginx"][4:7], ["10.00", "2.50×", "1.00×"])
        self.assertEqual(rows["floor"][-1], "2/3 |")
        self.assertIn("uws skipped: does not serve http", "\n".join(out))


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def run_pids(tables):
    return {pid for table in tables.values() for entry in table.values()
            for r in entry["runs"] for pid in r.get("server", {}).get("pids", [])}


class QuickRunTest(unittest.TestCase):
    """The --quick paths end to end: tables from live peers, and nothing left running."""

    def run_script(self, script, *argv):
        with tempfile.TemporaryDirectory() as d:
            out = Path(d, "r.json")
            p = subprocess.run([sys.executable, str(HERE / script), "--quick", "--json", str(out),
                                "--peers-dir", str(FAKE_PEERS), *argv],
                               capture_output=True, text=True, timeout=240)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            return p.stdout, p.stderr, json.loads(out.read_text())

    def test_stream_compare_runs_interleaved_and_drops_a_peer_that_fails(self):
        text, err, res = self.run_script("stream-compare", "--only", "echo", "--runs", "2",
                                         "--targets", "ringcast,twin,broken")
        runs = [tuple(l.strip().lstrip("[").split("/2] ")) for l in err.splitlines()
                if l.startswith("  [")]
        self.assertEqual(runs, [("1", "ringcast"), ("1", "twin"), ("1", "broken"),
                                ("2", "ringcast"), ("2", "twin")])
        for name in ("ringcast", "twin"):
            m = res["tables"]["echo_100"][name]["median"]
            self.assertGreater(m["server_us_per_op"], 0)
            self.assertEqual((m["runs"], m["ok_runs"]), (2, 2))
        self.assertIsNone(res["tables"]["echo_100"]["broken"]["median"])
        self.assertRegex(text, r"\| 100 \| ringcast \| .* \| 2/2( \(\d disturbed\))? \|")
        self.assertIn("broken skipped: RuntimeError: broken peer: server exited", text)
        pids = run_pids(res["tables"])
        self.assertEqual(len(pids), 4)
        self.assertEqual([p for p in pids if alive(p)], [])

    def test_stream_compare_quick_with_the_installed_peers(self):
        text, _, res = self.run_script("stream-compare", "--only", "echo,fanout,rss",
                                       "--targets", "ringcast," + REAL_PEERS)
        for key in ("echo_100", "fanout_ws_100", "fanout_sse_100"):
            m = res["tables"][key]["ringcast"]["median"]
            self.assertGreater(m["server_us_per_op"], 0, key)
        self.assertGreater(res["tables"]["rss_ws-idle"]["ringcast"]["median"]
                           ["rss_per_connection"], 0)
        self.assertGreater(res["tables"]["rss_ws-chat"]["ringcast"]["median"]
                           ["rss_per_stream"], 0)
        for name in REAL_PEERS.split(","):  # measured, or skipped with the reason printed
            measured = [k for k, t in res["tables"].items() if (t.get(name) or {}).get("median")]
            self.assertTrue(measured or ("* %s skipped: " % name) in text, name)
        self.assertEqual(text.count("* Machine: "), 3)
        self.assertEqual(text.count("* Command: `bench/stream-compare --quick"), 3)
        pids = run_pids(res["tables"])
        self.assertGreaterEqual(len(pids), 5)
        self.assertEqual([p for p in pids if alive(p)], [])

    def test_stream_compare_quick_deflate_section(self):
        # ringcast and its twin, and uWS when a checkout is given (RINGCAST_UWS_SRC).
        text, _, res = self.run_script("stream-compare", "--only", "deflate",
                                       "--targets", "ringcast,twin,uws")
        table = res["tables"]["deflate_1000_100"]
        for name in ("ringcast", "twin") + (("uws",) if "* uws skipped: " not in text else ()):
            off, on = table[name + " off"]["median"], table[name + " on"]["median"]
            for m in (off, on):
                self.assertGreater(m["server_us_per_op"], 0, name)
                self.assertEqual((m["lost"], m["undelivered"], m["errors"]), (0, 0, 0), name)
            # Compressed on the wire, the same payload after inflating: lossless.
            self.assertLess(on["wire_bytes_per_message"], off["wire_bytes_per_message"] / 2, name)
            self.assertAlmostEqual(on["payload_bytes_per_message"],
                                   off["payload_bytes_per_message"],
                                   delta=0.01 * off["payload_bytes_per_message"])
            self.assertGreater(off["payload_bytes_per_message"], 1000)
            self.assertRegex(text, r"\| 1,000 \| 100 \| %s \| on \| .* \| yes \|" % name)
        self.assertEqual(text.count("* Command: `bench/stream-compare --quick"), 1)
        pids = run_pids(res["tables"])
        self.assertGreaterEqual(len(pids), 4)
        self.assertEqual([p for p in pids if alive(p)], [])

    def test_http_compare_quick(self):
        text, _, res = self.run_script("http-compare", "--pipeline-depth", "16",
                                       "--targets", "ringcast,floor,nginx,twin")
        for key in ("ka50", "pipe16"):
            for name, entry in res["tables"][key].items():
                self.assertIsNotNone(entry["median"], (key, name, entry))
        self.assertEqual(res["tables"]["ka50"]["floor"]["median"]["runs"], 1)
        self.assertIn("| floor |", text)
        self.assertRegex(text, r"\| ringcast \| [\d,]+ \| .* \| \d+\.\d\d× \|")
        self.assertEqual(text.count("* Command: `bench/http-compare --quick"), 2)
        pids = run_pids(res["tables"])
        self.assertTrue(pids)
        self.assertEqual([p for p in pids if alive(p)], [])

    def test_sigterm_leaves_no_peer_running(self):
        p = subprocess.Popen([sys.executable, str(HERE / "stream-compare"), "--only", "echo",
                              "--targets", "ringcast,twin", "--peers-dir", str(FAKE_PEERS),
                              "--runs", "3", "--duration", "20", "--warmup", "0"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            seen, deadline = set(), time.monotonic() + 60
            while time.monotonic() < deadline and len(seen) < 2:
                seen |= {q for q in benchlib.descendants(p.pid) if q != p.pid}
                time.sleep(0.2)  # the peer and ringcast-load
            self.assertGreaterEqual(len(seen), 2)
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(60), 128 + signal.SIGTERM)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(q) for q in seen):
            time.sleep(0.1)
        self.assertEqual([q for q in seen if alive(q)], [])


if __name__ == "__main__":
    unittest.main()
