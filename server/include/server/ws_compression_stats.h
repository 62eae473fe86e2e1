// ws_compression_stats: a shard's permessage-deflate counters (ws_compression.h), as /metrics
// renders them (the ringcast_ws_deflate_* families; docs/operations.md "Metrics").
//
// Thread-safety: a value; each shard counts its own (ws_compression::snapshot on the shard).
#pragma once

#include <cstdint>
#include <vector>

#include "base/byte_buffer.h"

namespace rc::server {

struct shard_metrics;

struct ws_compression_stats {
  uint64_t compressed_messages = 0;  // messages run through a compressor (a fan-out event: once)
  uint64_t compress_bytes_in = 0;    // their payload bytes
  uint64_t compress_bytes_out = 0;   // their compressed bytes (without 00 00 ff ff)
  // Compressed fan-out deliveries to connections without context: the one that compressed the
  // event (per shard and window size), and those that reused it (compress-once hits).
  uint64_t fanout_compressed = 0;
  uint64_t fanout_shared = 0;
  uint64_t decompressed_messages = 0;
  uint64_t decompress_bytes_in = 0;
  uint64_t decompress_bytes_out = 0;
  uint64_t inflate_too_big = 0;      // closed 1009
  uint64_t inflate_bad_data = 0;     // closed 1007
  int64_t contexts = 0;              // connections holding a compression context (gauge)
  uint64_t contexts_refused = 0;     // answered server_no_context_takeover at contexts-max

  void merge(const ws_compression_stats& o);
};

// Appends the ringcast_ws_deflate_* families, one sample per shard.
void render_ws_compression_metrics(const std::vector<shard_metrics>& shards, byte_buffer& out);

}  // namespace rc::server
