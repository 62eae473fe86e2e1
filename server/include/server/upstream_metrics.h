// Metrics of the upstream engines (kind "openai"; other kinds may use the same shape): per
// upstream and per endpoint, kept in the shard's shard_metrics (one writer, the shard) and
// rendered as totals over the shards, labelled by upstream (and endpoint).
//
//   ringcast_upstream_requests_total{upstream}            requests started (attempts included)
//   ringcast_upstream_retries_total{upstream}             attempts after the first
//   ringcast_upstream_errors_total{upstream,kind}         failures by kind (client_error names,
//                                                         http_4xx, http_429, http_5xx, auth,
//                                                         no_endpoint, stream)
//   ringcast_upstream_first_token_seconds{upstream}       request start -> first upstream event
//   ringcast_upstream_duration_seconds{upstream}          request start -> its end
//   ringcast_upstream_added_latency_seconds{upstream}     upstream bytes in -> events handed to
//                                                         the client's connection (ringcast's own
//                                                         cost per read)
//   ringcast_upstream_endpoint_requests_total{upstream,endpoint}
//   ringcast_upstream_endpoint_breaker_open{upstream,endpoint}   1 while the breaker is open
//   ringcast_upstream_endpoint_connections{upstream,endpoint,state}  idle / busy (gauges)
//
// Entries are found by name and never removed, so an engine replaced by a reload keeps counting
// into the same series.
//
// Thread-safety: a shard's entries belong to that shard; snapshots are values.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/byte_buffer.h"
#include "server/latency_histogram.h"

namespace rc::server {

struct shard_metrics;

enum class upstream_error_kind : uint8_t {
  connect_failed,
  reset,
  timeout_connect,
  timeout_first_byte,
  timeout_idle,
  timeout_total,
  protocol,
  tls,
  http_4xx,
  http_429,
  http_5xx,
  auth,
  no_endpoint,
  stream,  // an error event inside a 200 stream, or a malformed event
  pool_exhausted,  // no free connection in the pool within connect_ms
  count
};
std::string_view to_string(upstream_error_kind k);

struct upstream_endpoint_metrics {
  std::string label;  // url::to_string of the endpoint
  uint64_t requests = 0;
  int64_t breaker_open = 0;  // gauge: 0 or 1 per shard
  int64_t breaker_half_open = 0;  // gauge: 0 or 1 per shard (cooled down, letting a probe by)
  int64_t idle = 0;          // gauges
  int64_t busy = 0;
};

struct upstream_metrics {
  std::string name;
  uint64_t requests = 0;
  uint64_t retries = 0;
  std::array<uint64_t, static_cast<size_t>(upstream_error_kind::count)> errors{};
  latency_histogram first_token;
  latency_histogram duration;
  latency_histogram added_latency;
  std::vector<upstream_endpoint_metrics> endpoints;

  upstream_endpoint_metrics& endpoint(std::string_view label);
  void merge(const upstream_metrics& o);
};

// The entry named `name` in `all`, created if absent. Returns its index (stable).
size_t upstream_metrics_index(std::vector<upstream_metrics>& all, std::string_view name);

// Appends the families above, totals over `shards`, to `out` (Prometheus text format).
void render_upstream_metrics(const std::vector<shard_metrics>& shards, byte_buffer& out);

}  // namespace rc::server
