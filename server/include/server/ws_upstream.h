// ws_upstream: one client WebSocket connection to an upstream (the `responses-ws` engine's
// socket): connect, the HTTP/1.1 upgrade, then text messages both ways through ws::session's
// client role.
//
// Plain `ws://` to an IP literal or `localhost` only, through the engine's connector. When the
// shared outbound stack (server/http_client.h: name resolution, TLS, the upgrade hand-off) is
// available, the engine connects through it instead and this class keeps only the framing.
//
// Events reach the handler on the shard's loop, never from inside a call made by the handler
// (connect() answers on a later turn): on_open once the upgrade succeeded, on_text per message,
// on_failure exactly once when the connection can no longer be used (connect refused or timed
// out, the upgrade refused, a protocol error in the frames — a close frame is sent —, the peer
// closed, the connect or handshake deadline passed). After on_failure nothing more is delivered.
// Destroying the object closes the connection at once (no more callbacks).
//
// Thread-safety: owned by one shard.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/connector.h"
#include "core/stream_socket.h"

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
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  std::string host_header;  // "host:port"
  std::string path;         // request target, e.g. "/v1/responses"
  std::string extra_header_lines;  // complete "Name: value\r\n" lines (Authorization, …)
  uint64_t handshake_timeout_ms = 10000;
  size_t message_bytes_max = 16 << 20;
};

// Fills `addr` for an IPv4/IPv6 literal or "localhost". False for anything else.
bool resolve_literal(std::string_view host, uint16_t port, sockaddr_storage& addr,
                     socklen_t& addr_len);

class ws_upstream {
 public:
  // Starts connecting. REQUIRES: the handler outlives this object or is replaced first.
  ws_upstream(socket_set& sockets, connector& c, const ws_target& target,
              ws_upstream_handler* handler);
  ~ws_upstream();
  ws_upstream(const ws_upstream&) = delete;
  ws_upstream& operator=(const ws_upstream&) = delete;

  // Retained sessions change hands between streams.
  void set_handler(ws_upstream_handler* h);
  // Queues a text message. False if the connection is not open.
  bool send_text(std::string_view message);
  // Inbound backpressure: stop reading the socket (TCP then holds the upstream back).
  void pause();
  void resume();
  bool open() const;

 private:
  class link;
  std::shared_ptr<ws_upstream*> self_;  // cleared on destruction: late connects close their fd
  link* link_ = nullptr;
  ws_upstream_handler* handler_;
  friend class link;
  void on_connected(int fd, int error, const ws_target& target, socket_set& sockets);
};

}  // namespace rc::server
