// ws_upstream: one client WebSocket connection to an upstream (the `responses-ws` engine's
// socket): the HTTP/1.1 upgrade through http_client (connect, TLS for wss://, pools' connect
// limits and timeouts), then text messages both ways through ws::session's client role.
//
// Events reach the handler on the shard's loop, never from inside a call made by the handler
// (the constructor answers on a later turn): on_open once the upgrade succeeded, on_text per
// message, on_failure exactly once when the connection can no longer be used (connect refused or
// timed out, TLS failed, the upgrade refused or its Sec-WebSocket-Accept wrong, a protocol error
// in the frames — a close frame is sent —, a binary message, the peer closed). After on_failure
// nothing more is delivered. Destroying the object closes the connection at once (no more
// callbacks); the handler may destroy it from inside any of its callbacks.
//
// Thread-safety: owned by one shard.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/byte_buffer.h"
#include "proto/ws_session.h"
#include "server/http_client.h"

namespace rc::server {

enum class ws_failure : uint8_t {
  connect,    // refused, unreachable, connect timeout
  handshake,  // not a 101, a wrong Sec-WebSocket-Accept, an oversized or broken head
  protocol,   // bad frames (the close code says which), a binary message
  closed,     // the peer closed (close frame or EOF) or reset the connection
  timeout,    // the handshake did not finish in time
};

class ws_upstream_handler {
 public:
  virtual void on_open() = 0;
  virtual void on_text(std::string_view message) = 0;
  virtual void on_failure(ws_failure kind, std::string_view detail) = 0;

 protected:
  ~ws_upstream_handler() = default;
};

struct ws_target {
  std::string path;  // request target, e.g. "/v1/responses"
  std::vector<std::pair<std::string, std::string>> headers;  // Authorization, extra headers
  uint32_t connect_timeout_ms = 10000;
  uint32_t handshake_timeout_ms = 10000;  // connected → the 101 head
  size_t message_bytes_max = 16 << 20;
};

class ws_upstream final : response_sink, stream_handler {
 public:
  // Starts connecting on `pool`. REQUIRES: the handler outlives this object or is replaced
  // first; the client outlives it.
  ws_upstream(http_client& client, client_pool& pool, const ws_target& target,
              ws_upstream_handler* handler);
  ~ws_upstream();
  ws_upstream(const ws_upstream&) = delete;
  ws_upstream& operator=(const ws_upstream&) = delete;

  // Retained sessions change hands between streams.
  void set_handler(ws_upstream_handler* h) { handler_ = h; }
  // Queues a text message. False if the connection is not open.
  bool send_text(std::string_view message);
  // Inbound backpressure: stop reading the socket (TCP then holds the upstream back).
  void pause();
  void resume();
  bool open() const { return conn_ && !failed_; }

 private:
  // response_sink (the upgrade request)
  void on_response_head(const http1::response& head) override;
  void on_response_body(std::string_view) override {}
  void on_response_end() override;
  void on_response_error(client_error kind, std::string_view message) override;
  void on_upgraded(std::unique_ptr<upgraded_connection> conn, const http1::response& head) override;
  // stream_handler (after the upgrade)
  void on_stream_data(std::string_view bytes) override;
  void on_stream_closed(int error) override;

  void on_message(ws::message_kind kind, std::string_view payload);
  void feed(std::string_view bytes);
  void pump_output();
  void fail(ws_failure kind, std::string detail);

  ws_upstream_handler* handler_;
  request_handle request_;
  std::unique_ptr<upgraded_connection> conn_;
  byte_buffer out_;
  std::unique_ptr<ws::session> session_;
  char accept_[28];
  int refused_status_ = 0;
  bool failed_ = false;
  // Expires with this object: the handler may destroy it from inside a callback.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace rc::server
