#include "server/ws_endpoint.h"

#include <algorithm>

#include "base/assert.h"
#include "proto/http1_writer.h"
#include "server/connection.h"
#include "server/shard.h"
#include "server/ws_compression.h"

namespace rc::server {

ws_endpoint::ws_endpoint(connection& c, shard_server& s, std::unique_ptr<ws_handler> handler)
    : conn_(c),
      shard_(s),
      handler_(std::move(handler)),
      last_in_ms_(s.loop().now_ms()),
      last_out_ms_(s.loop().now_ms()) {}

ws_endpoint::~ws_endpoint() {
  if (session_) --shard_.metrics().ws_sessions;
}

uint64_t ws_endpoint::connection_id() const {
  return conn_.id();
}

void ws_endpoint::start() {
  handler_->on_open(*this);
}

ws::session& ws_endpoint::session() {
  if (!session_) {
    session_ = std::make_unique<ws::session>(
        ws::role::server, ws::message_handler{&ws_endpoint::deliver, this}, session_out_,
        ws::session_options{.message_bytes_max = shard_.config().ws_message_bytes_max,
                            .too_big_reason = "message too big (raise --ws-message-bytes-max)",
                            .inflate = deflate_ ? &ws_compression::local().inflater() : nullptr});
    ++shard_.metrics().ws_sessions;
  }
  return *session_;
}

void ws_endpoint::on_data(std::string_view in) {
  // After our close frame the handler is gone, but the peer's answer still completes the
  // handshake.
  if (session_closed_ || (gone_ && !close_started_)) return;
  last_in_ms_ = shard_.loop().now_ms();
  after_session_step(session().feed(in));
  // Back between messages, open, without wslay's context: the session holds nothing a fresh one
  // wouldn't start with, so it goes (a chat client waiting for its stream holds none).
  if (session_ && !session_->has_context() && session_->between_messages() &&
      session_->state() == ws::session_state::open) {
    session_.reset();
    --shard_.metrics().ws_sessions;
  }
}

void ws_endpoint::deliver(void* self, ws::message_kind kind, std::string_view payload) {
  auto* ep = static_cast<ws_endpoint*>(self);
  auto& m = ep->shard_.metrics();
  ++m.ws_messages_in;
  // Pings and pongs are answered by the session; only data reaches the handler.
  if (kind != ws::message_kind::text && kind != ws::message_kind::binary) return;
  if (ep->close_started_ || ep->gone_) return;
  // Pongs for pings that arrived before this message (between its fragments, or between it and
  // the previous one) leave before anything the handler sends in answer to it.
  ep->flush_session_output();
  if (ep->held_ || (ep->handler_->admits_messages() && !ep->conn_.ws_admission_ready())) {
    ep->held_bytes_ += payload.size();
    if (ep->held_bytes_ > held_bytes_max) {
      ep->close(1008, "too many messages waiting for admission");
      return;
    }
    if (!ep->held_) ep->held_ = std::make_unique<std::deque<held_message>>();
    ep->held_->push_back({kind, std::string(payload)});
    return;
  }
  ep->handler_->on_message(*ep, kind, payload);
}

void ws_endpoint::release_held() {
  while (held_ && !close_started_ && !gone_) {
    if (handler_->admits_messages() && !conn_.ws_admission_ready()) return;
    held_message m = std::move(held_->front());
    held_->pop_front();
    held_bytes_ -= m.payload.size();
    if (held_->empty()) held_.reset();  // the queue exists only while a message waits
    handler_->on_message(*this, m.kind, m.payload);
  }
}

void ws_endpoint::after_session_step(ws::session_state st) {
  flush_session_output();
  if (st == ws::session_state::closed) {
    // Close handshake complete, or a protocol error answered with its close frame: the server
    // closes TCP first (RFC 6455 §7.1.1).
    if (uint16_t code = session_->error_code(); code != 0) {
      ++shard_.metrics().ws_protocol_errors;
      conn_.note_close_reason(close_reason::error);
    }
    // Otherwise the handshake is complete: ours (its reason was noted when we started it) or the
    // peer's.
    conn_.note_close_reason(close_reason::client_closed);
    session_closed_ = true;
    on_peer_gone();
    conn_.close_after_flush(shard_.config().linger_ms);
  } else if (st == ws::session_state::closing && !close_started_) {
    conn_.note_close_reason(close_reason::client_closed);
    close_started_ = true;
    close_started_ms_ = shard_.loop().now_ms();
    close_deadline_ms_ = close_started_ms_ + close_wait_ms;
  }
}

void ws_endpoint::flush_session_output() {
  if (session_out_.empty()) return;
  conn_.send_control(session_out_.view());
  session_out_.clear();
  last_out_ms_ = shard_.loop().now_ms();
}

void ws_endpoint::on_peer_gone() {
  if (gone_) return;
  gone_ = true;
  handler_->on_close(*this);
}

bool ws_endpoint::send_entry(outbound_entry e) {
  if (close_started_ || gone_) return false;
  last_out_ms_ = shard_.loop().now_ms();
  ++shard_.metrics().ws_messages_out;
  return conn_.stream_push(std::move(e));
}

bool ws_endpoint::send_fragments(const shared_buffer& first, const shared_buffer& continuation) {
  if (close_started_ || gone_) return false;
  last_out_ms_ = shard_.loop().now_ms();
  ++shard_.metrics().ws_messages_out;
  return conn_.stream_push_shared(first, 0, static_cast<uint32_t>(first.size()), &continuation);
}

bool ws_endpoint::send_text(std::string_view payload) {
  return send_message(ws::opcode::text, payload);
}

bool ws_endpoint::send_binary(std::string_view payload) {
  return send_message(ws::opcode::binary, payload);
}

bool ws_endpoint::send_message(ws::opcode op, std::string_view payload) {
  if (close_started_ || gone_) return false;
  bool compress = deflate_ && deflate_->worth_compressing(payload.size());
  if (byte_buffer* out = conn_.stream_direct()) {
    // A client that keeps up: framed straight into the socket's buffer, no copy of a copy.
    last_out_ms_ = shard_.loop().now_ms();
    ++shard_.metrics().ws_messages_out;
    if (compress) {
      deflate_->write_message(*out, op, std::span<const std::string_view>(&payload, 1));
    } else {
      ws::write_frame(*out, op, payload);
    }
    conn_.stream_written();
    return true;
  }
  byte_buffer frame(payload.size() + ws::frame_header_bytes_max);
  if (compress) {
    deflate_->write_message(frame, op, std::span<const std::string_view>(&payload, 1));
  } else {
    ws::write_frame(frame, op, payload);
  }
  auto buf = shared_buffer::copy_of(frame.view());
  auto len = static_cast<uint32_t>(buf.size());
  return send_entry(outbound_entry{{std::move(buf), 0, len}, {}});
}

bool ws_endpoint::send_fanout(const shared_buffer& prefix, const shared_buffer& continuation) {
  if (!deflate_ ||
      !deflate_->worth_compressing(ws_deflate_state::frame_payload(prefix).size() +
                                   ws_deflate_state::frame_payload(continuation).size())) {
    return send_fragments(prefix, continuation);
  }
  if (close_started_ || gone_) return false;  // before compressing: a context must not advance
  ws_deflate_state::frames f = deflate_->fanout(prefix, continuation);
  auto first_len = static_cast<uint32_t>(f.first.size());
  auto second_len = static_cast<uint32_t>(f.second.size());
  return send_entry({{std::move(f.first), 0, first_len}, {std::move(f.second), 0, second_len}});
}

void ws_endpoint::enable_deflate(const ws::deflate_agreement& agreement) {
  RC_ASSERT(!session_);
  deflate_ = std::make_unique<ws_deflate_state>(agreement, shard_.config());
}

void ws_endpoint::send_control_text(std::string_view payload) {
  if (close_started_ || gone_) return;
  byte_buffer frame(payload.size() + ws::frame_header_bytes_max);
  ws::write_frame(frame, ws::opcode::text, payload);
  conn_.send_control(frame.view());
  last_out_ms_ = shard_.loop().now_ms();
}

void ws_endpoint::pause_flow_for(uint64_t ms) {
  if (!flow_paused_) {
    flow_paused_ = true;
    send_control_text(R"({"event":"flow.pause"})");
  }
  if (!flow_timer_) {
    flow_timer_ = std::make_unique<timer>();
    flow_timer_->bind<ws_endpoint, &ws_endpoint::on_flow_timer>(this);
  }
  shard_.loop().arm_after_ms(*flow_timer_, ms);
}

void ws_endpoint::on_flow_timer() {
  if (!flow_paused_) return;
  flow_paused_ = false;
  send_control_text(R"({"event":"flow.resume"})");
}

void ws_endpoint::refuse_input(uint16_t code, std::string_view reason) {
  if (gone_ || !session_) return;
  session_->refuse(code, reason);
  after_session_step(session_->state());
}

void ws_endpoint::close(uint16_t code, std::string_view reason, ws_close_order order) {
  if (close_started_ || gone_) return;
  // Slow consumers, drains and idle timeouts noted their reason before closing.
  conn_.note_close_reason(code == 1000 ? close_reason::complete : close_reason::error);
  close_started_ = true;
  close_started_ms_ = shard_.loop().now_ms();
  close_deadline_ms_ = close_started_ms_ + close_wait_ms;
  session().close(code, reason);
  if (order == ws_close_order::after_backlog && !session_out_.empty()) {
    // Behind the events already queued (a drain's error events, the last deltas). If the stream
    // refuses it (the backlog overflowed), the backlog is dropped and the frame goes now.
    if (conn_.stream_push_copy(session_out_.view())) {
      session_out_.clear();
      last_out_ms_ = close_started_ms_;
    }
  }
  flush_session_output();
  // The handler's work ends with the close frame: nothing it sends would be read.
  on_peer_gone();
}

uint64_t ws_endpoint::next_timer_ms() const {
  const auto& cfg = shard_.config();
  if (close_started_) return close_deadline_ms_;
  uint64_t ping_at = last_out_ms_ + cfg.heartbeat_ms;
  uint64_t idle_at = last_in_ms_ + cfg.ws_idle_timeout_ms;
  return ping_at < idle_at ? ping_at : idle_at;
}

void ws_endpoint::on_timer(uint64_t now_ms) {
  const auto& cfg = shard_.config();
  if (close_started_) {
    if (now_ms < close_deadline_ms_) return;
    uint64_t give_up_ms =
        close_started_ms_ + std::max<uint64_t>(cfg.write_timeout_ms, close_wait_ms);
    if (conn_.queued_bytes() > 0 && now_ms < give_up_ms) {
      // The close frame hasn't left yet (a reader that paused): aborting now would cut the frame
      // being written. Wait for it to leave, within the write timeout.
      close_deadline_ms_ = std::min(now_ms + close_wait_ms, give_up_ms);
      return;
    }
    conn_.abort();  // the peer never answered our close
    return;
  }
  if (now_ms >= last_in_ms_ + cfg.ws_idle_timeout_ms) {
    ++shard_.metrics().timeouts[static_cast<size_t>(timeout_kind::idle)];
    conn_.note_close_reason(close_reason::timeout);
    close(1001, "idle timeout", ws_close_order::after_backlog);
    return;
  }
  if (now_ms >= last_out_ms_ + cfg.heartbeat_ms) {
    byte_buffer ping;
    ws::write_ping(ping, {});
    conn_.send_control(ping.view());
    last_out_ms_ = now_ms;
  }
}

// ---- connection: the WebSocket switch ----

void connection::upgrade_to_websocket(std::string_view accept_key, std::string_view subprotocol,
                                      std::unique_ptr<ws_handler> handler,
                                      const ws::deflate_agreement* deflate) {
  RC_ASSERT(phase_ == phase::handling && mode_ == mode::http);
  http1::response_writer w(out(), shard_.date());
  w.start(101);
  w.header("Upgrade", "websocket");
  w.connection(http1::connection_header::upgrade);
  w.header("Sec-WebSocket-Accept", accept_key);
  if (!subprotocol.empty()) w.header("Sec-WebSocket-Protocol", subprotocol);
  byte_buffer extensions;
  if (deflate) {
    ws::write_deflate_answer(extensions, *deflate);
    w.header("Sec-WebSocket-Extensions", extensions.view());
  }
  w.header("x-request-id", std::string_view(current_.request_id, current_.request_id_len));
  write_common_headers(w);
  w.end_head_no_body();
  count_request(101);
  if (access_ && access_->open) access_->in_mark = bytes_received() - access_->bytes_in;
  mode_ = mode::ws;
  reset_ticket();  // in WebSocket mode this frees it: an idle WebSocket holds no ticket
  auto& m = shard_.metrics();
  --m.connections_open[static_cast<size_t>(protocol::http)];
  ++m.connections_open[static_cast<size_t>(protocol::ws)];
  async_ = false;
  phase_ = phase::idle;  // HTTP is over on this connection; the WebSocket has its own states
  flush();
  ws_ = std::make_unique<ws_endpoint>(*this, shard_, std::move(handler));
  if (deflate) ws_->enable_deflate(*deflate);
  ws_->start();
  hand_over_to_websocket();  // an upgrade answered later, outside process(); else after it
  update_timer();
}

void connection::hand_over_to_websocket() {
  if (mode_ != mode::ws || !http_ || in_process_) return;
  // HTTP is over: what the peer sent after the upgrade request is the WebSocket's, and the state
  // for reading requests goes (an idle WebSocket holds none of it).
  byte_buffer rest = http_->in.take();
  http_.reset();
  if (!rest.empty()) ws_->on_data(rest.view());
}

void connection::close_websocket(uint16_t code, std::string_view reason, ws_close_order order) {
  if (ws_) ws_->close(code, reason, order);
  update_timer();
}

}  // namespace rc::server
