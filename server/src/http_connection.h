// http_connection: one outbound TCP connection of a client_pool (server/http_client.h): it
// writes the attached request, parses the response (1xx skipped, body de-chunked) and hands
// the pieces to the request, honouring its pause; then goes back to the pool or closes.
//
// Modes: idle (in the pool; any byte or EOF from the upstream closes it), busy (a request is
// attached), upgraded (after a 101: owned by an upgraded_connection, raw bytes both ways).
// On TLS connections every byte passes through a tls::session (proto/tls.h) first: ciphertext in,
// plaintext to the same paths as a plain connection's bytes; a TLS failure fails the request
// with `tls`; an idle TLS connection tolerates handshake-only traffic (session tickets).
// Received bytes are appended to `in_` and processed from there, so a paused request keeps them
// (the socket stops receiving too, see stream_socket) and a resumed one continues where it was.
//
// Lifetime: heap-allocated; deletes itself in on_closed(), after abort() or a graceful close and
// the end of every in-flight operation. Callbacks into the request may cancel it (which aborts
// the connection): the object stays valid until on_closed(), which runs at the end of a turn,
// so code after a callback only checks whether the request is still attached.
//
// Private to server/src. Thread-safety: the pool's shard only.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/byte_buffer.h"
#include "core/stream_socket.h"
#include "core/timer_wheel.h"
#include "proto/http1_response.h"
#include "proto/tls.h"
#include "server/http_client.h"

namespace rc::server {

class http_connection final : public stream_socket {
 public:
  enum class mode : uint8_t { idle, busy, upgraded, closed };

  // With a TLS context, the connection starts its handshake for `host` (SNI and verification)
  // at once; requests attached meanwhile wait inside the session.
  http_connection(socket_set& set, int fd, client_pool* pool, tls::client_context* tls_context,
                  std::string_view host);

  mode current_mode() const { return mode_; }
  bool reused() const { return requests_ > 1; }
  client_request* attached() const { return req_; }

  // Busy: writes the request out and starts reading its response.
  void attach(client_request& r, const byte_buffer& head, const shared_buffer& body);
  // The request was cancelled or failed from outside: close now, never reuse.
  void detach_and_abort();
  // Idle in the pool: expire after `keepalive_ms`.
  void make_idle(uint32_t keepalive_ms);
  // The client is going away: close now, no more calls into the pool or a request.
  void shut_down();
  // An idle connection the pool does not keep.
  void close_idle();
  // The request paused or resumed reading.
  void pause_reading() { pause_receiving(); }
  void resume_reading();

  // ---- upgraded mode (upgraded_connection) ----
  void set_stream_handler(stream_handler* h);
  void pause_stream();
  void resume_stream();
  void set_upgraded_owner(upgraded_connection* u) { upgraded_ = u; }
  void send_raw(std::string_view bytes);
  void close_upgraded(bool graceful);

 private:
  void on_data(const char* data, size_t len) override;
  void on_eof(int err) override;
  void on_drained() override;
  void on_closed() override;
  void on_plaintext(const char* data, size_t len);
  void on_tls_error();
  void flush_tls_output();
  void close_gracefully();

  void process();
  bool process_head();
  bool process_body();
  void finish_eof();
  void complete();
  void fail(client_error kind, std::string message);
  void hand_off();
  void deliver_stream();
  void on_kick();
  void on_idle_expired();
  void reset_response();

  client_pool* pool_;
  client_request* req_ = nullptr;
  mode mode_ = mode::idle;
  uint32_t requests_ = 0;
  byte_buffer in_;
  byte_buffer body_out_;
  http1::response head_;
  std::optional<http1::body_decoder> body_;
  bool got_byte_ = false;
  // When the attached request's bytes had all been sent (0: still being written). A reused
  // connection's close is the keep-alive race, and the request is re-sent, only while the request
  // is being written or within stale_window_ms after (Go's rule); later the upstream may have
  // acted on it.
  uint64_t written_ms_ = 0;
  bool eof_ = false;
  int eof_error_ = 0;
  bool processing_ = false;
  timer kick_;  // processes buffered bytes in a later turn (after a resume, a new handler)
  timer idle_timer_;
  stream_handler* handler_ = nullptr;
  upgraded_connection* upgraded_ = nullptr;
  bool stream_paused_ = false;
  std::unique_ptr<tls::session> tls_;
  byte_buffer plain_;        // decrypted bytes of one read
  bool tls_closed_ = false;  // the peer's close_notify was read
  bool truncated_ = false;   // TLS: the socket ended without close_notify
};

}  // namespace rc::server
