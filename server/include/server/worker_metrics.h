// Metrics of jsonrpc workers (jsonrpc_engine.h): one entry per worker (upstream, index), kept
// in the owning shard's shard_metrics (the owner is the only writer) and rendered as totals over
// the shards, labelled upstream and worker:
//
//   ringcast_worker_state{upstream,worker,state}          1 for the worker's current state
//                                                         (stopped, starting, ready, stopping,
//                                                         backoff), 0 for the others
//   ringcast_worker_restarts_total{upstream,worker,reason}  restarts, by why the previous
//                                                         process ended (exited, killed,
//                                                         ping_timeout, protocol_error,
//                                                         init_failed, spawn_failed)
//   ringcast_worker_inflight{upstream,worker}             calls in progress (gauge)
//   ringcast_worker_requests_total{upstream,worker,method}  calls started (generate, embed)
//   ringcast_worker_errors_total{upstream,worker,code}    calls that ended in an error, by code
//   ringcast_worker_first_token_seconds{upstream,worker}  call start to its first event
//
// Entries are found by (upstream, worker) and never removed: a worker replaced by a reload
// keeps counting into the same series.
//
// Thread-safety: a shard's entries belong to that shard; snapshots are values.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/byte_buffer.h"
#include "server/latency_histogram.h"

namespace rc::server {

struct shard_metrics;

enum class worker_restart_reason : uint8_t {
  exited, killed, ping_timeout, protocol_error, init_failed, spawn_failed, count
};
std::string_view to_string(worker_restart_reason r);

enum class worker_method : uint8_t { generate, embed, count };

struct worker_metrics {
  std::string upstream;
  uint32_t worker = 0;
  int64_t state = 0;      // worker_state (worker_board.h) as a number; -1 in merged totals
  int64_t inflight = 0;   // gauge
  std::array<uint64_t, static_cast<size_t>(worker_restart_reason::count)> restarts{};
  std::array<uint64_t, static_cast<size_t>(worker_method::count)> requests{};
  std::vector<std::pair<std::string, uint64_t>> errors;  // by code
  latency_histogram first_token;
  uint64_t state_owner = 0;  // which process of this worker writes `state` (not rendered)

  void count_error(std::string_view code);
  void merge(const worker_metrics& o);
};

// The entry for (upstream, worker) in `all`, created if absent. Returns its index (stable).
size_t worker_metrics_index(std::vector<worker_metrics>& all, std::string_view upstream,
                            uint32_t worker);

// Appends the families above, totals over `shards`, to `out` (nothing without workers).
void render_worker_metrics(const std::vector<shard_metrics>& shards, byte_buffer& out);

}  // namespace rc::server
