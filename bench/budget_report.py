"""bench/budget's HTML report: one self-contained page (PNG plots by matplotlib inlined as data:
URIs) with, per scenario, the budget table, percentile curves (with the budgets marked), latency
over time, throughput and server CPU over time, and the same scenario compared across earlier
runs or other servers (--compare DIR: an earlier --out directory).

Single-threaded; uses matplotlib's Agg backend (no display).
"""

import base64
import html
import io
import json
import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: E402

import budgetlib  # noqa: E402

PERCENTILE_TICKS = [0.0, 0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999]


def png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def curve(buckets):
    """(x, y) of a percentile curve: x = 1/(1-p) (log axis), y = latency in ms."""
    pts = [(1.0 / (1.0 - level / 100.0), value / 1e6)
           for value, level, _ in budgetlib.percentile_iteration(buckets) if level < 100.0]
    return [x for x, _ in pts], [y for _, y in pts]


def percentile_axis(ax, x_max):
    ticks = [1.0 / (1.0 - p) for p in PERCENTILE_TICKS if 1.0 / (1.0 - p) <= max(10.0, x_max * 10)]
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{(1 - 1 / x) * 100:g}%"))
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    ax.grid(True, which="both", alpha=0.3)


def log_latency_axis(ax):
    ax.set_yscale("log")
    plain = FuncFormatter(lambda y, _: f"{y:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda y, _: ""))


def histograms(result):
    report = result.get("load") or {}
    return {k: v for k, v in (report.get("histograms") or {}).items() if v.get("count")}


def plot_percentiles(result):
    hists = histograms(result)
    if not hists:
        return None
    fig, axes = plt.subplots(1, len(hists), figsize=(5 * len(hists), 3.6), squeeze=False)
    for ax, (name, h) in zip(axes[0], hists.items()):
        x, y = curve(h["buckets"])
        ax.plot(x, y, drawstyle="steps-post", label="measured")
        for b in result["budgets"]:
            if b.get("histogram") == name:
                p = b["percentile"]
                bx = 1.0 / (1.0 - p / 100.0) if p < 100 else (max(x) if x else 1.0)
                ax.plot([bx], [b["limit"] / 1e6], "v", color="red" if not b["ok"] else "green")
        ax.set_title(f"{name} ({h['count']:,} samples; triangles: budgets)")
        percentile_axis(ax, max(x) if x else 1.0)
        log_latency_axis(ax)
    return png(fig)


def plot_timeline(result):
    timeline = (result.get("load") or {}).get("timeline") or {}
    points = timeline.get("points") or []
    if not points:
        return None
    t = [p["t_s"] for p in points]
    fig, (lat, thr) = plt.subplots(1, 2, figsize=(12, 3.6))
    names = sorted({n for p in points for n in (p.get("latencies") or {})})
    for name in names:
        for q, style in (("p50", "-"), ("p99", "--")):
            ys = [(p.get("latencies") or {}).get(name, {}).get(q) for p in points]
            ys = [y / 1e6 if y is not None else math.nan for y in ys]
            lat.plot(t, ys, style, marker=".", label=f"{name} {q}")
    log_latency_axis(lat)
    lat.set_xlabel("seconds into the window")
    lat.set_ylabel("latency (ms)")
    lat.set_title("latency over time")
    lat.grid(True, alpha=0.3)
    if names:
        lat.legend(fontsize="small")
    thr.plot(t, [p["ops_per_s"] for p in points], color="tab:blue", marker=".")
    thr.set_xlabel("seconds into the window")
    thr.set_ylabel(f"{(result.get('load') or {}).get('unit', 'ops')} per second", color="tab:blue")
    thr.set_ylim(bottom=0)
    thr.grid(True, alpha=0.3)
    cpu = [p.get("server_cpu_cores") for p in points]
    if any(c is not None for c in cpu):
        ax2 = thr.twinx()
        ax2.plot(t, [c if c is not None else math.nan for c in cpu], color="tab:red", marker=".")
        ax2.set_ylabel("server CPU (cores)", color="tab:red")
        ax2.set_ylim(bottom=0)
    thr.set_title("throughput and server CPU over time")
    return png(fig)


def load_compared(dirs, name):
    out = []
    for d in dirs:
        path = os.path.join(d, name + ".json")
        try:
            with open(path, encoding="utf-8") as f:
                out.append(json.load(f))
        except (OSError, ValueError):
            continue
    return out


def plot_compare(result, others):
    runs = [result] + [o for o in others if histograms(o)]
    hists = histograms(result)
    if len(runs) < 2 or not hists:
        return None
    fig, axes = plt.subplots(1, len(hists), figsize=(5 * len(hists), 3.6), squeeze=False)
    for ax, name in zip(axes[0], hists):
        x_max = 1.0
        for run in runs:
            h = histograms(run).get(name)
            if not h:
                continue
            x, y = curve(h["buckets"])
            x_max = max([x_max] + x)
            ax.plot(x, y, drawstyle="steps-post", label=run.get("label") or "?")
        ax.set_title(name)
        percentile_axis(ax, x_max)
        log_latency_axis(ax)
        ax.legend(fontsize="small")
    return png(fig)


def figures_row(run):
    report = run.get("load") or {}
    server = report.get("server") or {}
    lat = budgetlib.percentile(report, "latency", 99.0) if report else None
    return [run.get("label") or "?", run.get("status", "?"),
            f"{report.get('per_second', 0):,.0f}/s" if report else "-",
            budgetlib.format_ns(lat),
            f"{server['cpu_us_per_op']:.2f}us" if server.get("cpu_us_per_op") is not None else "-"]


def table(headers, rows):
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def section(result, compare_dirs):
    name = result["scenario"]
    parts = [f"<h2 id=\"{html.escape(name)}\">{html.escape(name)} "
             f"<span class=\"{result['status']}\">{result['status'].upper()}</span></h2>"]
    if result.get("description"):
        parts.append(f"<p>{html.escape(result['description'])}</p>")
    if result["status"] == "error":
        parts.append(f"<pre>{html.escape(result.get('error') or '')}</pre>")
        return "\n".join(parts)
    parts.append(table(["budget", "limit", "measured", "result"], [
        [html.escape(b["label"]), html.escape(b["limit_text"]), html.escape(b["measured_text"]),
         "ok" if b["ok"] else "<b class=\"fail\">BLOWN</b>"] for b in result["budgets"]]))
    m, load = result.get("machine") or {}, result.get("load") or {}
    if m:
        other = (load.get("machine") or {}).get("other_process_cores")
        parts.append(f"<p>Machine: {m.get('nproc')} CPUs, {html.escape(str(m.get('cpu_model')))}, "
                     f"kernel {html.escape(str(m.get('kernel')))}; load average after the run "
                     f"{html.escape(' '.join(m.get('loadavg', [])))}"
                     + (f"; other processes used {other:.2f} cores during the window"
                        + (" (<b>disturbed</b>)" if result.get("disturbed") else "")
                        if other is not None else "") + ".</p>")
    for cmd in (result.get("commands") or {}).values():
        parts.append(f"<pre>{html.escape(cmd)}</pre>")
    for title, img in (("Percentile distribution", plot_percentiles(result)),
                       ("Over time", plot_timeline(result))):
        if img:
            parts.append(f"<h3>{title}</h3><img alt=\"{title}\" src=\"{img}\">")
    others = load_compared(compare_dirs, name)
    if others:
        parts.append("<h3>Compared</h3>")
        parts.append(table(["run", "status", "throughput", "latency p99", "server CPU/op"],
                           [[html.escape(c) for c in figures_row(r)] for r in [result] + others]))
        img = plot_compare(result, others)
        if img:
            parts.append(f"<img alt=\"compared\" src=\"{img}\">")
    return "\n".join(parts)


def write(results, compare_dirs, out):
    """Writes out/report.html; returns its path."""
    summary = table(["scenario", "status", "budgets blown"], [
        [f"<a href=\"#{html.escape(r['scenario'])}\">{html.escape(r['scenario'])}</a>",
         f"<span class=\"{r['status']}\">{r['status']}</span>",
         html.escape(", ".join(b["label"] for b in r["budgets"] if not b["ok"]) or "-")]
        for r in results])
    label = html.escape(results[0].get("label") or "") if results else ""
    body = "\n".join(section(r, compare_dirs) for r in results)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ringcast latency budgets</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin: 0.5em 0; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }}
.pass {{ color: #080; }} .fail {{ color: #c00; }} .error {{ color: #a50; }}
img {{ max-width: 100%; }} pre {{ white-space: pre-wrap; font-size: 0.85em; }}
</style></head><body>
<h1>ringcast latency budgets</h1>
<p>Run: {label}</p>
{summary}
{body}
</body></html>
"""
    path = os.path.join(out, "report.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path
