// client_request: one request of http_client (server/http_client.h) from start() to its end:
// the request's bytes, its sink, its timers and where it is (waiting for a connection, sent and
// waiting for the first byte, receiving, done).
//
// Lifetime: created by http_client::start() and referenced by the caller's request_handle; freed
// when the handle lets go *and* the request has ended, and never while one of its sink callbacks
// is running (a sink may cancel or drop its handle from inside a callback). After the end (or a
// cancel) the request holds no connection and no timer and calls nothing.
//
// Private to server/src. Thread-safety: the client's shard only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/byte_buffer.h"
#include "core/timer_wheel.h"
#include "server/http_client.h"

namespace rc::server {

class client_request {
 public:
  enum class phase : uint8_t { waiting, sent, receiving, done };

  client_request(client_pool& pool, http_request req, response_sink& sink);
  ~client_request();
  client_request(const client_request&) = delete;
  client_request& operator=(const client_request&) = delete;

  // Checks the request's fields and arms its timers; false (and the request is failed from the
  // loop, as a `protocol` error) when a header cannot be sent.
  bool begin();

  // ---- from the pool and the connection ----
  // Hands the request a connection; it writes itself out.
  void attach(http_connection& c, bool reused);
  // A reused connection closed under a request that has not seen a byte of its answer: the
  // request may go back to the pool once (see the keep-alive race in http_client.h).
  bool can_retry_stale() const;
  void retry_stale();  // the connection has already let go
  void note_bytes();   // response bytes arrived
  bool wants_upgrade() const { return req_.upgrade; }
  bool paused() const { return paused_; }
  http1::request_method_kind method_kind() const;

  void deliver_head(const http1::response& head);
  void deliver_body(std::string_view bytes);
  // These end the request (the connection has already let go of it).
  void deliver_end();
  void deliver_error(client_error kind, std::string_view message);
  void deliver_upgraded(std::unique_ptr<upgraded_connection> conn, const http1::response& head);
  // Ends the request without a callback (the client is being destroyed).
  void orphan();

  // ---- from the handle ----
  void release_handle();  // cancel if running, free when possible
  void pause();
  void resume();
  bool active() const { return phase_ != phase::done; }

  phase current_phase() const { return phase_; }

 private:
  void arm();
  void on_timer();
  bool waiting_for_slot() const;
  void end();
  void maybe_free();

  client_pool& pool_;
  http_request req_;
  response_sink* sink_;
  http_connection* conn_ = nullptr;
  byte_buffer head_;  // the serialized request head (kept for a re-send)
  timer timer_;
  uint64_t start_ms_ = 0;
  uint64_t connect_start_ms_ = 0;  // start_ms_, or when a stale re-send went back to the pool
  uint64_t attach_ms_ = 0;
  uint64_t last_byte_ms_ = 0;
  phase phase_ = phase::waiting;
  bool handle_alive_ = true;
  bool paused_ = false;
  bool stale_retry_used_ = false;
  bool head_ok_ = true;
  uint32_t depth_ = 0;  // sink callbacks running

  friend class client_pool;
};

}  // namespace rc::server
