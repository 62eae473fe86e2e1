// ws_endpoint: the WebSocket half of a connection after an upgrade — the ws::session (over
// wslay) that reads frames, the handler that acts on messages (/ws broker, /echo, Responses
// WebSocket mode), and the timers that keep the socket honest.
//
// Memory: the ws::session exists only while a message (or a frame) from the peer is in progress, or
// the socket is closing: it is created by the bytes received and let go again as soon as the
// session is back between messages, so an idle WebSocket — a subscriber that only listens, a chat
// client waiting for its stream — holds no session at all. While it exists, the session holds
// wslay's context (about 8.5 KiB) only for frames its fast path can't take (control frames,
// fragments, a close). The flow.pause timer, too, is made by the first pause.
//
// Data messages leave through the connection's outbound stream (ordered with everything else the
// handler sends, subject to backpressure); pongs, close frames and flow.* frames take the control
// lane ahead of that backlog. Protocol errors close the socket with the code the session chose
// (1002 protocol, 1007 invalid UTF-8, 1009 too big). A peer that sends nothing, not even a pong,
// for ws_idle_timeout_ms is closed (1001); after heartbeat_ms without output a ping goes out.
//
// Closing: a close for a reason the peer may read up to (idle, drain) is queued behind the data
// already in the stream; an urgent one (protocol error, slow consumer, whose backlog has been
// dropped) goes out at once, after the frame being written. Once the peer answers the close, the
// TCP connection is closed at once. A peer that doesn't answer within close_wait_ms of the close
// frame leaving (bounded by write_timeout_ms while it can't leave) is dropped.
//
// A handler whose messages are rate-limited API actions (admits_messages) gets them only once the
// connection can decide their admission; while a token is asked of another shard, messages are
// held (in order, bounded: beyond held_bytes_max the socket is closed with 1008).
//
// permessage-deflate (ws_compression.h), when negotiated: data messages of at least
// --ws-deflate-min-bytes leave compressed; flow.* control-lane messages never are.
//
// Thread-safety: owned by its connection, on the connection's shard.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "base/byte_buffer.h"
#include "core/outbound_ring.h"
#include "core/timer_wheel.h"
#include "proto/ws.h"
#include "proto/ws_session.h"
#include "server/stream.h"

namespace rc::ws {
struct deflate_agreement;
}

namespace rc::server {

class connection;
class shard_server;
class ws_deflate_state;
class ws_endpoint;

// What a WebSocket endpoint does with messages.
class ws_handler {
 public:
  virtual ~ws_handler() = default;
  virtual void on_open(ws_endpoint&) {}
  virtual void on_message(ws_endpoint& ws, ws::message_kind kind, std::string_view payload) = 0;
  // Whether each message is an API action subject to the rate limit (connection::
  // admit_ws_action, at most once per message): then a message whose token must come from
  // another shard is held until it has.
  virtual bool admits_messages() const { return false; }
  // The connection is going away (either side closed, or it failed): release everything. No
  // message can be sent any more.
  virtual void on_close(ws_endpoint&) {}
};

class ws_endpoint {
 public:
  static constexpr uint32_t close_wait_ms = 5000;

  ws_endpoint(connection& c, shard_server& s, std::unique_ptr<ws_handler> handler);
  ~ws_endpoint();
  ws_endpoint(const ws_endpoint&) = delete;
  ws_endpoint& operator=(const ws_endpoint&) = delete;

  connection& conn() { return conn_; }
  shard_server& shard() { return shard_; }
  ws_handler& handler() { return *handler_; }
  uint64_t connection_id() const;

  void start();
  void on_data(std::string_view in);
  // The connection is ending: tell the handler, once.
  void on_peer_gone();

  // Sends a message through the outbound stream (copied once into a frame). False when the
  // socket is closing or the stream refused it (slow consumer).
  bool send_text(std::string_view payload);
  bool send_binary(std::string_view payload);
  // Sends a pre-built frame (or fragment pair) through the outbound stream: fan-out encodes a
  // frame once and sends it to many endpoints.
  bool send_entry(outbound_entry e);
  // Sends a fan-out message: the subscriber's first fragment and the shared continuation
  // (connection::stream_push_shared: copied when small and the client keeps up).
  bool send_fragments(const shared_buffer& first, const shared_buffer& continuation);
  // Sends a fan-out message: the subscriber's prefix fragment and the event's shared
  // continuation frame (fanout_frames.h), compressed when the connection negotiated
  // permessage-deflate (ws_compression.h).
  bool send_fanout(const shared_buffer& prefix, const shared_buffer& continuation);
  // permessage-deflate was negotiated in the upgrade (before start()).
  void enable_deflate(const ws::deflate_agreement& agreement);
  // Sends a small text message in the control lane, ahead of queued data (flow.pause/resume).
  void send_control_text(std::string_view payload);
  // Sends {"event":"flow.pause"} now and {"event":"flow.resume"} after `ms` (once per pause).
  void pause_flow_for(uint64_t ms);
  // The connection's admission answer arrived: delivers the messages held for it, in order.
  void release_held();
  // Starts the closing handshake.
  void close(uint16_t code, std::string_view reason, ws_close_order order = ws_close_order::now);
  bool closing() const { return close_started_; }
  // Bytes of a partial message and of whole messages held for admission (the shard's inbound
  // budget counts them).
  size_t buffered_bytes() const {
    return (session_ ? session_->buffered_bytes() : 0) + held_bytes_;
  }
  // Refuses the partial message: drops it, stops reading and closes with `code`.
  void refuse_input(uint16_t code, std::string_view reason);

  // Timers (driven by the connection's single timer).
  uint64_t next_timer_ms() const;
  void on_timer(uint64_t now_ms);

 private:
  bool send_message(ws::opcode op, std::string_view payload);
  static void deliver(void* self, ws::message_kind kind, std::string_view payload);
  void flush_session_output();
  void after_session_step(ws::session_state st);
  ws::session& session();

  connection& conn_;
  shard_server& shard_;
  std::unique_ptr<ws_handler> handler_;
  byte_buffer session_out_;               // what the session writes: pongs, close frames
  std::unique_ptr<ws::session> session_;  // inside a message, or closing (see above)
  std::unique_ptr<ws_deflate_state> deflate_;  // permessage-deflate negotiated
  uint64_t last_in_ms_;
  uint64_t last_out_ms_;
  uint64_t close_started_ms_ = 0;
  uint64_t close_deadline_ms_ = 0;
  bool close_started_ = false;
  bool session_closed_ = false;  // the closing handshake is complete (or failed)
  bool gone_ = false;
  bool flow_paused_ = false;
  std::unique_ptr<timer> flow_timer_;  // made by the first pause (rare: most sockets never pause)
  void on_flow_timer();
  // Messages that arrived while admission waited for another shard (bounded by held_bytes_max);
  // allocated only while one waits (an empty std::deque already holds about 600 bytes).
  struct held_message {
    ws::message_kind kind;
    std::string payload;
  };
  static constexpr size_t held_bytes_max = 1 << 20;
  std::unique_ptr<std::deque<held_message>> held_;
  size_t held_bytes_ = 0;
};

}  // namespace rc::server
