// ws_compression: permessage-deflate (RFC 7692) on the server's WebSocket endpoints — the
// shard's shared codec state, and the per-connection state of a connection that negotiated it.
//
// Memory policy (--ws-deflate*, docs/operations.md):
// * Inflating needs no per-connection state: the server always answers
//   client_no_context_takeover, so each client message inflates alone with the shard's one
//   inflater (15-bit window, ~40 KiB per shard).
// * A connection that keeps its compression context (the client did not ask for
//   server_no_context_takeover) owns a compressor with --ws-deflate-window-bits and
//   --ws-deflate-mem-level (about 2^(bits+2) + 2^(level+9) + 6 KiB: 38 KiB at 12/5), allocated
//   on its first compressed message. At most --ws-deflate-contexts-max connections per shard
//   hold one; later connections are answered server_no_context_takeover.
// * Everything else — responses on connections without context, and topic fan-out — is
//   compressed by the shard's shared compressors (one per window size in use, reset per message).
//
// Fan-out compresses once: a subscriber's message is its own prefix fragment ({"id":..,) and the
// event's shared continuation (fanout_frames.h). For connections without context the prefix is
// sent as a stored deflate block (made once per subscription and connection) and the shared part
// is compressed once per event, per shard and per window size, as a fresh deflate stream; the two
// decode as one message. Connections that keep context compress the whole message themselves.
//
// What the shard compressed, inflated and shared is counted in counters() and the inflater's
// stats, and reaches /metrics through snapshot() (ws_compression_stats.h).
//
// Thread-safety: shard-local (one instance per shard thread); ws_deflate_state belongs to its
// connection's shard.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "core/shared_buffer.h"
#include "proto/ws_deflate.h"
#include "server/ws_compression_stats.h"

namespace rc::server {

struct server_config;

// The shard's shared codec state.
class ws_compression {
 public:
  // This shard thread's instance.
  static ws_compression& local();

  ws::inflater& inflater() { return inflater_; }
  // The shared compressor for a window size (reset after every message).
  ws::deflater& shared_deflater(uint8_t window_bits);
  // The compressed form of a fan-out continuation frame (header + payload), as a continuation
  // frame carrying a fresh deflate stream of its payload; the last event's result is cached per
  // window size, so every subscriber of one event on this shard shares one compression.
  shared_buffer shared_continuation(const shared_buffer& frame, uint8_t window_bits);

  // Connections of this shard holding a compression context (see the top).
  uint32_t contexts = 0;
  // This shard's counters (ws_compression_stats.h), without making the instance.
  static ws_compression_stats& counters();
  // counters() with the inflater's figures and the contexts gauge, for a metrics snapshot.
  static ws_compression_stats snapshot();

 private:
  ws::inflater inflater_;
  static constexpr size_t window_sizes = ws::deflate_window_bits_max - ws::deflate_window_bits_min + 1;
  std::unique_ptr<ws::deflater> shared_[window_sizes];
  struct cached {
    shared_buffer source;  // held so its address can't be reused by another event
    shared_buffer result;
  };
  cached cache_[window_sizes];
};

// The permessage-deflate state of one connection.
class ws_deflate_state {
 public:
  ws_deflate_state(const ws::deflate_agreement& a, const server_config& cfg);
  ~ws_deflate_state();
  ws_deflate_state(const ws_deflate_state&) = delete;
  ws_deflate_state& operator=(const ws_deflate_state&) = delete;

  // Whether a message of this many payload bytes is sent compressed (--ws-deflate-min-bytes).
  bool worth_compressing(size_t payload_bytes) const { return payload_bytes >= min_bytes_; }
  // Appends a whole compressed message frame (RSV1) for `parts`, with this connection's context
  // or the shard's shared compressor.
  void write_message(byte_buffer& out, ws::opcode op, std::span<const std::string_view> parts);
  // A fan-out message (prefix fragment + shared continuation frame), compressed: returns the two
  // frames to queue. `prefix_frame` is the subscriber's text frame (FIN clear) as fanout_frames
  // makes it.
  struct frames {
    shared_buffer first;
    shared_buffer second;  // empty when the message is one frame
  };
  frames fanout(const shared_buffer& prefix_frame, const shared_buffer& continuation);
  static std::string_view frame_payload(const shared_buffer& frame);

 private:
  bool context_;  // the connection keeps a compression context
  uint8_t window_bits_;
  uint8_t mem_level_;
  uint32_t min_bytes_;
  std::unique_ptr<ws::deflater> deflater_;  // with context, from the first compressed message
  // The last subscription prefix seen, as a compressed first fragment (a stored block).
  shared_buffer prefix_source_;
  shared_buffer prefix_stored_;
};

}  // namespace rc::server
