#include "server/ws_upstream.h"

#include <sys/random.h>

#include <cstring>
#include <utility>
#include <vector>

#include "proto/base64.h"
#include "proto/ws.h"

namespace rc::server {
namespace {

uint64_t random_u64() {
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) != sizeof v)
    v = reinterpret_cast<uintptr_t>(&v) * 0x9e3779b97f4a7c15ULL;
  return v;
}

}  // namespace

ws_upstream::ws_upstream(http_client& client, client_pool& pool, const ws_target& target,
                         ws_upstream_handler* handler)
    : handler_(handler) {
  uint8_t raw[16];
  uint64_t a = random_u64(), b = random_u64();
  std::memcpy(raw, &a, 8);
  std::memcpy(raw + 8, &b, 8);
  char key[base64::encoded_size(16)];
  base64::encode(raw, 16, key);
  ws::compute_accept(std::string_view(key, sizeof key), accept_);
  session_ = std::make_unique<ws::session>(
      ws::role::client, ws::bind_handler<&ws_upstream::on_message>(this), out_,
      ws::session_options{.message_bytes_max = target.message_bytes_max, .mask_seed = random_u64()});
  http_request req;
  req.method = "GET";
  req.target = target.path;
  req.headers = {{"Upgrade", "websocket"},
                 {"Connection", "Upgrade"},
                 {"Sec-WebSocket-Key", std::string(key, sizeof key)},
                 {"Sec-WebSocket-Version", "13"}};
  for (const auto& h : target.headers) req.headers.push_back(h);
  req.timeouts = {.connect_ms = target.connect_timeout_ms,
                  .first_byte_ms = target.handshake_timeout_ms,
                  .idle_ms = target.handshake_timeout_ms,
                  .total_ms = 0};
  req.upgrade = true;
  request_ = client.start(pool, std::move(req), *this);
}

ws_upstream::~ws_upstream() {
  request_.reset();
  if (conn_) conn_->close();
}

bool ws_upstream::send_text(std::string_view message) {
  if (!open() || !session_->send(ws::message_kind::text, message)) return false;
  pump_output();
  return true;
}

void ws_upstream::pause() {
  if (conn_) conn_->pause_reading();
}

void ws_upstream::resume() {
  if (conn_) conn_->resume_reading();
}

void ws_upstream::on_response_head(const http1::response& head) {
  refused_status_ = head.status;  // not a 101: the body follows, then the refusal
}

void ws_upstream::on_response_end() {
  fail(ws_failure::handshake, "the upstream refused the WebSocket upgrade with HTTP " +
                                  std::to_string(refused_status_));
}

void ws_upstream::on_response_error(client_error kind, std::string_view message) {
  ws_failure f = ws_failure::closed;
  switch (kind) {
    case client_error::connect_failed:
    case client_error::timeout_connect:
    case client_error::pool_exhausted:  // every pooled connection busy: 503 like unreachable
      f = ws_failure::connect;
      break;
    case client_error::timeout_first_byte:
    case client_error::timeout_idle:
    case client_error::timeout_total:
      f = ws_failure::timeout;
      break;
    case client_error::protocol:
    case client_error::tls:
      f = ws_failure::handshake;
      break;
    case client_error::none:
    case client_error::reset:
      break;
  }
  fail(f, std::string(message));
}

void ws_upstream::on_upgraded(std::unique_ptr<upgraded_connection> conn,
                              const http1::response& head) {
  conn_ = std::move(conn);
  if (head.find("sec-websocket-accept") != std::string_view(accept_, sizeof accept_)) {
    fail(ws_failure::handshake, "the upstream's Sec-WebSocket-Accept does not match");
    return;
  }
  std::string leftover = conn_->take_leftover();
  conn_->set_handler(*this);
  std::weak_ptr<bool> alive = alive_;
  handler_->on_open();
  if (alive.expired() || failed_) return;
  if (!leftover.empty()) feed(leftover);
}

void ws_upstream::on_stream_data(std::string_view bytes) { feed(bytes); }

void ws_upstream::on_stream_closed(int error) {
  conn_.reset();
  fail(ws_failure::closed, error ? std::string("the upstream connection failed: ") + std::strerror(error)
                                 : std::string("the upstream closed the connection"));
}

namespace {
// Messages of one read, copied: the handler may destroy the session while they are delivered.
thread_local std::vector<std::pair<ws::message_kind, std::string>>* collecting = nullptr;
}  // namespace

void ws_upstream::on_message(ws::message_kind kind, std::string_view payload) {
  if (kind == ws::message_kind::ping || kind == ws::message_kind::pong) return;
  if (collecting) collecting->emplace_back(kind, std::string(payload));
}

void ws_upstream::feed(std::string_view bytes) {
  if (failed_) return;
  std::vector<std::pair<ws::message_kind, std::string>> messages;
  auto* outer = std::exchange(collecting, &messages);
  ws::session_state st = session_->feed(bytes);
  collecting = outer;
  pump_output();
  std::weak_ptr<bool> alive = alive_;
  for (auto& [kind, payload] : messages) {
    if (kind == ws::message_kind::binary) {
      session_->refuse(ws::close_code::unsupported_data, "binary messages are not expected");
      pump_output();
      fail(ws_failure::protocol, "the upstream sent a binary message");
      return;
    }
    handler_->on_text(payload);
    if (alive.expired() || failed_) return;
  }
  if (st == ws::session_state::closed || session_->close_received()) {
    if (session_->error_code() != 0) {
      fail(ws_failure::protocol, "bad WebSocket frames from the upstream (close " +
                                     std::to_string(session_->error_code()) + ")");
    } else {
      fail(ws_failure::closed, "the upstream closed the WebSocket (" +
                                   std::to_string(session_->peer_close_code()) + ")");
    }
  }
}

void ws_upstream::pump_output() {
  if (out_.size() == 0 || !conn_) return;
  conn_->send(out_.view());
  out_.clear();
}

void ws_upstream::fail(ws_failure kind, std::string detail) {
  if (failed_) return;
  failed_ = true;
  request_.reset();
  if (conn_) {
    conn_->close();  // sends a queued close frame first
    conn_.reset();
  }
  handler_->on_failure(kind, detail);  // may destroy this object: nothing may follow
}

}  // namespace rc::server
