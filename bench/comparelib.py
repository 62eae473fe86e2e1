"""The engine of bench/stream-compare and bench/http-compare: every target is a peer module
(bench/peers/<name>.py, interface below), every configuration runs each target --runs times
interleaved (A B C A B C ...), each run on a freshly started peer loaded by ringcast-load with the
same settings, and the tables show medians, ratios computed from those medians, the reasons a
target was skipped, and the machine and command that produced them. No figure is written in: a
peer that cannot run is skipped, never replaced by a remembered number.

Peer module interface (docs/benchmarks-streaming.md, "Peers"): NAME, SUPPORTS (a set of echo,
fanout-ws, fanout-sse, http; ringcast also ws-idle, ws-chat; fanout-deflate: start() takes
deflate=True/False, permessage-deflate on or off), add_options(parser), available(args) -> None
or a one-line reason, start(args, tmpdir, cpus) -> a context manager with .target, .pub_target,
.pids and .load_flags(mode, sub).

Python 3 standard library only. Single-threaded: the scripts call it from their main thread
(the processes started get loadlib.die_with_parent, which is tied to the forking thread).
"""

import argparse
import importlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import loadlib

REPO = Path(__file__).resolve().parent.parent
PEERS_DIR = REPO / "bench" / "peers"


class TargetFailed(Exception):
    """A run of one target could not be measured; the target is dropped from the table."""


def log(msg=""):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- peer modules


class Target:
    """A target named on the command line: its peer module, or why it has none."""

    def __init__(self, name, module=None, skip=None):
        self.name, self.module, self.skip = name, module, skip

    def supports(self, what):
        return self.module is not None and what in getattr(self.module, "SUPPORTS", ())


def peer_dirs(extra):
    """Directories searched for peer modules: --peers-dir ones first, then bench/peers."""
    return [Path(d).resolve() for d in extra] + [PEERS_DIR]


def load_targets(names, dirs):
    """Imports bench/peers/<name>.py for every name (in order). A module that is missing or
    fails to import becomes a Target with a skip reason instead of an error."""
    for d in reversed(dirs):
        if str(d) not in sys.path:
            sys.path.insert(0, str(d))
    bench = str(Path(__file__).resolve().parent)
    if bench not in sys.path:
        sys.path.insert(0, bench)
    targets = []
    for name in names:
        if not any((d / (name + ".py")).is_file() for d in dirs):
            targets.append(Target(name, skip="no peer module %s.py in %s" % (
                name, ", ".join(str(d) for d in dirs))))
            continue
        try:
            module = importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - any failure to import skips the peer
            targets.append(Target(name, skip="importing %s.py failed: %s: %s"
                                  % (name, type(e).__name__, e)))
            continue
        targets.append(Target(name, module=module))
    return targets


def pre_parse(argv, default_targets):
    """--targets and --peers-dir, read before the full parser exists (the peer modules add
    their own options to it)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--targets", default=default_targets)
    p.add_argument("--peers-dir", action="append", default=[])
    known, _ = p.parse_known_args(argv)
    names = [n.strip() for n in known.targets.split(",") if n.strip()]
    return names, known.peers_dir


def add_common_options(p, default_targets):
    p.add_argument("--targets", default=default_targets,
                   help="comma-separated peer modules (bench/peers/<name>.py), in run order")
    p.add_argument("--peers-dir", action="append", default=[], metavar="DIR",
                   help="also look for peer modules here, before bench/peers (repeatable)")
    p.add_argument("--server-cpus", default="0", help="CPUs of every peer (taskset -c)")
    p.add_argument("--client-cpus", default="1", help="CPU of ringcast-load")
    p.add_argument("--runs", type=int, default=None, help="runs per target and "
                   "configuration, interleaved; the tables show medians (default 5, quick 1)")
    p.add_argument("--duration", type=float, default=None,
                   help="measured seconds per run (default 5, quick 1)")
    p.add_argument("--warmup", type=float, default=None,
                   help="load before the window opens, seconds (default 1, quick 0.3)")
    p.add_argument("--attempts", type=int, default=None, help="repeat a run that other "
                   "processes disturbed up to this many times in all (default 2, quick 1)")
    p.add_argument("--quick", action="store_true",
                   help="1 short run of small configurations: a dry run, not a source of numbers")
    p.add_argument("--json", help="write every run, the medians and the machine as JSON")
    p.add_argument("--markdown", help="write the tables as Markdown")


def add_peer_options(p, targets):
    for t in targets:
        if t.module is not None and hasattr(t.module, "add_options"):
            t.module.add_options(p)


def fill_defaults(args, quick_values, full_values):
    for key, value in (quick_values if args.quick else full_values).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)


def check_available(targets, args):
    """Asks every loaded module whether it can run; a reason turns the target into a skip."""
    for t in targets:
        if t.module is None:
            continue
        try:
            reason = t.module.available(args)
        except Exception as e:  # noqa: BLE001
            reason = "available() failed: %s: %s" % (type(e).__name__, e)
        if reason:
            t.skip, t.module = reason, None


# --------------------------------------------------------------------------- runs


def interleaved(names, runs):
    """The order of the runs: (run index, name), A B C A B C ... so drift hits all alike."""
    return [(i, n) for i in range(runs) for n in names]


def run_interleaved(names, runs, measure_one):
    """Calls measure_one(name, run) in interleaved order; a target whose run raises
    TargetFailed is dropped from the rest. Returns ({name: [result]}, {name: reason})."""
    results, failed = {n: [] for n in names}, {}
    for i, name in interleaved(names, runs):
        if name in failed:
            continue
        try:
            results[name].append(measure_one(name, i))
        except TargetFailed as e:
            failed[name] = str(e).splitlines()[0] if str(e) else "failed"
            log("  %s dropped: %s" % (name, e))
    return results, failed


def load_command(args, mode, target, pub_target, pids, load_args, peer_flags, json_path):
    cmd = ["taskset", "-c", args.client_cpus, loadlib.load_bin(), mode, "--target", target,
           "--threads", "1", "--cpus", args.client_cpus, "--duration", args.duration,
           "--warmup", args.warmup, "--json", json_path, "-q"]
    if pub_target:
        cmd += ["--pub-target", pub_target]
    for pid in pids:
        cmd += ["--server-pid", pid]
    return [_arg(a) for a in cmd + list(load_args) + list(peer_flags)]


def _arg(a):
    return "%g" % a if isinstance(a, float) else str(a)


def run_load(args, mode, peer, load_args, sub=None, timeout=600):
    """One ringcast-load run against a started peer; returns its JSON report (with the
    command under "_command"). Raises TargetFailed when ringcast-load produced no report."""
    flags = list(peer.load_flags(mode, sub)) if hasattr(peer, "load_flags") else []
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "report.json")
        cmd = load_command(args, mode, peer.target, getattr(peer, "pub_target", None),
                           list(peer.pids), load_args, flags, out)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  preexec_fn=loadlib.die_with_parent)
        except subprocess.TimeoutExpired:
            raise TargetFailed("ringcast-load did not finish within %d s: %s"
                               % (timeout, shlex.join(cmd)))
        if not os.path.exists(out):
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            raise TargetFailed("ringcast-load exited %d without a report: %s" % (
                proc.returncode, " / ".join(tail) or shlex.join(cmd)))
        with open(out, encoding="utf-8") as f:
            report = json.load(f)
    report.pop("histograms", None)
    report.pop("timeline", None)
    report["_command"] = shlex.join(cmd)
    report["_peer_flags"] = flags
    return report


def measure(args, target, mode, load_args, sub=None, extra=None, timing=True):
    """A fresh peer, one load run, the peer stopped; a timing run that other processes
    disturbed is repeated (--attempts in all). Returns the report; one whose status is not
    ok is kept (summarise() leaves it out of the medians and counts it)."""
    tmp = args.tmpdir
    for attempt in range(max(1, args.attempts)):
        start = target.module.start
        try:
            peer_cm = start(args, tmp, args.server_cpus, **extra) if extra else \
                start(args, tmp, args.server_cpus)
            with peer_cm as peer:
                report = run_load(args, mode, peer, load_args, sub)
        except TargetFailed:
            raise
        except Exception as e:  # noqa: BLE001 - a peer that cannot start is dropped, not fatal
            raise TargetFailed("%s: %s" % (type(e).__name__, e))
        if report.get("status") != "ok":
            log("  %s run not ok: %s %s" % (target.name, report.get("status"),
                                            nonzero_errors(report)))
        disturbed = report.get("machine", {}).get("disturbed")
        if not timing or not disturbed or attempt + 1 >= args.attempts:
            report["_disturbed"] = bool(disturbed and timing)
            return report
        log("  %s: other processes used %.2f cores during the run; again" % (
            target.name, report["machine"].get("other_process_cores", 0)))
    return report


def nonzero_errors(report):
    return {k: v for k, v in report.get("errors", {}).items()
            if isinstance(v, (int, float)) and v and k != "total"}


# --------------------------------------------------------------------------- figures


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _get(report, path):
    v = report
    for key in path.split("."):
        if not isinstance(v, dict) or v.get(key) is None:
            return None
        v = v[key]
    return v


def lost(report):
    """Deliveries missing in the middle of a subscriber's sequence, and repeats: real loss."""
    e = report.get("errors", {})
    return sum(e.get(k, 0) for k in ("seq_missing", "seq_duplicates"))


def undelivered(report):
    """Deliveries still owed when the drain ended (a subscriber short of the last
    publication) and publications never answered: a peer too slow for the drain, or loss at
    the end; reported apart from lost."""
    e = report.get("errors", {})
    return sum(e.get(k, 0) for k in ("incomplete_missing", "publish_unanswered"))


FIGURES = {
    "per_second": "per_second",
    "server_us_per_op": "server.cpu_us_per_op",
    "ops_per_server_cpu_s": "server.ops_per_cpu_s",
    "server_cores": "server.cores",
    "client_busiest": "client.busiest_thread_share",
    "p50_us": "latency_ns.p50",
    "p99_us": "latency_ns.p99",
    "rss_per_connection": "server.rss_per_connection_bytes",
    "rss_per_stream": "streams.server_bytes_per_active_stream",
}


# Per-message figures from the client's WebSocket counters (the whole run, warm-up included):
# frame bytes as received (headers included) and payload bytes after inflating.
PER_MESSAGE = {
    "wire_bytes_per_message": "client.ws_wire_bytes_in",
    "payload_bytes_per_message": "client.ws_payload_bytes_in",
}


def per_message(report, path):
    n, v = _get(report, "client.ws_messages_in"), _get(report, path)
    return v / n if n and v is not None else None


def summarise(reports):
    """Medians over the runs whose status is ok and that measured the server."""
    ok = [r for r in reports if r.get("status") == "ok" and r.get("server")]
    s = {"runs": len(reports), "ok_runs": len(ok),
         "disturbed_runs": sum(1 for r in reports if r.get("_disturbed")),
         "errors": sum(_get(r, "errors.total") or 0 for r in reports),
         "lost": max((lost(r) for r in reports), default=0),
         "undelivered": max((undelivered(r) for r in reports), default=0)}
    for key, path in FIGURES.items():
        v = median(_get(r, path) for r in ok)
        if v is not None and key in ("p50_us", "p99_us"):
            v /= 1e3
        s[key] = v
    for key, path in PER_MESSAGE.items():
        s[key] = median(per_message(r, path) for r in ok)
    return s


def ratio(num, den):
    """num / den, or None when either is missing or den is 0."""
    if num is None or den is None or den == 0:
        return None
    return num / den


# --------------------------------------------------------------------------- output


def fmt(v, digits=1):
    return "-" if v is None else "{:,.{}f}".format(v, digits)


def fmt_x(v):
    return "-" if v is None else "%.2f×" % v


def pct(share):
    return "-" if share is None else "%.0f%%" % (share * 100)


def fmt_rate(v):
    if v is None:
        return "-"
    return "%.2fM" % (v / 1e6) if v >= 1e6 else "%.0fk" % (v / 1e3) if v >= 1e3 else "%.0f" % v


def runs_cell(m):
    """"ok/all", and how many of them other processes disturbed."""
    cell = "%d/%d" % (m["ok_runs"], m["runs"])
    return cell + (" (%d disturbed)" % m["disturbed_runs"] if m["disturbed_runs"] else "")


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def machine_line():
    """CPU model, cores and kernel, read from /proc."""
    model, cores = "unknown CPU", 0
    with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("processor"):
                cores += 1
            elif line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
    with open("/proc/sys/kernel/osrelease", encoding="ascii") as f:
        kernel = f.read().strip()
    with open("/proc/loadavg", encoding="ascii") as f:
        load = f.read().split()[0]
    return "%s, %d cores, kernel %s, load average %s at the start" % (model, cores, kernel, load)


def command_line(script, argv):
    return shlex.join(["bench/" + script] + list(argv))


def merge_peer_flags(flags, runs):
    """Adds to flags ({name: [distinct flag strings]}) the load flags each peer module added
    in the runs of one configuration."""
    for name, rs in runs.items():
        for r in rs:
            f = " ".join(r.get("_peer_flags", []))
            if f and f not in flags.setdefault(name, []):
                flags[name].append(f)
    return flags


def shorten(reason, limit=300):
    """A reason's first line, at most limit characters (the whole text is in the log)."""
    line = reason.splitlines()[0] if reason else ""
    return line if len(line) <= limit else line[:limit - 1] + "…"


def footer(skipped, machine, command, load=None, notes=(), flags=None):
    """The lines under every table: skip reasons, notes, machine, exact command, the load."""
    lines = [""]
    for name, why in skipped.items():
        lines.append("* %s skipped: %s" % (name, shorten(why)))
    for note in notes:
        lines.append("* " + note)
    lines.append("* Machine: %s (from /proc)." % machine)
    lines.append("* Command: `%s`" % command)
    if load:
        lines.append("* Load: `%s`" % load)
    for name, fs in (flags or {}).items():
        if fs:
            lines.append("  * %s's own load flags: %s" % (name, ", ".join("`%s`" % f for f in fs)))
    lines.append("")
    return lines


def skips_for(targets, what, failed=None):
    """{name: reason} of the targets that took no part in a table."""
    out = {}
    for t in targets:
        if t.skip:
            out[t.name] = t.skip
        elif not t.supports(what):
            out[t.name] = "does not serve %s" % what
        elif failed and t.name in failed:
            out[t.name] = failed[t.name]
    return out


def write_outputs(args, text, results):
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n",
                                   encoding="utf-8")
