// The ops snapshot: what GET /dashboard/ops sends every interval (docs/operations.md,
// "Dashboard"; schema docs/schemas/ops/snapshot.schema.json), computed from the shards' metrics.
//
// Counters become rates per second over the time since the previous snapshot of the same stream:
// an ops_baseline keeps what that stream saw last. The first snapshot of a stream has no baseline,
// so its rates are 0 and its first-token figures empty. First-token p50/p99 come from the
// histogram's growth over the interval (generations whose first token came in it), interpolated
// within the fixed buckets of latency_histogram, in milliseconds.
//
// Thread-safety: pure functions of their arguments; a baseline belongs to one stream.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/byte_buffer.h"
#include "server/latency_histogram.h"

namespace rc::server {

struct shard_metrics;

// The counters of one stream's previous snapshot.
struct ops_baseline {
  struct shard_counters {
    uint64_t requests = 0;
    uint64_t ws_messages = 0;
    uint64_t deliveries = 0;
    uint64_t publications = 0;
  };
  struct upstream_counters {
    std::string name;
    uint64_t requests = 0;
    uint64_t errors = 0;
  };
  bool have = false;     // false until the first snapshot
  uint64_t at_us = 0;    // monotonic time of the previous snapshot
  std::vector<shard_counters> shards;
  latency_histogram first_token;
  uint64_t refusals = 0;
  std::vector<upstream_counters> upstreams;
};

// The figures of a snapshot that don't come from the shards' metrics.
struct ops_header {
  int64_t time_ms = 0;       // wall clock
  double uptime_s = 0;
  uint32_t interval_ms = 1000;
  std::string_view node;     // node id (cluster) or <hostname>-<port>
  std::string_view version;
  bool draining = false;
  // The answering shard's view of the cluster; `cluster` false: single node ("cluster": null).
  bool cluster = false;
  bool cluster_available = false;
  bool cluster_connected = false;
  std::string_view cluster_reason;
};

// Writes the snapshot's JSON object for `shards` (index = shard) at monotonic time `now_us`, and
// moves `baseline` to it.
void write_ops_snapshot(byte_buffer& out, const std::vector<shard_metrics>& shards,
                        const ops_header& header, uint64_t now_us, ops_baseline& baseline);

// The q-quantile (0 < q < 1) of a histogram's samples in milliseconds, interpolated linearly
// within the bucket it falls in (the +Inf bucket answers its lower bound). REQUIRES: h.count > 0.
double histogram_quantile_ms(const latency_histogram& h, double q);

}  // namespace rc::server
