// connection: SSE responses and the outbound stream (ring, backpressure, slow consumers,
// heartbeats). See connection.h.
#include <algorithm>
#include <charconv>

#include "base/assert.h"
#include "core/clock.h"
#include "proto/http1_writer.h"
#include "proto/sse.h"
#include "proto/ws.h"
#include "server/connection.h"
#include "server/shard.h"
#include "server/ws_endpoint.h"

namespace rc::server {
namespace {

// How much of the backlog is moved into the socket's send queue at a time. Small enough that a
// control frame queued behind it leaves soon; large enough for one sendmsg to carry a burst.
constexpr uint64_t send_window_bytes = 128 * 1024;
// Fan-out deliveries up to this size are copied into the socket's own buffer instead of queued
// as shared slices. A WebSocket fan-out delivery is a few hundred bytes in two slices (the
// subscriber's first fragment and the shared continuation), an SSE one a few hundred in one:
// copying them is cheaper than reference counts taken and dropped, iovecs walked at send and
// completion, and sendmsg's iovec import in the kernel; a turn's deliveries to one subscriber
// leave as one contiguous send. Larger entries stay shared.
constexpr uint32_t copy_entry_bytes_max = 2048;
// The socket's buffer is released when drained, so a subscriber's first copied delivery of a
// turn allocates it, and it is held until its send completes. Sized to the burst this shard
// copied into one connection in its last turn that copied any (at most the cap below), it is
// allocated once per subscriber and turn, and no larger than the burst: a fixed 4 KiB held
// N x 4 KiB per shard for one ~300-byte publication to N subscribers.
constexpr size_t burst_reserve_bytes_max = 64 * 1024;

// Per shard (a shard is one thread): the largest burst copied into one connection's buffer in
// the current turn and in the last turn before it that copied any.
struct copy_burst {
  uint64_t turn = ~uint64_t{0};
  size_t this_turn = 0;
  size_t last = 0;
};
thread_local copy_burst burst;

}  // namespace

void connection::begin_sse(header_list headers) {
  RC_ASSERT(phase_ == phase::handling && mode_ == mode::http);
  byte_buffer& o = out();
  http1::response_writer w(o, shard_.date());
  w.start(200);
  w.header("Content-Type", "text/event-stream; charset=utf-8");
  // Every proxy and browser must pass events through at once (API.md, Common).
  w.header("Cache-Control", "no-cache");
  w.header("X-Accel-Buffering", "no");
  for (const auto& [name, value] : headers) w.header(name, value);
  w.header("x-request-id", std::string_view(current_.request_id, current_.request_id_len));
  write_common_headers(w);
  if (current_.version == http1::version::http_1_1) {
    if (!current_.keep_alive) w.connection(http1::connection_header::close);
    w.end_chunked_head();
    sse_chunked_ = true;
  } else {
    // HTTP/1.0 has no chunked coding: the stream is delimited by closing the connection.
    current_.keep_alive = false;
    w.connection(http1::connection_header::close);
    w.end_head_no_body();
    sse_chunked_ = false;
  }
  mode_ = mode::sse;
  auto& m = shard_.metrics();
  --m.connections_open[static_cast<size_t>(protocol::http)];
  ++m.connections_open[static_cast<size_t>(protocol::sse)];
  uint64_t now = count_request(200);
  if (access_ && access_->open) access_->first_byte_ns = now;
  last_send_ms_ = shard_.loop().now_ms();
  flush();
  if (uint32_t retry = shard_.config().sse_retry_ms; retry > 0) {
    byte_buffer frame;
    sse::write_retry(frame, retry);
    stream_push_sse(frame.view());
  }
  update_timer();
}

void connection::end_sse() {
  if (mode_ != mode::sse) return;
  close_stream_producers();
  if (sse_chunked_ && !closing()) stream_push_copy("0\r\n\r\n");
  access_end(200, monotonic_ns());
  auto& m = shard_.metrics();
  --m.connections_open[static_cast<size_t>(protocol::sse)];
  ++m.connections_open[static_cast<size_t>(protocol::http)];
  mode_ = mode::http;
  complete_request();
}

bool connection::stream_push(outbound_entry e) {
  if (mode_ == mode::http || phase_ == phase::closing || closing()) return false;
  uint64_t now = shard_.loop().now_ms();
  if (!ring_ && stream_socket::queued_bytes() < send_window_bytes) {
    // A client that keeps up: nothing waits in a backlog, so straight into the send queue.
    append_entry(std::move(e));
    flush();
    last_send_ms_ = now;
    return true;
  }
  if (!ring_) ring_ = shard_.acquire_ring();
  auto r = ring_->push(std::move(e));
  switch (r.status) {
    case outbound_ring::push_status::closed:
      return false;
    case outbound_ring::push_status::full:
      slow_consumer();
      return false;
    case outbound_ring::push_status::ok_pause:
      if (above_high_since_ms_ == 0) {
        above_high_since_ms_ = now;
        ++shard_.metrics().backpressure_pauses;
        producers_.for_each([](stream_producer& p) { p.on_pause(); });
      } else if (now - above_high_since_ms_ >= shard_.config().slow_consumer_ms) {
        slow_consumer();
        return false;
      }
      break;
    case outbound_ring::push_status::ok:
      break;
  }
  last_send_ms_ = now;
  flush();
  return true;
}

bool connection::stream_push_shared(const shared_buffer& first, uint32_t offset, uint32_t len,
                                    const shared_buffer* second) {
  auto second_len = second ? static_cast<uint32_t>(second->size()) : 0u;
  if (len + second_len <= copy_entry_bytes_max) {
    if (byte_buffer* out = stream_direct()) {
      uint64_t turn = shard_.loop().stats().loop_turns;
      if (burst.turn != turn) {
        if (burst.this_turn) burst.last = burst.this_turn;
        burst.this_turn = 0;
        burst.turn = turn;
      }
      size_t need = out->size() + len + second_len;
      // Room for the burst at once: doubling from the first delivery's size moved it repeatedly.
      if (out->capacity() < need)
        out->reserve(std::max(need, std::min(burst.last, burst_reserve_bytes_max)));
      out->append(std::string_view(first.data() + offset, len));
      if (second_len) out->append(std::string_view(second->data(), second_len));
      burst.this_turn = std::max(burst.this_turn, out->size());
      stream_written();
      return true;
    }
  }
  if (!second_len) return stream_push(outbound_entry{{first, offset, len}, {}});
  return stream_push(outbound_entry{{first, offset, len}, {*second, 0, second_len}});
}

byte_buffer* connection::stream_direct() {
  if (mode_ == mode::http || phase_ == phase::closing || closing() || ring_ ||
      stream_socket::queued_bytes() >= send_window_bytes) {
    return nullptr;
  }
  return &out();
}

void connection::stream_written() {
  last_send_ms_ = shard_.loop().now_ms();
  flush();
}

bool connection::stream_push_copy(std::string_view bytes) {
  if (byte_buffer* out = stream_direct()) {
    out->append(bytes);
    stream_written();
    return true;
  }
  auto buf = shared_buffer::copy_of(bytes);
  auto len = static_cast<uint32_t>(buf.size());
  return stream_push(outbound_entry{{std::move(buf), 0, len}, {}});
}

bool connection::stream_push_sse(std::string_view frame) {
  if (!sse_chunked_) return stream_push_copy(frame);
  if (byte_buffer* out = stream_direct()) {
    http1::write_chunk(*out, frame);
    stream_written();
    return true;
  }
  byte_buffer chunk(frame.size() + 16);
  http1::write_chunk(chunk, frame);
  return stream_push_copy(chunk.view());
}

void connection::send_control(std::string_view bytes) {
  if (closing()) return;
  out().append(bytes);
  flush();
}

void connection::attach(stream_producer& p) {
  producers_.push_back(p);
  if (above_high_since_ms_ != 0) p.on_pause();
}

void connection::close_stream_producers() {
  while (stream_producer* p = producers_.pop_front()) p->on_stream_closed();
}

void connection::fill_send_queue() {
  if (!ring_) return;
  bool resume = false;
  while (ring_->queued_bytes() > 0) {
    uint64_t queued = stream_socket::queued_bytes();
    if (queued >= send_window_bytes) break;
    resume |= ring_->pop(send_window_bytes - queued,
                         [this](outbound_entry&& e) { append_entry(std::move(e)); });
  }
  if (!ring_->above_high()) above_high_since_ms_ = 0;
  if (resume) producers_.for_each([](stream_producer& p) { p.on_resume(); });
  release_ring_if_drained();
}

void connection::append_entry(outbound_entry&& e) {
  if (e.second.len && e.bytes() <= copy_entry_bytes_max) {
    byte_buffer& o = out();
    o.append(std::string_view(e.first.buf.data() + e.first.offset, e.first.len));
    if (e.second.len) o.append(std::string_view(e.second.buf.data() + e.second.offset, e.second.len));
    return;
  }
  append_shared(std::move(e.first.buf), e.first.offset, e.first.len);
  if (e.second.len) append_shared(std::move(e.second.buf), e.second.offset, e.second.len);
}

void connection::release_ring_if_drained() {
  if (ring_ && ring_->queued_bytes() == 0) shard_.release_ring(std::move(ring_));
}

void connection::slow_consumer() {
  ++shard_.metrics().slow_consumers;
  note_close_reason(close_reason::slow_consumer);
  if (ring_) ring_->close();
  if (mode_ == mode::ws) {
    close_websocket(1008, "slow consumer");
    close_stream_producers();
  } else {
    close_stream_producers();
    // An SSE stream has no way to say why ahead of its backlog: end it.
    phase_ = phase::closing;
    abort();
  }
}

void connection::on_stream_timer() {
  const auto& cfg = shard_.config();
  uint64_t now = shard_.loop().now_ms();
  if (mode_ == mode::ws) {
    ws_->on_timer(now);
  } else if (now - last_send_ms_ >= cfg.heartbeat_ms) {
    // Comment lines keep proxies and clients from timing out a quiet stream; they carry no id,
    // so they never move a client's Last-Event-ID.
    byte_buffer ping;
    sse::write_comment(ping, "ping");
    stream_push_sse(ping.view());
  }
  update_timer();
}

}  // namespace rc::server
