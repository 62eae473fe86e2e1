#include "load/report_timeline.h"

namespace rc::load {

void write_histograms(json::writer& w, const shard_results& merged) {
  w.key("histograms");
  w.begin_object();
  for (size_t i = 0; i < hist_count; ++i) {
    auto id = static_cast<hist_id>(i);
    const histogram& h = merged.histogram_of(id);
    if (h.count() == 0) continue;
    w.key(hist_name(id));
    w.begin_object();
    w.string_member("unit", "ns");
    w.uint64_member("count", h.count());
    w.key("buckets");
    w.begin_array();
    h.for_each_bucket([&w](uint64_t value, uint64_t count) {
      w.begin_array();
      w.uint64(value);
      w.uint64(count);
      w.end_array();
    });
    w.end_array();
    w.end_object();
  }
  w.end_object();
}

void write_timeline(json::writer& w, const timeline& t) {
  w.key("timeline");
  w.begin_object();
  w.uint64_member("interval_ms", t.interval_ns() / 1'000'000);
  w.key("points");
  w.begin_array();
  for (const timeline_point& p : t.points()) {
    w.begin_object();
    w.float64_member("t_s", static_cast<double>(p.end_ns) / 1e9);
    w.uint64_member("ops", p.ops);
    w.float64_member(
        "ops_per_s",
        p.length_ns > 0 ? static_cast<double>(p.ops) * 1e9 / static_cast<double>(p.length_ns) : 0);
    w.uint64_member("errors", p.errors);
    if (p.server_cpu_cores) {
      w.float64_member("server_cpu_cores", *p.server_cpu_cores);
    } else {
      w.null_member("server_cpu_cores");
    }
    if (p.server_rss_bytes) {
      w.uint64_member("server_rss_bytes", *p.server_rss_bytes);
    } else {
      w.null_member("server_rss_bytes");
    }
    w.key("latencies");
    w.begin_object();
    for (size_t i = 0; i < hist_count; ++i) {
      const latency_summary& l = p.latencies[i];
      if (l.count == 0) continue;
      w.key(hist_name(static_cast<hist_id>(i)));
      w.begin_object();
      w.uint64_member("count", l.count);
      w.uint64_member("p50", l.p50);
      w.uint64_member("p99", l.p99);
      w.uint64_member("max", l.max);
      w.end_object();
    }
    w.end_object();
    w.end_object();
  }
  w.end_array();
  w.end_object();
}

}  // namespace rc::load
