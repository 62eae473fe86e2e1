// Upstream metrics: merge by name and the Prometheus rendering (see upstream_metrics.h).
#include "server/upstream_metrics.h"

#include <charconv>

#include "server/metrics.h"
#include "server/prom_text.h"

namespace rc::server {

std::string_view to_string(upstream_error_kind k) {
  static constexpr std::string_view names[] = {
      "connect_failed", "reset",    "timeout_connect", "timeout_first_byte", "timeout_idle",
      "timeout_total",  "protocol", "tls",             "http_4xx",           "http_429",
      "http_5xx",       "auth",     "no_endpoint",     "stream",
      "pool_exhausted"};
  static_assert(std::size(names) == static_cast<size_t>(upstream_error_kind::count));
  return names[static_cast<size_t>(k)];
}

upstream_endpoint_metrics& upstream_metrics::endpoint(std::string_view label) {
  for (upstream_endpoint_metrics& e : endpoints) {
    if (e.label == label) return e;
  }
  upstream_endpoint_metrics e;
  e.label = std::string(label);
  endpoints.push_back(std::move(e));
  return endpoints.back();
}

void upstream_metrics::merge(const upstream_metrics& o) {
  requests += o.requests;
  retries += o.retries;
  for (size_t i = 0; i < errors.size(); ++i) errors[i] += o.errors[i];
  first_token.merge(o.first_token);
  duration.merge(o.duration);
  added_latency.merge(o.added_latency);
  for (const upstream_endpoint_metrics& e : o.endpoints) {
    upstream_endpoint_metrics& mine = endpoint(e.label);
    mine.requests += e.requests;
    mine.breaker_open += e.breaker_open;
    mine.breaker_half_open += e.breaker_half_open;
    mine.idle += e.idle;
    mine.busy += e.busy;
  }
}

size_t upstream_metrics_index(std::vector<upstream_metrics>& all, std::string_view name) {
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i].name == name) return i;
  }
  upstream_metrics m;
  m.name = std::string(name);
  all.push_back(std::move(m));
  return all.size() - 1;
}

namespace {

void sample(byte_buffer& out, std::string_view name, std::string_view upstream,
            std::string_view extra_labels, double value) {
  out.append(name);
  out.append("{upstream=\"");
  prom::label_value(out, upstream);
  out.push_back('"');
  if (!extra_labels.empty()) {
    out.push_back(',');
    out.append(extra_labels);
  }
  out.append("} ");
  prom::value(out, value);
}

void histogram(byte_buffer& out, std::string_view name, std::string_view help,
               const std::vector<upstream_metrics>& all, latency_histogram upstream_metrics::*field) {
  prom::family(out, name, "histogram", help);
  std::string bucket = std::string(name) + "_bucket";
  for (const upstream_metrics& u : all) {
    const latency_histogram& h = u.*field;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < latency_histogram::bounds_us.size(); ++i) {
      cumulative += h.buckets[i];
      char le[32];
      auto [end, ec] = std::to_chars(le, le + sizeof le, latency_histogram::bounds_us[i] / 1e6);
      sample(out, bucket, u.name, "le=\"" + std::string(le, end) + "\"", double(cumulative));
    }
    sample(out, bucket, u.name, "le=\"+Inf\"", double(h.count));
    sample(out, std::string(name) + "_sum", u.name, {}, h.sum_us / 1e6);
    sample(out, std::string(name) + "_count", u.name, {}, double(h.count));
  }
}

std::string endpoint_label(std::string_view endpoint) {
  byte_buffer b;
  b.append("endpoint=\"");
  prom::label_value(b, endpoint);
  b.push_back('"');
  return std::string(b.view());
}

}  // namespace

void render_upstream_metrics(const std::vector<shard_metrics>& shards, byte_buffer& out) {
  std::vector<upstream_metrics> all;
  for (const shard_metrics& s : shards) {
    for (const upstream_metrics& u : s.upstreams) all[upstream_metrics_index(all, u.name)].merge(u);
  }
  if (all.empty()) return;
  prom::family(out, "ringcast_upstream_requests_total", "counter", "Upstream requests (attempts included).");
  for (const auto& u : all) sample(out, "ringcast_upstream_requests_total", u.name, {}, double(u.requests));
  prom::family(out, "ringcast_upstream_retries_total", "counter", "Upstream attempts after the first.");
  for (const auto& u : all) sample(out, "ringcast_upstream_retries_total", u.name, {}, double(u.retries));
  prom::family(out, "ringcast_upstream_errors_total", "counter", "Upstream failures, by kind.");
  for (const auto& u : all) {
    for (size_t k = 0; k < u.errors.size(); ++k) {
      if (u.errors[k] == 0) continue;
      std::string kind = "kind=\"" + std::string(to_string(static_cast<upstream_error_kind>(k))) + "\"";
      sample(out, "ringcast_upstream_errors_total", u.name, kind, double(u.errors[k]));
    }
  }
  histogram(out, "ringcast_upstream_first_token_seconds",
            "Upstream request start to its first event.", all, &upstream_metrics::first_token);
  histogram(out, "ringcast_upstream_duration_seconds", "Upstream request start to its end.", all,
            &upstream_metrics::duration);
  histogram(out, "ringcast_upstream_added_latency_seconds",
            "Upstream bytes read to their events handed to the client's connection.", all,
            &upstream_metrics::added_latency);
  prom::family(out, "ringcast_upstream_endpoint_requests_total", "counter", "Upstream requests per endpoint.");
  for (const auto& u : all) {
    for (const auto& e : u.endpoints)
      sample(out, "ringcast_upstream_endpoint_requests_total", u.name, endpoint_label(e.label), double(e.requests));
  }
  prom::family(out, "ringcast_upstream_endpoint_breaker_open", "gauge",
         "Shards whose circuit breaker for the endpoint is open.");
  for (const auto& u : all) {
    for (const auto& e : u.endpoints)
      sample(out, "ringcast_upstream_endpoint_breaker_open", u.name, endpoint_label(e.label), double(e.breaker_open));
  }
  prom::family(out, "ringcast_upstream_endpoint_connections", "gauge", "Pooled upstream connections, by state.");
  for (const auto& u : all) {
    for (const auto& e : u.endpoints) {
      std::string l = endpoint_label(e.label);
      sample(out, "ringcast_upstream_endpoint_connections", u.name, l + ",state=\"idle\"", double(e.idle));
      sample(out, "ringcast_upstream_endpoint_connections", u.name, l + ",state=\"busy\"", double(e.busy));
    }
  }
}

}  // namespace rc::server
