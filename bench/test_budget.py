"""Unit tests of bench/budgetlib.py (the pure parts of bench/budget): scenario parsing and its
errors, profiles, budget evaluation, percentiles from ringcast-load's histogram buckets, and the
.hgrm text against a distribution computed by hand.

Run: cd bench && /usr/bin/python3 -m unittest test_budget   (CTest: bench.budget_unit)
"""

import glob
import os
import unittest

import budgetlib

HERE = os.path.dirname(os.path.abspath(__file__))

MINIMAL = """
[load]
mode = "http"
"""

FULL = """
name = "echo-test"
description = "ws echo"

[server]
flags = ["--echo"]
shards = 1
cpus = "0"

[load]
mode = "ws-echo"
connections = 100
duration_s = 10
args = ["--message-bytes", "20"]

[budgets]
throughput_min = 20000
server_cpu_us_per_op_max = 20
latency = { p50 = "150us", p99 = "1ms", "p99.9" = "2.5 ms", max = "1s" }

[ci.load]
connections = 4
duration_s = 1

[ci.budgets]
throughput_min = 10
latency = { p99 = "500ms" }
"""


def parse(text, profile=None):
    return budgetlib.parse_scenario(text, "bench/scenarios/t.toml", profile)


def budget(scenario, name):
    return next(b for b in scenario["budgets"] if b["name"] == name)


class ParseTest(unittest.TestCase):
    def test_minimal_scenario_takes_its_name_from_the_file_and_gets_zero_error_budgets(self):
        s = parse(MINIMAL)
        self.assertEqual(s["name"], "t")
        self.assertEqual(s["load"], {"mode": "http"})
        self.assertIsNone(s["upstream"])
        self.assertEqual({b["name"]: b["limit"] for b in s["budgets"]},
                         {"error_rate_max": 0.0, "loss_rate_max": 0.0})

    def test_full_scenario(self):
        s = parse(FULL)
        self.assertEqual(s["name"], "echo-test")
        self.assertEqual(s["profiles"], ["ci"])
        self.assertEqual(s["load"]["connections"], 100)
        self.assertEqual(budget(s, "latency.p50")["limit"], 150e3)
        self.assertEqual(budget(s, "latency.p99")["limit"], 1e6)
        self.assertEqual(budget(s, "latency.p99.9")["limit"], 2.5e6)
        self.assertEqual(budget(s, "latency.p99.9")["percentile"], 99.9)
        self.assertEqual(budget(s, "latency.max")["percentile"], 100.0)
        self.assertEqual(budget(s, "throughput_min")["limit"], 20000)

    def test_profile_merges_over_the_base(self):
        s = parse(FULL, "ci")
        self.assertEqual(s["load"]["connections"], 4)
        self.assertEqual(s["load"]["duration_s"], 1)
        self.assertEqual(s["load"]["args"], ["--message-bytes", "20"])  # kept from the base
        self.assertEqual(budget(s, "throughput_min")["limit"], 10)
        self.assertEqual(budget(s, "latency.p99")["limit"], 500e6)
        self.assertEqual(budget(s, "latency.p50")["limit"], 150e3)  # not overridden
        self.assertEqual(budget(s, "server_cpu_us_per_op_max")["limit"], 20)

    def test_load_args(self):
        s = parse(FULL)
        self.assertEqual(budgetlib.load_args(s["load"]),
                         ["--connections", "100", "--threads", "1", "--cpus", "1", "--duration",
                          "10", "--warmup", "2.0", "--message-bytes", "20"])
        s = parse(MINIMAL.replace('"http"', '"fanout"\nrate = 50'))
        self.assertIn("--rate", budgetlib.load_args(s["load"]))

    def test_durations(self):
        for text, ns in (("5ns", 5), ("250us", 250e3), ("250µs", 250e3), ("2 ms", 2e6),
                         ("1.5s", 1.5e9)):
            self.assertEqual(budgetlib.parse_duration_ns(text, "x"), ns)

    def assertError(self, text, *fragments, profile=None):
        with self.assertRaises(budgetlib.ScenarioError) as cm:
            parse(text, profile)
        for fragment in fragments:
            self.assertIn(fragment, str(cm.exception))
        self.assertIn("t.toml", str(cm.exception))

    def test_errors(self):
        self.assertError("[load\nmode = 1", "not valid TOML")
        self.assertError("name = 'x'", "no [load] section")
        self.assertError("[load]\nconnections = 4", "load.mode is missing")
        self.assertError("[load]\nmode = 'gopher'", "'gopher' is not one of")
        self.assertError(MINIMAL + "conections = 4", "unknown setting 'conections'")
        self.assertError(MINIMAL + "connections = 'many'", "load.connections: expected int")
        self.assertError(MINIMAL + "connections = 0", "load.connections must be > 0")
        self.assertError(MINIMAL + "args = [{a = 1}]", "list of strings")
        self.assertError(MINIMAL + "[server]\nflag = []", "unknown setting 'flag'")
        self.assertError(MINIMAL + "[server]\ntarget = '1.2.3.4:80'\nshards = 2", "external")
        self.assertError(MINIMAL + "[server]\npid = 5", "server.pid only goes with")
        self.assertError(MINIMAL + "[upstream]\nflags = []", "never mention {upstream}")
        self.assertError(MINIMAL + "[budget]\nthroughput_min = 1", "unknown setting 'budget'")
        self.assertError(MINIMAL, "no [ci] profile", profile="ci")
        self.assertError("name = 'a b'\n" + MINIMAL, "letters, digits")

    def test_budget_errors(self):
        self.assertError(MINIMAL + "[budgets]\nlatency = { p99 = 5 }", "latency.p99",
                         "duration with a unit")
        self.assertError(MINIMAL + "[budgets]\nlatency = { p99 = '5 minutes' }",
                         "cannot read duration")
        self.assertError(MINIMAL + "[budgets]\nlatency = { p101 = '5ms' }", "percentile 'p101'")
        self.assertError(MINIMAL + "[budgets]\nlatency = { median = '5ms' }", "percentile")
        self.assertError(MINIMAL + "[budgets.latency]\np99.9 = '5ms'", "in quotes")
        self.assertError(MINIMAL + "[budgets]\nlatency = {}", "table of percentiles")
        self.assertError(MINIMAL + "[budgets]\nttft_overhead = { p99 = '5ms' }",
                         "mode http does not measure ttft_overhead")
        self.assertError(MINIMAL + "[budgets]\nlatancy = { p99 = '5ms' }", "unknown budget")
        self.assertError(MINIMAL + "[budgets]\nthroughput_min = -1", "number >= 0")
        self.assertError(MINIMAL + "[budgets]\nerror_rate_max = '1%'", "number >= 0")

    def test_server_cpu_budget_on_an_external_server_needs_its_pid(self):
        text = MINIMAL + "[server]\ntarget = '10.0.0.1:80'\n[budgets]\nserver_cpu_us_per_op_max = 5"
        self.assertError(text, "server_cpu_us_per_op_max needs server.pid")
        s = parse(text.replace("'10.0.0.1:80'", "'10.0.0.1:80'\npid = 42"))
        self.assertEqual(budget(s, "server_cpu_us_per_op_max")["limit"], 5.0)

    def test_every_shipped_scenario_parses_with_and_without_the_ci_profile(self):
        files = sorted(glob.glob(os.path.join(HERE, "scenarios", "*.toml")))
        self.assertGreaterEqual(len(files), 9)
        modes = set()
        for path in files:
            for profile in (None, "ci"):
                s = budgetlib.load_scenario(path, profile)
                modes.add(s["load"]["mode"])
                self.assertTrue(any(b["kind"] == "latency" for b in s["budgets"]), path)
        self.assertEqual(modes, {"http", "ws-echo", "fanout", "sse-chat", "ws-chat", "broker"})


def report(buckets=None, name="latency", **over):
    r = {"count": 1000, "per_second": 5000.0,
         "errors": {"total": 0, "seq_missing": 0, "seq_duplicates": 0, "incomplete_missing": 0,
                    "publish_unanswered": 0},
         "server": {"cpu_us_per_op": 12.5},
         "histograms": {}}
    if buckets is not None:
        r["histograms"][name] = {"unit": "ns", "count": sum(c for _, c in buckets),
                                 "buckets": buckets}
    r.update(over)
    return r


class EvaluateTest(unittest.TestCase):
    SCENARIO = MINIMAL + """
[budgets]
throughput_min = 4000
server_cpu_us_per_op_max = 20
latency = { p50 = "100ns", p99 = "1us", max = "2us" }
"""

    def rows(self, r, text=None):
        s = parse(text or self.SCENARIO)
        return {row["budget"]: row for row in budgetlib.evaluate(s["budgets"], r)}

    def test_all_within_budget(self):
        # 1,000 samples: 500 at 50 ns, 490 at 100 ns, 10 at 1,000 ns -> p50 50, p99 100, max 1000.
        rows = self.rows(report([[50, 500], [100, 490], [1000, 10]]))
        self.assertTrue(all(r["ok"] for r in rows.values()), rows)
        self.assertEqual(rows["latency.p50"]["measured"], 50)
        self.assertEqual(rows["latency.p99"]["measured"], 100)
        self.assertEqual(rows["latency.max"]["measured"], 1000)
        self.assertEqual(rows["throughput_min"]["measured"], 5000.0)

    def test_each_budget_blows(self):
        rows = self.rows(report([[50, 400], [200, 595], [3000, 5]], per_second=3999.0,
                                server={"cpu_us_per_op": 20.5}))
        blown = {k for k, r in rows.items() if not r["ok"]}
        self.assertEqual(blown, {"latency.p50", "latency.max", "throughput_min",
                                 "server_cpu_us_per_op_max"})
        self.assertEqual(rows["latency.p50"]["measured_text"], "200ns")
        self.assertEqual(rows["latency.p50"]["limit_text"], "<= 100ns")

    # A real ringcast-load "errors" object (fanout, --allow-loss): 3 connections closed by the
    # server, one gap of 40 missing publications, one subscriber 2 short at the end. total is
    # hard() + loss() = 3 + (1 gap + 1 incomplete subscriber) = 5: events, not publications.
    FANOUT_ERRORS = {"connect": 0, "not_ready": 0, "handshake": 0, "closed_by_server": 3,
                     "protocol": 0, "http_status": 0, "echo_mismatch": 0,
                     "server_error_events": 0, "publish": 0, "seq_gaps": 1, "seq_missing": 40,
                     "seq_duplicates": 0, "incomplete_subscribers": 1, "incomplete_missing": 2,
                     "publish_unanswered": 0, "total": 5, "connect_errnos": {}}

    def test_error_and_loss_rates(self):
        r = report([[50, 1000]], count=10000, status="errors")
        r["errors"] = dict(self.FANOUT_ERRORS)
        rows = self.rows(r, MINIMAL + "[budgets]\nerror_rate_max = 0.001\nloss_rate_max = 0.005")
        # Errors are failed operations (the hard kinds), loss is undelivered publications.
        self.assertAlmostEqual(rows["error_rate_max"]["measured"], 3 / 10003)
        self.assertAlmostEqual(rows["loss_rate_max"]["measured"], 42 / 10042)
        self.assertTrue(rows["error_rate_max"]["ok"])
        self.assertTrue(rows["loss_rate_max"]["ok"])
        # The default budgets: no errors, no loss; the 3 hard errors are not hidden by the gap.
        rows = self.rows(r, MINIMAL)
        self.assertFalse(rows["error_rate_max"]["ok"])
        self.assertFalse(rows["loss_rate_max"]["ok"])

    def test_hard_errors_never_go_below_zero_or_vanish(self):
        r = report([[50, 100]], count=100)
        r["errors"] = dict(self.FANOUT_ERRORS, closed_by_server=0, total=2)
        rows = self.rows(r, MINIMAL + "[budgets]\nloss_rate_max = 1")
        self.assertEqual(rows["error_rate_max"]["measured"], 0)
        self.assertTrue(rows["error_rate_max"]["ok"])
        for kind in budgetlib.HARD_ERRORS:
            r["errors"] = dict(self.FANOUT_ERRORS, closed_by_server=0, total=3)
            r["errors"][kind] = 1
            self.assertFalse(self.rows(r, MINIMAL + "[budgets]\nloss_rate_max = 1")
                             ["error_rate_max"]["ok"], kind)

    def test_broker_requests_due_but_unsent_are_loss(self):
        r = report([[50, 100]], count=100, streams={"unsent": 25})
        rows = self.rows(r, MINIMAL + "[budgets]\nloss_rate_max = 0.1")
        self.assertAlmostEqual(rows["loss_rate_max"]["measured"], 25 / 125)
        self.assertFalse(rows["loss_rate_max"]["ok"])

    def test_missing_samples_and_server_figures_blow_the_budget(self):
        rows = self.rows(report(None, server=None))
        self.assertFalse(rows["latency.p50"]["ok"])
        self.assertEqual(rows["latency.p50"]["measured_text"], "no samples")
        self.assertFalse(rows["server_cpu_us_per_op_max"]["ok"])
        self.assertEqual(rows["server_cpu_us_per_op_max"]["measured_text"], "not measured")

    def test_a_report_without_histograms_uses_the_older_fields(self):
        r = report(None, latency_ns={"count": 10, "p50": 80, "p99": 900, "p999": 950,
                                     "max": 1500})
        del r["histograms"]
        rows = self.rows(r)
        self.assertEqual(rows["latency.p50"]["measured"], 80)
        self.assertEqual(rows["latency.p99"]["measured"], 900)
        self.assertEqual(rows["latency.max"]["measured"], 1500)

    def test_percentile_is_nearest_rank_like_ringcast_load(self):
        b = [[10, 1], [20, 1], [30, 1], [40, 1]]
        self.assertEqual(budgetlib.percentile_of_buckets(b, 25), 10)
        self.assertEqual(budgetlib.percentile_of_buckets(b, 25.1), 20)
        self.assertEqual(budgetlib.percentile_of_buckets(b, 50), 20)
        self.assertEqual(budgetlib.percentile_of_buckets(b, 100), 40)
        self.assertEqual(budgetlib.percentile_of_buckets(b, 0.001), 10)

    def test_nearest_rank_is_exact_at_thousands_of_samples(self):
        # 0.999 * 1000 is 999.0000000000001 in floats: p99.9 of 1,000 samples must be the 999th.
        self.assertEqual(budgetlib.percentile_of_buckets([[1_000_000, 999], [5_000_000_000, 1]],
                                                         99.9), 1_000_000)
        self.assertEqual(budgetlib.nearest_rank(99.9, 2000), 1998)
        self.assertEqual(budgetlib.nearest_rank(99.95, 2000), 1999)
        self.assertEqual(budgetlib.nearest_rank(99.951, 2000), 2000)
        self.assertEqual(budgetlib.nearest_rank(0.001, 10), 1)
        for total in range(1, 5001):
            self.assertEqual(budgetlib.nearest_rank(99.9, total), -(-999 * total // 1000), total)
            self.assertEqual(budgetlib.nearest_rank(99, total), -(-99 * total // 100), total)


class MeasuredTest(unittest.TestCase):
    def test_reports_with_measurements(self):
        for status in ("ok", "errors", "loss (sequence errors; --allow-loss tolerates them)"):
            self.assertIsNone(budgetlib.unmeasured(report([[50, 10]], status=status, ready=2)),
                              status)

    def test_runs_that_measured_nothing(self):
        aborted = report(None, count=0, ready=0,
                         status="aborted: no connection became ready (2 failed)")
        self.assertIn("aborted: no connection became ready", budgetlib.unmeasured(aborted))
        for status in ("the measured window never completed",
                       "nothing completed inside the window", "aborted: SIGTERM"):
            self.assertIn(status, budgetlib.unmeasured(report([[50, 10]], status=status)))
        self.assertIn("completed nothing",
                      budgetlib.unmeasured(report(None, count=0, status="errors")))
        self.assertIn("no connection became ready",
                      budgetlib.unmeasured(report([[50, 10]], ready=0, status="errors")))


class HgrmTest(unittest.TestCase):
    def test_distribution_computed_by_hand(self):
        # Four samples: 10, 10, 20, 30 ns (width-1 buckets). HdrHistogram's percentile iterator
        # steps 10% at a time up to 50%, then 5% (the 5 ticks per half distance), reporting a
        # value once the cumulative share reaches the level: 10 for 0-50%, 20 for 55-75% (3 of 4),
        # 30 at 77.5% (the next level), then the final 100% line.
        text = budgetlib.hgrm_text([[10, 2], [20, 1], [30, 1]], scale_ns=1, digits=3)
        expected = (
            "       Value     Percentile TotalCount 1/(1-Percentile)\n\n"
            "      10.000 0.000000000000          2           1.00\n"
            "      10.000 0.100000000000          2           1.11\n"
            "      10.000 0.200000000000          2           1.25\n"
            "      10.000 0.300000000000          2           1.43\n"
            "      10.000 0.400000000000          2           1.67\n"
            "      10.000 0.500000000000          2           2.00\n"
            "      20.000 0.550000000000          3           2.22\n"
            "      20.000 0.600000000000          3           2.50\n"
            "      20.000 0.650000000000          3           2.86\n"
            "      20.000 0.700000000000          3           3.33\n"
            "      20.000 0.750000000000          3           4.00\n"
            "      30.000 0.775000000000          4           4.44\n"
            "      30.000 1.000000000000          4\n"
            # Mean (10+10+20+30)/4 = 17.5; deviations -7.5, -7.5, 2.5, 12.5:
            # sqrt((56.25 * 2 + 6.25 + 156.25) / 4) = sqrt(68.75) = 8.292.
            "#[Mean    =       17.500, StdDeviation   =        8.292]\n"
            "#[Max     =       30.000, Total count    =            4]\n"
            "#[Buckets =           35, SubBuckets     =          256]\n")
        self.assertEqual(text, expected)

    def test_milliseconds_and_wide_buckets(self):
        # Between 2^19 and 2^20 ns buckets are 2^19 / 128 = 4,096 ns wide: 1,003,519 ns is the top
        # of [999,424, 1,003,519] (244 x 4,096 ...), whose middle is 999,424 + 2,048 = 1,001,472.
        self.assertEqual(budgetlib.lowest_equivalent(1003519), 999424)
        self.assertEqual(budgetlib.lowest_equivalent(255), 255)
        self.assertEqual(budgetlib.lowest_equivalent(257), 256)  # 256..257, width 2
        text = budgetlib.hgrm_text([[1003519, 1]])  # milliseconds, 3 digits
        lines = text.splitlines()
        self.assertEqual(lines[2], "       1.004 0.000000000000          1           1.00")
        self.assertEqual(lines[3], "       1.004 1.000000000000          1")
        self.assertIn("#[Mean    =        1.001, StdDeviation   =        0.000]", text)
        self.assertIn("#[Max     =        1.004, Total count    =            1]", text)

    def test_iteration_ends_at_100_percent_and_never_loops(self):
        buckets = [[v, 1] for v in range(1, 200)] + [[5000, 100000]]
        steps = budgetlib.percentile_iteration(buckets)
        self.assertEqual(steps[-1], (5000, 100.0, 100199))
        levels = [level for _, level, _ in steps]
        self.assertEqual(levels, sorted(levels))
        self.assertEqual(budgetlib.percentile_iteration([]), [])


if __name__ == "__main__":
    unittest.main()
