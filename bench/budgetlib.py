"""The pure parts of bench/budget: scenario files (TOML) and their errors, budget evaluation
against a ringcast-load JSON report, percentiles from the report's histograms, and the
HdrHistogram percentile-distribution text (.hgrm). No processes, no plotting: bench/test_budget.py
tests all of it. The format is documented in docs/budgets.md.

Single-threaded: bench/budget calls this from its main thread only.
"""

import copy
import math
import re
import tomllib

# Histograms ringcast-load's JSON may carry ("histograms"), and which modes produce which.
HISTOGRAMS = ("latency", "ttft_overhead", "token_gap", "token_jitter", "enqueue_admitted",
              "enqueue_rejected", "to_processing", "to_done")
CHAT = ("latency", "ttft_overhead", "token_gap", "token_jitter")
MODE_HISTOGRAMS = {
    "http": ("latency",),
    "ws-echo": ("latency",),
    "fanout": ("latency",),
    "sse-chat": CHAT,
    "ws-chat": CHAT,
    "broker": ("latency", "enqueue_admitted", "enqueue_rejected", "to_processing", "to_done"),
}
# The histograms' older names in ringcast-load's report (before "histograms" existed), used
# when a report has no "histograms": percentiles p50/p99/p99.9/max only.
LEGACY_FIELDS = {"latency": ("latency_ns",)}
for _name in HISTOGRAMS[1:]:
    LEGACY_FIELDS[_name] = ("streams", _name + "_ns")
LEGACY_PERCENTILES = {50.0: "p50", 90.0: "p90", 99.0: "p99", 99.9: "p999"}

SECTIONS = ("server", "upstream", "load", "budgets")
SERVER_KEYS = {"flags": list, "shards": int, "cpus": str, "target": str, "pid": int}
UPSTREAM_KEYS = {"flags": list, "shards": int, "cpus": str}
LOAD_KEYS = {"mode": str, "connections": int, "threads": int, "cpus": str, "duration_s": float,
             "warmup_s": float, "rate": float, "timeline_ms": int, "args": list}
RATE_BUDGETS = {
    "throughput_min": "throughput",
    "error_rate_max": "error rate",
    "loss_rate_max": "loss rate",
    "server_cpu_us_per_op_max": "server CPU per op",
}
DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ns|us|µs|ms|s)\s*$")
UNIT_NS = {"ns": 1, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9}
PERCENTILE_RE = re.compile(r"^p([0-9]{1,2}(?:\.[0-9]+)?|100)$")


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the setting."""


# --------------------------------------------------------------------------- parsing


def parse_duration_ns(text, where):
    """"250us", "2 ms", "1.5s" -> nanoseconds (float). Bare numbers are refused: no unit guessing."""
    if not isinstance(text, str):
        raise ScenarioError(f"{where}: expected a duration with a unit such as \"2ms\", "
                            f"got {text!r}")
    m = DURATION_RE.match(text)
    if not m:
        raise ScenarioError(f"{where}: cannot read duration {text!r} (a number and ns, us, ms "
                            "or s, e.g. \"250us\")")
    return float(m.group(1)) * UNIT_NS[m.group(2)]


def parse_percentile(key, where):
    """"p50" -> 50.0, "p99.9" -> 99.9, "max" -> 100.0."""
    if key == "max":
        return 100.0
    m = PERCENTILE_RE.match(key)
    if not m or not 0 < float(m.group(1)) <= 100:
        raise ScenarioError(f"{where}: unknown percentile {key!r} (p50, p99, \"p99.9\" (quoted), "
                            "max ...)")
    return float(m.group(1))


def format_ns(ns):
    if ns is None:
        return "-"
    if ns < 1e3:
        return f"{ns:.0f}ns"
    if ns < 1e6:
        return f"{ns / 1e3:.1f}us"
    if ns < 1e9:
        return f"{ns / 1e6:.2f}ms"
    return f"{ns / 1e9:.2f}s"


def merge(base, over):
    """Deep merge of TOML tables: tables merge key by key, anything else is replaced."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _check_keys(table, allowed, where):
    if not isinstance(table, dict):
        raise ScenarioError(f"{where}: expected a table")
    for key, value in table.items():
        if key not in allowed:
            raise ScenarioError(f"{where}: unknown setting {key!r} (known: "
                                f"{', '.join(sorted(allowed))})")
        kind = allowed[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise ScenarioError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
        if kind is list and not all(isinstance(a, (str, int, float)) for a in value):
            raise ScenarioError(f"{where}.{key}: expected a list of strings and numbers")


def parse_budgets(table, mode, where):
    """[budgets] -> a list of budgets: dicts with kind ("latency" or "rate"), name, label, limit
    and, for latency, histogram and percentile."""
    if not isinstance(table, dict):
        raise ScenarioError(f"{where}: expected a table")
    out = []
    table = dict(table)
    table.setdefault("error_rate_max", 0.0)
    table.setdefault("loss_rate_max", 0.0)
    for key, value in table.items():
        if key in RATE_BUDGETS:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ScenarioError(f"{where}.{key}: expected a number >= 0, got {value!r}")
            out.append({"kind": "rate", "name": key, "label": RATE_BUDGETS[key],
                        "limit": float(value)})
            continue
        if key not in HISTOGRAMS:
            raise ScenarioError(f"{where}: unknown budget {key!r} (known: "
                                f"{', '.join(list(RATE_BUDGETS) + list(HISTOGRAMS))})")
        if key not in MODE_HISTOGRAMS.get(mode, ()):
            raise ScenarioError(f"{where}.{key}: mode {mode} does not measure {key} (it "
                                f"measures {', '.join(MODE_HISTOGRAMS.get(mode, ()))})")
        if not isinstance(value, dict) or not value:
            raise ScenarioError(f"{where}.{key}: expected a table of percentiles, e.g. "
                                f"{key} = {{ p99 = \"2ms\" }}")
        for pkey, limit in value.items():
            pwhere = f"{where}.{key}.{pkey}"
            if isinstance(limit, dict):
                raise ScenarioError(f"{pwhere}: write \"{pkey}.{'.'.join(limit)}\" in quotes "
                                    "(a bare dot makes a TOML table)")
            p = parse_percentile(pkey, pwhere)
            out.append({"kind": "latency", "name": f"{key}.{pkey}", "histogram": key,
                        "percentile": p, "label": f"{key} {pkey}",
                        "limit": parse_duration_ns(limit, pwhere)})
    return out


def parse_scenario(text, path="scenario.toml", profile=None):
    """TOML text -> a scenario dict (name, description, server, upstream, load, budgets,
    profile, profiles). Raises ScenarioError on anything it cannot use."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{path}: not valid TOML: {e}") from None
    stem = re.sub(r"\.toml$", "", path.rsplit("/", 1)[-1])
    name = doc.pop("name", stem)
    description = doc.pop("description", "")
    if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", name):
        raise ScenarioError(f"{path}: name {name!r}: letters, digits, '-', '_' and '.' only")
    if not isinstance(description, str):
        raise ScenarioError(f"{path}: description must be a string")
    base = {k: doc.pop(k) for k in SECTIONS if k in doc}
    profiles = {}
    for key, value in doc.items():
        # Any other top-level table is a profile: sections only ([ci.load], [ci.budgets] ...).
        if not isinstance(value, dict) or not value or not set(value) <= set(SECTIONS):
            raise ScenarioError(f"{path}: unknown setting {key!r} (top level: name, description, "
                                f"[{'], ['.join(SECTIONS)}] and profiles such as [ci.load])")
        profiles[key] = value
    if profile is not None:
        if profile not in profiles:
            raise ScenarioError(f"{path}: no [{profile}] profile (has: "
                                f"{', '.join(sorted(profiles)) or 'none'})")
        base = merge(base, profiles[profile])
    where = f"{path}{' [' + profile + ']' if profile else ''}"

    server = base.get("server", {})
    _check_keys(server, SERVER_KEYS, f"{where}: server")
    if "pid" in server and "target" not in server:
        raise ScenarioError(f"{where}: server.pid only goes with server.target (an external "
                            "server)")
    if "target" in server and set(server) - {"target", "pid"}:
        raise ScenarioError(f"{where}: server.target (an external server) takes no flags, "
                            "shards or cpus")
    upstream = base.get("upstream")
    if upstream is not None:
        _check_keys(upstream, UPSTREAM_KEYS, f"{where}: upstream")
        if "target" in server:
            raise ScenarioError(f"{where}: [upstream] needs a server bench/budget starts")
        if not any("{upstream}" in str(f) for f in server.get("flags", [])):
            raise ScenarioError(f"{where}: [upstream] is started but server.flags never "
                                "mention {upstream} (its address)")
    load = base.get("load")
    if load is None:
        raise ScenarioError(f"{where}: no [load] section")
    _check_keys(load, LOAD_KEYS, f"{where}: load")
    if "mode" not in load:
        raise ScenarioError(f"{where}: load.mode is missing ({', '.join(MODE_HISTOGRAMS)})")
    if load["mode"] not in MODE_HISTOGRAMS:
        raise ScenarioError(f"{where}: load.mode {load['mode']!r} is not one of "
                            f"{', '.join(MODE_HISTOGRAMS)}")
    for key in ("connections", "threads", "duration_s", "timeline_ms"):
        if key in load and load[key] <= 0:
            raise ScenarioError(f"{where}: load.{key} must be > 0")
    budgets = parse_budgets(base.get("budgets", {}), load["mode"], f"{where}: budgets")
    if "target" in server and "pid" not in server and \
            any(b["name"] == "server_cpu_us_per_op_max" for b in budgets):
        raise ScenarioError(f"{where}: budgets.server_cpu_us_per_op_max needs server.pid with "
                            "server.target (without it the server's CPU is never measured)")
    return {"name": name, "description": description, "path": path, "profile": profile,
            "profiles": sorted(profiles), "server": server, "upstream": upstream, "load": load,
            "budgets": budgets}


def load_scenario(path, profile=None):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ScenarioError(f"{path}: {e.strerror}") from None
    return parse_scenario(text, path, profile)


def load_args(load):
    """The ringcast-load arguments a [load] section stands for (mode and target excluded)."""
    args = ["--connections", load.get("connections", 1), "--threads", load.get("threads", 1),
            "--cpus", load.get("cpus", "1"), "--duration", load.get("duration_s", 10.0),
            "--warmup", load.get("warmup_s", 2.0)]
    if "rate" in load:
        args += ["--rate", load["rate"]]
    return [str(a) for a in args + list(load.get("args", []))]


# --------------------------------------------------------------------------- evaluation


def buckets_of(report, name):
    """[[highest_equivalent_ns, count], ...] of a histogram, or None."""
    h = (report.get("histograms") or {}).get(name)
    return h["buckets"] if h and h.get("count") else None


def nearest_rank(p, total):
    """The rank (from 1) of the sample at percentile p of total samples: ceil(p/100 * total), in
    integers as ringcast-load's histogram::percentile computes it. p is taken to a millionth of a
    percent, so float noise cannot push a rank up (0.999 * 1000 is 999.0000000000001 in floats,
    which would make p99.9 of 1,000 samples the maximum)."""
    micro = round(p * 1_000_000)  # p in millionths of a percent
    return min(total, max(1, -(-micro * total // 100_000_000)))


def percentile_of_buckets(buckets, p):
    """The highest equivalent value of the bucket percentile p (0 < p <= 100) falls in, like
    ringcast-load's own percentiles (without its cap at the exact maximum)."""
    total = sum(c for _, c in buckets)
    if total == 0:
        return None
    want = nearest_rank(p, total)
    seen = 0
    for value, count in buckets:
        seen += count
        if seen >= want:
            return value
    return buckets[-1][0]


def percentile(report, name, p):
    """A histogram's percentile from the report, in ns; None when it has no samples."""
    buckets = buckets_of(report, name)
    if buckets is not None:
        return percentile_of_buckets(buckets, p)
    if "histograms" in report:
        return None
    node = report
    for key in LEGACY_FIELDS[name]:
        node = (node or {}).get(key)
    if not node or not node.get("count"):
        return None
    field = "max" if p == 100.0 else LEGACY_PERCENTILES.get(p)
    return node.get(field) if field else None


# ringcast-load's hard error kinds (error_counts::hard() in bench/load/results.h), by their JSON
# names: each counts one failed connection, request or response.
HARD_ERRORS = ("connect", "not_ready", "handshake", "closed_by_server", "protocol", "http_status",
               "echo_mismatch", "server_error_events", "publish")


def hard_errors(report):
    """The failed operations. Not errors.total: that adds ringcast-load's loss() counters, which
    count gap events and incomplete subscribers, a different unit from lost()."""
    e = report["errors"]
    return sum(e.get(k, 0) for k in HARD_ERRORS)


def lost(report):
    """Deliveries (or requests) that should have happened and did not: publications missing from
    subscribers' sequences, duplicates, publications never answered, and the broker's requests
    that were due but never sent because every connection was full or closed (streams.unsent:
    the schedule said send, the server could not take it, so it counts against the server)."""
    e = report["errors"]
    unsent = (report.get("streams") or {}).get("unsent", 0)
    return (e.get("seq_missing", 0) + e.get("seq_duplicates", 0) +
            e.get("incomplete_missing", 0) + e.get("publish_unanswered", 0) + unsent)


# ringcast-load's statuses for a run that measured something (report.cc); anything else (aborted,
# the window never completed, nothing completed) is a run that could not be measured.
MEASURED_STATUSES = ("ok", "errors", "loss")


def unmeasured(report):
    """Why a ringcast-load report cannot be judged against budgets (a sentence), or None when it
    holds measurements: its status is ok, errors or loss, connections became ready and
    operations completed inside the window."""
    status = str(report.get("status", "ok"))
    if not any(status == s or status.startswith(s + " ") for s in MEASURED_STATUSES):
        return f"ringcast-load measured nothing: {status}"
    if report.get("count", 0) == 0:
        return f"ringcast-load completed nothing inside the window (status: {status})"
    if report.get("ready") == 0:
        return f"no connection became ready (status: {status})"
    return None


def rates(report):
    """The rate figures budgets compare: throughput, error and loss rates, CPU per op."""
    count = report.get("count", 0)
    loss = lost(report)
    errors = hard_errors(report)
    server = report.get("server")
    return {
        "throughput_min": report.get("per_second", 0.0),
        "error_rate_max": errors / max(1, count + errors),
        "loss_rate_max": loss / max(1, count + loss),
        "server_cpu_us_per_op_max": server["cpu_us_per_op"] if server else None,
    }


def evaluate(budgets, report):
    """Budgets against a report -> rows: budget, limit and measured (numbers and text), ok."""
    figures = rates(report)
    rows = []
    for b in budgets:
        if b["kind"] == "latency":
            measured = percentile(report, b["histogram"], b["percentile"])
            ok = measured is not None and measured <= b["limit"]
            text = format_ns(measured) if measured is not None else "no samples"
            limit_text = "<= " + format_ns(b["limit"])
        else:
            measured = figures[b["name"]]
            if b["name"] == "throughput_min":
                ok = measured is not None and measured >= b["limit"]
                limit_text = f">= {b['limit']:,.0f}/s"
                text = f"{measured:,.0f}/s"
            elif b["name"] == "server_cpu_us_per_op_max":
                ok = measured is not None and measured <= b["limit"]
                limit_text = f"<= {b['limit']:g}us"
                text = "not measured" if measured is None else f"{measured:.2f}us"
            else:
                ok = measured <= b["limit"]
                limit_text = f"<= {b['limit']:.4%}"
                text = f"{measured:.4%}"
        rows.append({"budget": b["name"], "label": b["label"], "limit": b["limit"],
                     "histogram": b.get("histogram"), "percentile": b.get("percentile"),
                     "limit_text": limit_text, "measured": measured, "measured_text": text,
                     "ok": ok})
    return rows


# --------------------------------------------------------------------------- .hgrm


def lowest_equivalent(highest):
    """ringcast-load's buckets: width 1 below 256, then 128 per power of two."""
    if highest < 256:
        return highest
    width = 1 << (highest.bit_length() - 1 - 7)
    return highest - width + 1


def percentile_iteration(buckets):
    """HdrHistogram's PercentileIterator (5 ticks per half distance) over non-empty buckets:
    (value, percentile level 0..100, count up to the value), ending with the 100% step."""
    total = sum(c for _, c in buckets)
    out = []
    if total == 0:
        return out
    level, seen = 0.0, 0
    for i, (value, count) in enumerate(buckets):
        seen += count
        while 100.0 * seen / total >= level:
            out.append((value, level, seen))
            ticks = 5 * 2 ** (int(math.log(100.0 / (100.0 - level)) / math.log(2)) + 1)
            level += 100.0 / ticks
            if seen == total:
                break
        if seen == total:
            out.append((value, 100.0, seen))
            break
    return out


def hgrm_text(buckets, scale_ns=1e6, digits=3):
    """HdrHistogram's outputPercentileDistribution text for ringcast-load buckets (values in ns,
    printed divided by scale_ns: milliseconds by default, as the HdrHistogram plotter
    expect). Mean and standard deviation use each bucket's middle value, like HdrHistogram."""
    total = sum(c for _, c in buckets)
    lines = ["%12s %14s %10s %14s\n\n" % ("Value", "Percentile", "TotalCount", "1/(1-Percentile)")]
    for value, level, seen in percentile_iteration(buckets):
        v = value / scale_ns
        if level != 100.0:
            lines.append("%12.*f %2.12f %10d %14.2f\n"
                         % (digits, v, level / 100.0, seen, 1.0 / (1.0 - level / 100.0)))
        else:
            lines.append("%12.*f %2.12f %10d\n" % (digits, v, level / 100.0, seen))
    mids = [(lowest_equivalent(h) + ((h - lowest_equivalent(h) + 1) >> 1), c) for h, c in buckets]
    mean = sum(m * c for m, c in mids) / total if total else 0.0
    std = math.sqrt(sum((m - mean) ** 2 * c for m, c in mids) / total) if total else 0.0
    top = buckets[-1][0] if buckets else 0
    lines.append("#[Mean    = %12.*f, StdDeviation   = %12.*f]\n"
                 % (digits, mean / scale_ns, digits, std / scale_ns))
    lines.append("#[Max     = %12.*f, Total count    = %12d]\n" % (digits, top / scale_ns, total))
    # ringcast-load's layout: one linear bucket below 256, then 34 powers of two, 256 sub-buckets.
    lines.append("#[Buckets = %12d, SubBuckets     = %12d]\n" % (35, 256))
    return "".join(lines)
