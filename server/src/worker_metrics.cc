// Worker metrics: merge by (upstream, worker) and the Prometheus rendering (worker_metrics.h).
#include "server/worker_metrics.h"

#include <charconv>

#include "server/metrics.h"
#include "server/prom_text.h"

namespace rc::server {

std::string_view to_string(worker_restart_reason r) {
  static constexpr std::string_view names[] = {"exited",         "killed",      "ping_timeout",
                                               "protocol_error", "init_failed", "spawn_failed"};
  static_assert(std::size(names) == static_cast<size_t>(worker_restart_reason::count));
  return names[static_cast<size_t>(r)];
}

namespace {

constexpr std::string_view method_names[] = {"generate", "embed"};
static_assert(std::size(method_names) == static_cast<size_t>(worker_method::count));
constexpr std::string_view state_names[] = {"stopped", "starting", "ready", "stopping", "backoff"};

}  // namespace

void worker_metrics::count_error(std::string_view code) {
  for (auto& [c, n] : errors) {
    if (c == code) {
      ++n;
      return;
    }
  }
  errors.emplace_back(std::string(code), 1);
}

void worker_metrics::merge(const worker_metrics& o) {
  // A worker lives on one shard: its state is that shard's (the others keep the default).
  if (o.state != 0) state = o.state;
  inflight += o.inflight;
  for (size_t i = 0; i < restarts.size(); ++i) restarts[i] += o.restarts[i];
  for (size_t i = 0; i < requests.size(); ++i) requests[i] += o.requests[i];
  for (const auto& [c, n] : o.errors) {
    bool found = false;
    for (auto& [mc, mn] : errors) {
      if (mc == c) {
        mn += n;
        found = true;
        break;
      }
    }
    if (!found) errors.emplace_back(c, n);
  }
  first_token.merge(o.first_token);
}

size_t worker_metrics_index(std::vector<worker_metrics>& all, std::string_view upstream,
                            uint32_t worker) {
  for (size_t i = 0; i < all.size(); ++i)
    if (all[i].worker == worker && all[i].upstream == upstream) return i;
  worker_metrics m;
  m.upstream = std::string(upstream);
  m.worker = worker;
  all.push_back(std::move(m));
  return all.size() - 1;
}

namespace {

void sample(byte_buffer& out, std::string_view name, const worker_metrics& w,
            std::string_view extra_name, std::string_view extra_value, double value) {
  out.append(name);
  out.append("{upstream=\"");
  prom::label_value(out, w.upstream);
  out.append("\",worker=\"");
  out.append(std::to_string(w.worker));
  out.push_back('"');
  if (!extra_name.empty()) {
    out.push_back(',');
    out.append(extra_name);
    out.append("=\"");
    prom::label_value(out, extra_value);
    out.push_back('"');
  }
  out.append("} ");
  prom::value(out, value);
}

}  // namespace

void render_worker_metrics(const std::vector<shard_metrics>& shards, byte_buffer& out) {
  std::vector<worker_metrics> all;
  for (const shard_metrics& s : shards)
    for (const worker_metrics& w : s.workers) all[worker_metrics_index(all, w.upstream, w.worker)].merge(w);
  if (all.empty()) return;
  prom::family(out, "ringcast_worker_state", "gauge", "1 for the worker's current state.");
  for (const auto& w : all)
    for (size_t s = 0; s < std::size(state_names); ++s)
      sample(out, "ringcast_worker_state", w, "state", state_names[s], w.state == int64_t(s) ? 1 : 0);
  prom::family(out, "ringcast_worker_restarts_total", "counter", "Worker restarts, by why the process ended.");
  for (const auto& w : all)
    for (size_t r = 0; r < w.restarts.size(); ++r)
      sample(out, "ringcast_worker_restarts_total", w, "reason",
             to_string(static_cast<worker_restart_reason>(r)), double(w.restarts[r]));
  prom::family(out, "ringcast_worker_inflight", "gauge", "Calls in progress on the worker.");
  for (const auto& w : all) sample(out, "ringcast_worker_inflight", w, {}, {}, double(w.inflight));
  prom::family(out, "ringcast_worker_requests_total", "counter", "Calls started on the worker, by method.");
  for (const auto& w : all)
    for (size_t m = 0; m < w.requests.size(); ++m)
      sample(out, "ringcast_worker_requests_total", w, "method", method_names[m], double(w.requests[m]));
  prom::family(out, "ringcast_worker_errors_total", "counter", "Worker calls that ended in an error, by code.");
  for (const auto& w : all)
    for (const auto& [c, n] : w.errors) sample(out, "ringcast_worker_errors_total", w, "code", c, double(n));
  prom::family(out, "ringcast_worker_first_token_seconds", "histogram", "Worker call start to its first event.");
  for (const auto& w : all) {
    const latency_histogram& h = w.first_token;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < latency_histogram::bounds_us.size(); ++i) {
      cumulative += h.buckets[i];
      char le[32];
      auto [end, ec] = std::to_chars(le, le + sizeof le, latency_histogram::bounds_us[i] / 1e6);
      sample(out, "ringcast_worker_first_token_seconds_bucket", w, "le", std::string_view(le, size_t(end - le)),
             double(cumulative));
    }
    sample(out, "ringcast_worker_first_token_seconds_bucket", w, "le", "+Inf", double(h.count));
    sample(out, "ringcast_worker_first_token_seconds_sum", w, {}, {}, h.sum_us / 1e6);
    sample(out, "ringcast_worker_first_token_seconds_count", w, {}, {}, double(h.count));
  }
}

}  // namespace rc::server
