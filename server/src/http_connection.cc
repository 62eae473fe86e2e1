#include "http_connection.h"

#include <cerrno>
#include <cstring>
#include <utility>

#include "base/assert.h"
#include "http_client_request.h"

namespace rc::server {
namespace {

// How long after the request was written a close still counts as the keep-alive race.
constexpr uint64_t stale_window_ms = 5;

}  // namespace

http_connection::http_connection(socket_set& set, int fd, client_pool* pool,
                                 tls::client_context* tls_context, std::string_view host)
    : stream_socket(set, fd), pool_(pool) {
  kick_.bind<http_connection, &http_connection::on_kick>(this);
  idle_timer_.bind<http_connection, &http_connection::on_idle_expired>(this);
  if (tls_context) {
    tls_ = tls::session::client(*tls_context, host);
    flush_tls_output();  // the ClientHello
  }
  start_receiving();
}

void http_connection::attach(client_request& r, const byte_buffer& head,
                             const shared_buffer& body) {
  RC_ASSERT(mode_ == mode::idle && req_ == nullptr);
  owner().cancel_timer(idle_timer_);
  mode_ = mode::busy;
  req_ = &r;
  ++requests_;
  reset_response();
  if (tls_) {
    // Encrypted copies; buffered by the session until the handshake is done.
    tls_->write(head.view());
    if (body.size() > 0) tls_->write(body.view());
    flush_tls_output();
  } else {
    out().append(head.view());
    if (body.size() > 0) append_shared(body, 0, static_cast<uint32_t>(body.size()));
    flush();
  }
  if (!receiving()) resume_receiving();
}

void http_connection::on_drained() {
  if (mode_ == mode::busy && req_ && written_ms_ == 0) written_ms_ = owner().now_ms();
}

void http_connection::reset_response() {
  body_.reset();
  got_byte_ = false;
  written_ms_ = 0;
  in_.clear();
}

void http_connection::detach_and_abort() {
  req_ = nullptr;
  if (mode_ == mode::busy && pool_) pool_->release(*this, false);
  mode_ = mode::closed;
  abort();
}

void http_connection::shut_down() {
  req_ = nullptr;
  pool_ = nullptr;
  mode_ = mode::closed;
  abort();
}

void http_connection::close_idle() {
  mode_ = mode::closed;
  abort();
}

void http_connection::make_idle(uint32_t keepalive_ms) {
  mode_ = mode::idle;
  req_ = nullptr;
  reset_response();
  if (keepalive_ms > 0) owner().arm_after_ms(idle_timer_, keepalive_ms);
  if (!receiving()) resume_receiving();
}

void http_connection::on_idle_expired() {
  if (mode_ != mode::idle) return;
  mode_ = mode::closed;
  if (pool_) pool_->forget(*this);
  close_gracefully();
}

void http_connection::resume_reading() {
  resume_receiving();
  // Bytes already buffered are processed in a later turn, never inside resume (the caller may
  // be in the middle of something).
  if (!in_.empty() || eof_) owner().arm_after_ms(kick_, 0);
}

void http_connection::on_kick() {
  if (mode_ == mode::busy) {
    process();
  } else if (mode_ == mode::upgraded) {
    deliver_stream();
  }
}

void http_connection::on_closed() {
  owner().cancel_timer(kick_);
  owner().cancel_timer(idle_timer_);
  if (pool_) pool_->on_connection_closed(*this);
  if (upgraded_) upgraded_->conn_ = nullptr;
  delete this;
}

// Parses and delivers what `in_` holds while a request is attached and not paused.
void http_connection::process() {
  if (processing_) return;  // a callback resumed: the loop below continues anyway
  processing_ = true;
  while (mode_ == mode::busy && req_ && !req_->paused()) {
    bool progress = body_ ? process_body() : process_head();
    if (!progress) break;
  }
  processing_ = false;
  if (mode_ == mode::busy && req_ && !req_->paused() && eof_) finish_eof();
}

bool http_connection::process_head() {
  if (in_.empty()) return false;
  const http1::response_limits& lim = pool_->options().limits;
  http1::response_result r =
      http1::parse_response_head(in_.data(), in_.size(), lim, req_->method_kind(), head_);
  if (r.status == http1::status::incomplete) return false;
  if (r.status == http1::status::error) {
    fail(client_error::protocol,
         "malformed response head: " + std::string(http1::name_of(r.error)));
    return false;
  }
  if (head_.interim()) {
    in_.consume(r.consumed);
    return true;
  }
  if (head_.upgrade) {
    if (!req_->wants_upgrade()) {
      fail(client_error::protocol, "101 Switching Protocols to a request that did not ask");
      return false;
    }
    in_.consume(r.consumed);
    hand_off();
    return false;
  }
  body_.emplace(head_, lim);
  req_->deliver_head(head_);  // head_'s views point into in_: consume after the call
  in_.consume(r.consumed);
  if (!req_) return false;
  if (body_->done()) {
    complete();
    return false;
  }
  return true;
}

bool http_connection::process_body() {
  if (in_.empty()) return false;
  body_out_.clear();
  http1::response_result r = body_->feed(in_.data(), in_.size(), body_out_);
  in_.consume(r.consumed);
  if (!body_out_.empty()) {
    req_->deliver_body(body_out_.view());
    if (!req_) return false;
  }
  if (r.status == http1::status::error) {
    fail(client_error::protocol,
         "malformed response body: " + std::string(http1::name_of(r.error)));
    return false;
  }
  if (r.status == http1::status::complete) {
    complete();
    return false;
  }
  return !in_.empty();
}

void http_connection::finish_eof() {
  if (body_ && eof_error_ == 0 && !truncated_ && body_->finish_at_eof()) {
    complete();
    return;
  }
  bool in_race_window = written_ms_ == 0 || queued_bytes() > 0 ||
                        owner().now_ms() <= written_ms_ + stale_window_ms;
  if (!got_byte_ && reused() && pool_ && in_race_window && req_->can_retry_stale()) {
    // The request goes back to the pool for a fresh connection; this one is dead.
    client_request* r = std::exchange(req_, nullptr);
    mode_ = mode::closed;
    pool_->release(*this, false);
    abort();
    r->retry_stale();
    return;
  }
  std::string why = eof_error_ == 0
                        ? "the upstream closed the connection"
                        : std::string("connection failed: ") + std::strerror(eof_error_);
  if (!got_byte_) {
    why += " before answering";
  } else if (!body_) {
    why += " in the middle of the response head";
  } else {
    why += " before the response was complete";
  }
  fail(client_error::reset, why);
}

void http_connection::complete() {
  client_request* r = req_;
  // Reusable only when nothing else is pending: the whole request went out, nothing follows
  // the response, the upstream keeps the connection.
  bool reusable = pool_ && head_.keep_alive && in_.empty() && !eof_ && queued_bytes() == 0;
  req_ = nullptr;
  if (reusable) {
    mode_ = mode::idle;
    pool_->release(*this, true);
  } else {
    mode_ = mode::closed;
    if (pool_) pool_->release(*this, false);
    abort();
  }
  r->deliver_end();
}

void http_connection::fail(client_error kind, std::string message) {
  client_request* r = req_;
  req_ = nullptr;
  mode_ = mode::closed;
  if (pool_) pool_->release(*this, false);
  abort();
  r->deliver_error(kind, message);
}

void http_connection::hand_off() {
  client_request* r = req_;
  req_ = nullptr;
  mode_ = mode::upgraded;
  // No longer the pool's: it counts neither as busy nor as idle. It stays in the pool's list of
  // connections (pool_ is kept) until it closes, so that on_closed takes it off the list and a
  // pool destroyed first shuts it down: an upgraded connection is used only in mode::upgraded
  // and mode::closed, where nothing else touches the pool.
  if (pool_) pool_->release(*this, false);
  std::string leftover(in_.view());
  in_.clear();
  stream_paused_ = true;  // until the new owner sets a handler
  pause_receiving();
  auto conn = std::make_unique<upgraded_connection>(this, std::move(leftover));
  upgraded_ = conn.get();
  r->deliver_upgraded(std::move(conn), head_);
}

void http_connection::set_stream_handler(stream_handler* h) {
  handler_ = h;
  resume_stream();
}

void http_connection::pause_stream() {
  stream_paused_ = true;
  pause_receiving();
}

void http_connection::resume_stream() {
  stream_paused_ = false;
  resume_receiving();
  if (!in_.empty() || eof_) owner().arm_after_ms(kick_, 0);
}

void http_connection::deliver_stream() {
  if (processing_) return;
  processing_ = true;
  while (handler_ && !stream_paused_ && !in_.empty()) {
    byte_buffer chunk = std::move(in_);
    handler_->on_stream_data(chunk.view());
  }
  processing_ = false;
  if (handler_ && !stream_paused_ && eof_ && in_.empty()) {
    stream_handler* h = handler_;
    handler_ = nullptr;
    h->on_stream_closed(eof_error_);
  }
}

void http_connection::close_upgraded(bool graceful) {
  handler_ = nullptr;
  upgraded_ = nullptr;
  mode_ = mode::closed;
  if (graceful) {
    close_gracefully();
  } else {
    abort();
  }
}

}  // namespace rc::server
