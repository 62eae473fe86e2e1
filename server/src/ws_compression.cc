#include "server/ws_compression.h"

#include "base/assert.h"
#include "server/config.h"

namespace rc::server {
namespace {

// The shared compressors favour ratio: they are few (one per window size in use per shard).
constexpr uint8_t shared_mem_level = 8;

// This shard thread's instance once made (snapshot() must not make it).
thread_local ws_compression* made = nullptr;

void count_compression(size_t in, size_t out) {
  ws_compression_stats& c = ws_compression::counters();
  ++c.compressed_messages;
  c.compress_bytes_in += in;
  c.compress_bytes_out += out;
}

}  // namespace

ws_compression& ws_compression::local() {
  // One per shard thread, made on the first negotiated connection (never on a server that does
  // not compress).
  thread_local ws_compression instance;
  made = &instance;
  return instance;
}

ws_compression_stats& ws_compression::counters() {
  thread_local ws_compression_stats stats;
  return stats;
}

ws_compression_stats ws_compression::snapshot() {
  ws_compression_stats s = counters();
  if (made) {
    const ws::inflate_stats& i = made->inflater_.stats();
    s.decompressed_messages = i.messages;
    s.decompress_bytes_in = i.bytes_in;
    s.decompress_bytes_out = i.bytes_out;
    s.inflate_too_big = i.too_big;
    s.inflate_bad_data = i.bad_data;
    s.contexts = made->contexts;
  }
  return s;
}

ws::deflater& ws_compression::shared_deflater(uint8_t window_bits) {
  RC_ASSERT(window_bits >= ws::deflate_window_bits_min &&
            window_bits <= ws::deflate_window_bits_max);
  auto& d = shared_[window_bits - ws::deflate_window_bits_min];
  if (!d) d = std::make_unique<ws::deflater>(window_bits, shared_mem_level);
  return *d;
}

shared_buffer ws_compression::shared_continuation(const shared_buffer& frame,
                                                  uint8_t window_bits) {
  cached& c = cache_[window_bits - ws::deflate_window_bits_min];
  if (c.source.data() == frame.data() && c.result.size() != 0) {
    ++counters().fanout_shared;
    return c.result;
  }
  ++counters().fanout_compressed;
  std::string_view payload = ws_deflate_state::frame_payload(frame);
  byte_buffer out(payload.size() / 2 + ws::frame_header_bytes_max + 64);
  byte_buffer z(payload.size() / 2 + 64);
  shared_deflater(window_bits).compress(payload, z, ws::deflate_context::reset);
  count_compression(payload.size(), z.size());
  ws::write_frame(out, ws::opcode::continuation, z.view(), ws::fin::yes);
  c.source = frame;
  c.result = shared_buffer::copy_of(out.view());
  return c.result;
}

ws_deflate_state::ws_deflate_state(const ws::deflate_agreement& a, const server_config& cfg)
    : context_(!a.server_no_context_takeover),
      window_bits_(a.server_window_bits),
      mem_level_(static_cast<uint8_t>(cfg.ws_deflate_mem_level)),
      min_bytes_(cfg.ws_deflate_min_bytes) {
  if (context_) ++ws_compression::local().contexts;
}

ws_deflate_state::~ws_deflate_state() {
  if (context_) --ws_compression::local().contexts;
}

std::string_view ws_deflate_state::frame_payload(const shared_buffer& frame) {
  ws::frame_header h;
  auto st = ws::parse_frame_header(frame.data(), frame.size(), h);
  RC_ASSERT(st == ws::parse_status::complete && h.header_bytes + h.payload_bytes == frame.size());
  return frame.view().substr(h.header_bytes);
}

void ws_deflate_state::write_message(byte_buffer& out, ws::opcode op,
                                     std::span<const std::string_view> parts) {
  byte_buffer z;
  if (context_) {
    if (!deflater_) deflater_ = std::make_unique<ws::deflater>(window_bits_, mem_level_);
    deflater_->compress(parts, z, ws::deflate_context::keep);
  } else {
    ws_compression::local().shared_deflater(window_bits_).compress(parts, z,
                                                                   ws::deflate_context::reset);
  }
  size_t in = 0;
  for (std::string_view p : parts) in += p.size();
  count_compression(in, z.size());
  ws::write_compressed_frame(out, op, z.view());
}

ws_deflate_state::frames ws_deflate_state::fanout(const shared_buffer& prefix_frame,
                                                  const shared_buffer& continuation) {
  std::string_view prefix = frame_payload(prefix_frame);
  if (context_) {
    // The connection's own stream: the whole message through its compressor, in order.
    std::string_view parts[] = {prefix, frame_payload(continuation)};
    byte_buffer out;
    write_message(out, ws::opcode::text, parts);
    return {shared_buffer::copy_of(out.view()), {}};
  }
  if (prefix_source_.data() != prefix_frame.data()) {
    byte_buffer stored;
    ws::write_stored_block(stored, prefix);
    byte_buffer out;
    ws::write_compressed_frame(out, ws::opcode::text, stored.view(), ws::fin::no);
    prefix_source_ = prefix_frame;
    prefix_stored_ = shared_buffer::copy_of(out.view());
  }
  return {prefix_stored_, ws_compression::local().shared_continuation(continuation, window_bits_)};
}

}  // namespace rc::server
