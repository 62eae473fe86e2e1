// The ops snapshot's JSON (ops_snapshot.h).
#include "server/ops_snapshot.h"

#include <algorithm>
#include <string>

#include "proto/json_writer.h"
#include "server/metrics.h"

namespace rc::server {
namespace {

// What each shard (and the total) reports: gauges as they are, counters as rates.
struct shard_figures {
  int64_t connections[3] = {0, 0, 0};  // http, sse, ws
  double requests_per_s = 0;
  double ws_messages_per_s = 0;
  double deliveries_per_s = 0;
  double publications_per_s = 0;
  int64_t engine_running = 0;
  int64_t engine_queue_depth = 0;
  int64_t broker_queue_depth = 0;
  int64_t broker_processing = 0;
  uint64_t mailbox_backlog = 0;
  uint64_t outbound_rings = 0;
  uint64_t slow_consumers_total = 0;
  int64_t topic_subscribers = 0;

  void add(const shard_figures& o) {
    for (int i = 0; i < 3; ++i) connections[i] += o.connections[i];
    requests_per_s += o.requests_per_s;
    ws_messages_per_s += o.ws_messages_per_s;
    deliveries_per_s += o.deliveries_per_s;
    publications_per_s += o.publications_per_s;
    engine_running += o.engine_running;
    engine_queue_depth += o.engine_queue_depth;
    broker_queue_depth += o.broker_queue_depth;
    broker_processing += o.broker_processing;
    mailbox_backlog += o.mailbox_backlog;
    outbound_rings += o.outbound_rings;
    slow_consumers_total += o.slow_consumers_total;
    topic_subscribers += o.topic_subscribers;
  }
};

uint64_t requests_answered(const shard_metrics& m) {
  uint64_t n = 0;
  for (const auto& by_status : m.requests)
    for (uint64_t v : by_status) n += v;
  return n;
}

// Growth of a counter per second (0 when it went backwards, which a counter never does).
double rate(uint64_t now, uint64_t before, double seconds) {
  return seconds > 0 && now > before ? double(now - before) / seconds : 0.0;
}

latency_histogram histogram_growth(const latency_histogram& now, const latency_histogram& before) {
  latency_histogram d;
  for (size_t i = 0; i < d.buckets.size(); ++i)
    d.buckets[i] = now.buckets[i] > before.buckets[i] ? now.buckets[i] - before.buckets[i] : 0;
  d.count = now.count > before.count ? now.count - before.count : 0;
  d.sum_us = now.sum_us > before.sum_us ? now.sum_us - before.sum_us : 0;
  return d;
}

void write_figures(json::writer& w, const shard_figures& f) {
  w.key("connections");
  w.begin_object();
  w.int64_member("http", f.connections[0]);
  w.int64_member("sse", f.connections[1]);
  w.int64_member("ws", f.connections[2]);
  w.end_object();
  w.float64_member("requests_per_s", f.requests_per_s);
  w.float64_member("ws_messages_per_s", f.ws_messages_per_s);
  w.float64_member("deliveries_per_s", f.deliveries_per_s);
  w.float64_member("publications_per_s", f.publications_per_s);
  w.int64_member("engine_running", f.engine_running);
  w.int64_member("engine_queue_depth", f.engine_queue_depth);
  w.int64_member("broker_queue_depth", f.broker_queue_depth);
  w.int64_member("broker_processing", f.broker_processing);
  w.uint64_member("mailbox_backlog", f.mailbox_backlog);
  w.uint64_member("outbound_rings", f.outbound_rings);
  w.uint64_member("slow_consumers_total", f.slow_consumers_total);
  w.int64_member("topic_subscribers", f.topic_subscribers);
}

// One upstream across shards.
struct upstream_figures {
  std::string name;
  uint64_t requests = 0;
  uint64_t errors = 0;
  size_t breakers = 0;       // (shard, endpoint) breakers seen
  size_t breakers_open = 0;  // ... of which open
  size_t breakers_half_open = 0;  // ... of which half-open
  std::vector<std::string> endpoints;
};

std::vector<upstream_figures> gather_upstreams(const std::vector<shard_metrics>& shards) {
  std::vector<upstream_figures> out;
  for (const shard_metrics& m : shards) {
    for (const upstream_metrics& u : m.upstreams) {
      auto it = std::find_if(out.begin(), out.end(),
                             [&](const upstream_figures& f) { return f.name == u.name; });
      if (it == out.end()) {
        out.emplace_back();
        out.back().name = u.name;
        it = out.end() - 1;
      }
      it->requests += u.requests;
      for (uint64_t e : u.errors) it->errors += e;
      for (const upstream_endpoint_metrics& e : u.endpoints) {
        ++it->breakers;
        if (e.breaker_open > 0) ++it->breakers_open;
        if (e.breaker_open == 0 && e.breaker_half_open > 0) ++it->breakers_half_open;
        if (std::find(it->endpoints.begin(), it->endpoints.end(), e.label) == it->endpoints.end())
          it->endpoints.push_back(e.label);
      }
    }
  }
  return out;
}

void write_quantile(json::writer& w, std::string_view key, const latency_histogram& h, double q) {
  if (h.count == 0) {
    w.null_member(key);
  } else {
    w.float64_member(key, histogram_quantile_ms(h, q));
  }
}

}  // namespace

double histogram_quantile_ms(const latency_histogram& h, double q) {
  const auto& bounds = latency_histogram::bounds_us;
  double rank = q * double(h.count);
  uint64_t below = 0;
  for (size_t i = 0; i < h.buckets.size(); ++i) {
    uint64_t n = h.buckets[i];
    if (n == 0 || double(below + n) < rank) {
      below += n;
      continue;
    }
    double lower = i == 0 ? 0.0 : double(bounds[i - 1]);
    if (i == bounds.size()) return lower / 1000.0;  // +Inf: all we know is "above the last bound"
    double upper = double(bounds[i]);
    double within = std::clamp((rank - double(below)) / double(n), 0.0, 1.0);
    return (lower + (upper - lower) * within) / 1000.0;
  }
  return double(bounds.back()) / 1000.0;
}

void write_ops_snapshot(byte_buffer& out, const std::vector<shard_metrics>& shards,
                        const ops_header& header, uint64_t now_us, ops_baseline& baseline) {
  bool have = baseline.have && baseline.shards.size() == shards.size();
  double seconds = have && now_us > baseline.at_us ? double(now_us - baseline.at_us) / 1e6 : 0.0;
  if (!have) seconds = 0;  // first snapshot: every rate is 0

  json::writer w(out);
  w.begin_object();
  w.int64_member("v", 1);
  w.int64_member("time_ms", header.time_ms);
  w.float64_member("uptime_s", header.uptime_s);
  w.uint64_member("interval_ms", header.interval_ms);
  w.string_member("node", header.node);
  w.string_member("version", header.version);
  w.boolean_member("draining", header.draining);

  // Shards, and their total.
  std::vector<ops_baseline::shard_counters> counters(shards.size());
  shard_figures total;
  latency_histogram first_token;
  uint64_t refusals = 0;
  std::array<uint64_t, static_cast<size_t>(reject_reason::count)> by_reason{};
  w.key("shards");
  w.begin_array();
  for (size_t s = 0; s < shards.size(); ++s) {
    const shard_metrics& m = shards[s];
    ops_baseline::shard_counters& c = counters[s];
    c.requests = requests_answered(m);
    c.ws_messages = m.ws_messages_in;
    c.deliveries = m.deliveries;
    c.publications = m.publications;
    ops_baseline::shard_counters before = have ? baseline.shards[s] : c;
    shard_figures f;
    for (size_t p = 0; p < 3; ++p) f.connections[p] = m.connections_open[p];
    f.requests_per_s = rate(c.requests, before.requests, seconds);
    f.ws_messages_per_s = rate(c.ws_messages, before.ws_messages, seconds);
    f.deliveries_per_s = rate(c.deliveries, before.deliveries, seconds);
    f.publications_per_s = rate(c.publications, before.publications, seconds);
    f.engine_running = m.engine_running;
    f.engine_queue_depth = m.engine_waiting;
    f.broker_queue_depth = m.queue_depth;
    f.broker_processing = m.broker_processing;
    f.mailbox_backlog = m.reactor.mailbox_backlog;
    f.outbound_rings = m.rings_in_use;
    f.slow_consumers_total = m.slow_consumers;
    f.topic_subscribers = m.subscribers;
    total.add(f);
    first_token.merge(m.first_event_latency);
    for (size_t r = 0; r < by_reason.size(); ++r) {
      by_reason[r] += m.rejected[r];
      refusals += m.rejected[r];
    }
    w.begin_object();
    w.uint64_member("shard", s);
    write_figures(w, f);
    w.end_object();
  }
  w.end_array();
  w.key("totals");
  w.begin_object();
  write_figures(w, total);
  w.end_object();

  // First token over the interval.
  latency_histogram grown = have ? histogram_growth(first_token, baseline.first_token)
                                 : latency_histogram{};
  w.key("first_token_ms");
  w.begin_object();
  w.uint64_member("count", grown.count);
  write_quantile(w, "p50", grown, 0.50);
  write_quantile(w, "p99", grown, 0.99);
  w.end_object();

  w.key("refusals");
  w.begin_object();
  w.uint64_member("total", refusals);
  w.float64_member("per_s", rate(refusals, have ? baseline.refusals : refusals, seconds));
  w.key("by_reason");
  w.begin_object();
  for (size_t r = 0; r < by_reason.size(); ++r)
    w.uint64_member(reject_reason_label(static_cast<reject_reason>(r)), by_reason[r]);
  w.end_object();
  w.end_object();

  // Upstreams.
  std::vector<upstream_figures> ups = gather_upstreams(shards);
  std::vector<ops_baseline::upstream_counters> up_counters;
  w.key("upstreams");
  w.begin_array();
  for (const upstream_figures& u : ups) {
    ops_baseline::upstream_counters before{u.name, u.requests, u.errors};
    if (have) {
      for (const auto& b : baseline.upstreams)
        if (b.name == u.name) before = b;
    }
    up_counters.push_back({u.name, u.requests, u.errors});
    std::string_view breaker = "mixed";
    if (u.breakers_open == 0 && u.breakers_half_open == 0) breaker = "closed";
    if (u.breakers > 0 && u.breakers_open == u.breakers) breaker = "open";
    if (u.breakers > 0 && u.breakers_half_open == u.breakers) breaker = "half_open";
    w.begin_object();
    w.string_member("name", u.name);
    w.float64_member("requests_per_s", rate(u.requests, before.requests, seconds));
    w.float64_member("errors_per_s", rate(u.errors, before.errors, seconds));
    w.string_member("breaker", breaker);
    w.uint64_member("endpoints", u.endpoints.size());
    w.end_object();
  }
  w.end_array();

  // Workers: each lives on one shard; merged by (upstream, index) as /metrics does.
  std::vector<worker_metrics> workers;
  for (const shard_metrics& m : shards) {
    for (const worker_metrics& wm : m.workers)
      workers[worker_metrics_index(workers, wm.upstream, wm.worker)].merge(wm);
  }
  static constexpr std::string_view state_names[] = {"stopped", "starting", "ready", "stopping",
                                                     "backoff"};
  w.key("workers");
  w.begin_array();
  for (const worker_metrics& wm : workers) {
    uint64_t restarts = 0;
    for (uint64_t r : wm.restarts) restarts += r;
    bool known = wm.state >= 0 && size_t(wm.state) < std::size(state_names);
    w.begin_object();
    w.string_member("upstream", wm.upstream);
    w.uint64_member("worker", wm.worker);
    w.string_member("state", known ? state_names[wm.state] : "unknown");
    w.int64_member("inflight", wm.inflight);
    w.uint64_member("restarts", restarts);
    w.end_object();
  }
  w.end_array();

  if (header.cluster) {
    w.key("cluster");
    w.begin_object();
    w.boolean_member("available", header.cluster_available);
    w.boolean_member("connected", header.cluster_connected);
    w.string_member("reason", header.cluster_available ? std::string_view() : header.cluster_reason);
    w.end_object();
  } else {
    w.null_member("cluster");
  }
  w.end_object();

  baseline.have = true;
  baseline.at_us = now_us;
  baseline.shards = std::move(counters);
  baseline.first_token = first_token;
  baseline.refusals = refusals;
  baseline.upstreams = std::move(up_counters);
}

}  // namespace rc::server
