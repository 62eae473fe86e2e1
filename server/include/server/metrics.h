// Metrics: what every shard counts, and how /metrics renders it.
//
// Each shard owns a shard_metrics and is its only writer: plain integers, no atomics, no locks.
// /metrics asks every shard for a copy through the mailboxes (the copy is made on the shard that
// owns the numbers) and renders the Prometheus text format with one series per shard (label
// shard="0".."N-1") and no pre-summed total: aggregation belongs to the query (sum()). Process-wide
// figures (ringcast_shards, ringcast_uptime_seconds) have no shard label; the upstream and worker
// families are totals over the shards without a shard label (upstream_metrics.h, worker_metrics.h).
//
// Every name starts with ringcast_. Histograms have fixed buckets so shards can be merged.
//
// Thread-safety: a shard_metrics belongs to its shard; snapshots are values that move.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "base/byte_buffer.h"
#include "core/reactor.h"
#include "server/access_log.h"
#include "server/cluster_metrics.h"
#include "server/latency_histogram.h"
#include "server/resolver.h"
#include "server/responses_cluster.h"
#include "server/session_store.h"
#include "server/upstream_metrics.h"
#include "server/worker_metrics.h"
#include "server/ws_compression_stats.h"

namespace rc::server {

// Status codes get their own series; anything else is counted as "other".
inline constexpr std::array<uint16_t, 27> tracked_statuses = {
    101, 200, 201, 202, 204, 206, 304, 400, 401, 403, 404, 405, 408, 409, 411, 413,
    414, 415, 422, 426, 429, 431, 500, 501, 502, 503, 504};
inline constexpr size_t status_slot_count = tracked_statuses.size() + 2;  // + 505 + other
size_t status_slot(int status);
// The label of a slot ("200", ..., "other").
std::string_view status_slot_label(size_t slot);

enum class protocol : uint8_t { http, sse, ws, count };
// Why admission refused something: the label of ringcast_admission_rejected_total.
enum class reject_reason : uint8_t {
  auth, rate, streams, queue_full, shed, deadline, origin, permission, count
};
std::string_view reject_reason_label(reject_reason r);
enum class timeout_kind : uint8_t { header, idle, write, count };

// Number of routes and parse-error kinds; checked against the router and parser tables.
inline constexpr size_t route_slots = 32;
inline constexpr size_t parse_error_slots = 32;

struct shard_metrics {
  uint64_t connections_accepted = 0;
  uint64_t connections_closed = 0;
  uint64_t connections_refused = 0;  // over max_connections
  std::array<int64_t, static_cast<size_t>(protocol::count)> connections_open{};
  std::array<std::array<uint64_t, status_slot_count>, route_slots> requests{};
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  std::array<uint64_t, parse_error_slots> parse_errors{};
  std::array<uint64_t, static_cast<size_t>(timeout_kind::count)> timeouts{};
  latency_histogram request_latency;

  // Streams.
  uint64_t backpressure_pauses = 0;  // times a connection's backlog reached the high watermark
  uint64_t slow_consumers = 0;       // connections dropped for not reading
  uint64_t ws_messages_in = 0;
  uint64_t ws_messages_out = 0;
  uint64_t ws_protocol_errors = 0;   // sessions failed with 1002/1007/1009
  int64_t ws_sessions = 0;           // WebSocket protocol sessions held (gauge; see ws_endpoint)
  uint64_t rings_in_use = 0;         // outbound rings held by connections (gauge)
  int64_t inbound_held_bytes = 0;    // partial client input held (gauge; see inbound_budget)
  uint64_t inbound_budget_refusals = 0;  // connections refused for the shard's inbound budget
  uint64_t memory_collections = 0;   // free memory given back to the system after a spike

  // Topics.
  int64_t subscribers = 0;           // live topic subscriptions on this shard (gauge)
  int64_t topics_homed = 0;          // topics whose home is this shard (gauge)
  uint64_t publications = 0;         // publications sequenced here (home shard)
  uint64_t deliveries = 0;           // events queued to subscribers on this shard
  uint64_t topic_resets = 0;         // resumptions that found their gap older than the history
  uint64_t topic_replays = 0;        // events replayed from history to resuming subscribers

  // Engines.
  int64_t engine_streams_active = 0;   // generations in progress (gauge)
  uint64_t engine_streams_started = 0;
  uint64_t engine_streams_completed = 0;
  uint64_t engine_streams_failed = 0;
  uint64_t engine_streams_cancelled = 0;  // client gone, cancel action, deadline
  uint64_t engine_events = 0;             // deltas and tool-call fragments delivered
  latency_histogram first_event_latency;  // request start to the engine's first event
  // Retained upstream sessions (stateful responses-ws upstreams, session_store.h).
  session_store_stats upstream_sessions{};
  int64_t upstream_sessions_idle = 0;  // gauge

  // Admission.
  uint64_t admitted = 0;             // API requests and WebSocket actions that passed admission
  std::array<uint64_t, static_cast<size_t>(reject_reason::count)> rejected{};
  latency_histogram queue_wait;      // time generations waited for an engine slot
  int64_t engine_running = 0;        // generations holding a slot (gauge)
  int64_t engine_waiting = 0;        // generations waiting for one (gauge)

  // Broker.
  int64_t queue_depth = 0;           // broker messages waiting to be processed (gauge)
  int64_t broker_processing = 0;     // broker messages being processed (gauge)
  int64_t broker_partitions = 0;     // cluster mode: broker partitions this shard works (gauge)
  int64_t active_users = 0;          // users with messages waiting or processing (gauge)
  uint64_t broker_enqueued = 0;
  latency_histogram broker_wait;     // enqueue to processing

  // Stored responses in the cluster bucket (responses_cluster.h).
  responses_kv_stats responses_kv{};

  // Upstream engines, by upstream name (upstream_metrics.h).
  std::vector<upstream_metrics> upstreams;
  // jsonrpc workers, by upstream and index (worker_metrics.h).
  std::vector<worker_metrics> workers;

  // NATS and JetStream (cluster_metrics.h): rendered per shard only, never merged.
  cluster_metrics cluster;

  reactor_stats reactor{};  // copied from the reactor when a snapshot is taken
  access_log_stats access_log{};  // copied from the shard's access log likewise
  resolver_stats resolver{};      // and from the shard's resolver
  ws_compression_stats ws_deflate{};  // and from the shard's ws_compression
  uint64_t uptime_s = 0;

  void merge(const shard_metrics& o);
};

// {"status","shards","connections","queue_depth","uptime_s"}: GET /v1/system/health and the WS
// system.health action.
void write_health(byte_buffer& out, const std::vector<shard_metrics>& shards, bool draining);

// Renders the snapshots (index = shard) in the Prometheus text format (version 0.0.4).
void render_prometheus(const std::vector<shard_metrics>& shards, byte_buffer& out);

}  // namespace rc::server
