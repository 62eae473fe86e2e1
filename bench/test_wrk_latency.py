#!/usr/bin/python3
"""Tests for wrk_latency: correct() matches wrk 4.1, uncorrect() inverts it exactly.

Run: /usr/bin/python3 bench/test_wrk_latency.py
"""

import random
import sys
import unittest
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import wrk_latency as wl  # noqa: E402


def random_hist(rng, lo, hi, samples):
    hist = {}
    for _ in range(samples):
        v = int(rng.lognormvariate(0, 0.6) * lo)
        v = min(max(v, lo), hi)
        hist[v] = hist.get(v, 0) + 1
    return hist


class CorrectTest(unittest.TestCase):
    def test_hand_computed(self):
        # e = 10: the sample at 35 adds synthetic samples at 25 and 15 (not 5: must stay > e).
        self.assertEqual(wl.correct({12: 1, 35: 1}, 10), {12: 1, 15: 1, 25: 1, 35: 1})

    def test_small_values_untouched(self):
        self.assertEqual(wl.correct({3: 4, 19: 2}, 10), {3: 4, 19: 2})

    def test_pipelined_collapse_reproduced(self):
        # Real batch latencies ~280 us, e ~26 us (wrk divided by 16x too many "requests"):
        # most synthetic mass lands below the real minimum, wrk's percentile loop never sees it.
        real = {270: 50, 280: 900, 300: 50}
        reported = wl.correct(real, 26)
        self.assertGreater(sum(v for k, v in reported.items() if k < 270), 8 * 1000)


class UncorrectTest(unittest.TestCase):
    def test_round_trip_random(self):
        rng = random.Random(7)
        for _ in range(200):
            lo = rng.randint(1, 400)
            real = random_hist(rng, lo, lo * 20, rng.randint(1, 3000))
            e = rng.randint(1, 2 * lo + 5)
            reported = wl.correct(real, e)
            # wrk only exposes [real min, real max]; synthetic samples below min are invisible.
            lo_r, hi_r = min(real), max(real)
            visible = {k: v for k, v in reported.items() if lo_r <= k <= hi_r}
            self.assertEqual(wl.uncorrect(visible, e), real, "e=%d" % e)

    def test_no_correction(self):
        self.assertEqual(wl.uncorrect({5: 1, 9: 2}, 0), {5: 1, 9: 2})

    def test_rejects_foreign_histogram(self):
        with self.assertRaises(ValueError):
            wl.uncorrect({15: 0, 25: 0, 35: 1, 12: 1, 14: 1}, 10)  # 25 lacks 35's sample.

    def test_expected_interval_is_integer_arithmetic(self):
        self.assertEqual(wl.expected_interval_us(2_001_008, 3_779_552, 50), 26)
        self.assertEqual(wl.expected_interval_us(10, 3, 50), 0)


class PercentileTest(unittest.TestCase):
    def test_rank_rule(self):
        hist = {v: 1 for v in range(1, 101)}  # 1..100
        self.assertEqual(wl.percentile(hist, 50), 51)  # round(50 + 0.5) = 51
        self.assertEqual(wl.percentile(hist, 99), 100)
        self.assertEqual(wl.percentile({}, 99), 0)

    def test_parse_hist(self):
        self.assertEqual(wl.parse_hist("12:3 40:1"), {12: 3, 40: 1})


if __name__ == "__main__":
    unittest.main()
