// Metrics of a shard's NATS connection and JetStream use (cluster.h), copied into its
// shard_metrics when /metrics asks, and rendered per shard (label shard="0".."N-1", like every
// per-shard family: sum them in the query). Nothing is rendered without --nats.
//
//   ringcast_cluster_available                 1 when the shard can use NATS (connected, streams ready)
//   ringcast_nats_connected                    1 while the shard's connection is up
//   ringcast_nats_reconnects_total             connections re-established after a loss
//   ringcast_nats_messages_total{direction}    messages received (in) and sent (out)
//   ringcast_nats_bytes_total{direction}       their payload bytes
//   ringcast_nats_pending_bytes                bytes buffered while disconnected (bounded)
//   ringcast_nats_dropped_publishes_total      publishes refused because that buffer was full
//   ringcast_jetstream_publish_seconds         JetStream publish to its ack (histogram)
//   ringcast_jetstream_pending_acks            JetStream publishes awaiting their ack
//   ringcast_jetstream_errors_total{kind}      failed publishes (publish) and API requests (api)
//   ringcast_jetstream_consumers_recreated_total  ordered consumers recreated (gap, reconnect)
//
// Thread-safety: a plain value, like shard_metrics.
#pragma once

#include <cstdint>
#include <vector>

#include "base/byte_buffer.h"
#include "server/latency_histogram.h"

namespace rc::server {

struct shard_metrics;

struct cluster_metrics {
  bool enabled = false;  // this shard has a cluster (--nats)
  bool available = false;
  bool connected = false;
  uint64_t reconnects = 0;
  uint64_t msgs_in = 0, msgs_out = 0;
  uint64_t bytes_in = 0, bytes_out = 0;
  uint64_t pending_bytes = 0;
  uint64_t dropped_publishes = 0;
  uint64_t pending_acks = 0;
  uint64_t publish_errors = 0;
  uint64_t api_errors = 0;
  uint64_t consumers_recreated = 0;
  latency_histogram publish_latency;
};

// Appends the families above for the shards that have a cluster (nothing when none has).
void render_cluster_metrics(const std::vector<shard_metrics>& shards, byte_buffer& out);

}  // namespace rc::server
