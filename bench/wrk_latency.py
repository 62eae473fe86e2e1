"""Measured latency percentiles from wrk 4.1's histogram, with its "correction" undone.

Before reporting, wrk 4.1 (src/wrk.c, src/stats.c) runs stats_correct(): for every recorded
latency n >= 2e it adds synthetic samples at n-e, n-2e, ... (while > e), where the "expected
interval" e = runtime_us / (completed / connections) in integer arithmetic. That models an
open-loop client, which wrk is not; worse, e counts every response, so with pipelining (one
latency sample per batch of DEPTH responses) e is DEPTH times too small, most synthetic samples
land below the smallest real one, where stats_percentile() never looks, and wrk reports p75..p99
as 0. bench/http-compare.d/wrk-report.lua prints the corrected histogram; uncorrect() recovers
the recorded samples exactly, and percentile() uses wrk's own rank rule on them.

Pure functions over {latency_us: count} dicts; tested by bench/test_wrk_latency.py.
"""


def expected_interval_us(duration_us, requests, connections):
    """wrk's e, or 0 when wrk skipped the correction (fewer requests than connections)."""
    per_connection = requests // connections
    return duration_us // per_connection if per_connection > 0 else 0


def correct(hist, e):
    """Port of wrk 4.1 stats_correct(), for the tests: returns the histogram wrk reports."""
    out = dict(hist)
    if e <= 0 or not hist:
        return out
    for n in range(2 * e, max(hist) + 1):
        count = hist.get(n, 0)  # Synthetic samples only go below n: this is still the real count.
        m = n - e
        while count and m > e:
            out[m] = out.get(m, 0) + count
            m -= e
    return out


def uncorrect(reported, e):
    """Inverse of correct() on the part of the histogram between the real min and max.

    Walking down from the maximum, the synthetic count at m > e is the sum of real counts at
    m+e, m+2e, ...; `tail[v]` keeps that sum so each value costs O(1). Raises ValueError when
    the input cannot have come from correct() (a count would go negative).
    """
    if e <= 0 or not reported:
        return dict(reported)
    lo, hi = min(reported), max(reported)
    real, tail = {}, {}
    for v in range(hi, lo - 1, -1):
        above = tail.get(v + e, 0)
        count = reported.get(v, 0) - (above if v > e else 0)
        if count < 0:
            raise ValueError("histogram is not a wrk-corrected one (value %d us)" % v)
        if count:
            real[v] = count
        if count or above:
            tail[v] = count + above
    return real


def percentile(hist, p):
    """wrk's rank rule (stats_percentile): the smallest value whose cumulative count reaches
    round(p/100 * total + 0.5)."""
    total = sum(hist.values())
    if total == 0:
        return 0
    rank = int(p / 100.0 * total + 1.0)  # round(x + 0.5) for x >= 0 without banker's rounding
    seen = 0
    for v in sorted(hist):
        seen += hist[v]
        if seen >= rank:
            return v
    return max(hist)


def parse_hist(line):
    """Parses wrk-report.lua's 'WRK_HIST v:c v:c ...' payload."""
    hist = {}
    for pair in line.split():
        v, c = pair.split(":")
        hist[int(v)] = int(c)
    return hist
