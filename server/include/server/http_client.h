// http_client: ringcast's outbound HTTP/1.1 client, the stack every upstream engine sends its
// requests through. One per shard (or per engine on a shard); it never shares anything with
// another shard.
//
// Using it (an engine's view):
//
//   http_client& client = ...;                          // lives on the shard's reactor
//   client_pool& pool = client.pool(endpoint, opts);    // get-or-create, per (scheme, host, port)
//   http_request req;
//   req.method = "POST"; req.target = "/v1/chat/completions";
//   req.headers = {{"Authorization", "Bearer ..."}, {"Content-Type", "application/json"}};
//   req.body = shared_buffer::copy_of(json);            // sent by reference, never copied again
//   req.timeouts = {.connect_ms = 5000, .first_byte_ms = 60000, .idle_ms = 30000};
//   request_handle h = client.start(pool, std::move(req), my_sink);
//
// The sink (response_sink, implemented by the engine's stream) then hears, from the shard's loop
// and never from inside start():
//   on_response_head(head)   once, the final head (1xx interim responses are skipped); the views
//                            in `head` are valid during the call only;
//   on_response_body(bytes)  zero or more times, the body already de-chunked, as it arrives;
//   on_response_end()        the body is complete; or
//   on_response_error(kind, message)  once, instead of (or after some of) the above;
//   on_upgraded(conn, head)  for a request with `upgrade` set that was answered 101 (WebSocket):
//                            the caller now owns the connected transport (see upgraded_connection)
//                            and checks the handshake (ws::compute_accept); the request's
//                            headers carry Upgrade, Connection, Sec-WebSocket-Key/-Version.
//                            A non-101 answer to an upgrade request is delivered as usual.
// Exactly one of end / error / upgraded ends a request; nothing is called after it.
//
// request_handle is the caller's grip on a request in flight (move-only):
//   cancel()          at any time, also from inside a sink callback: no callback follows; a
//                     connection that carried the request is closed, never reused (its response
//                     is unfinished). Destroying the handle cancels too.
//   pause_reading()   backpressure: no more body callbacks until resume_reading(); the socket
//   resume_reading()  stops being read, so TCP flow control holds the upstream back. The idle
//                     timeout does not run while paused.
//
// Errors (client_error): connect_failed (refused, unreachable, no address for the name),
// reset (the connection closed or failed before the response was complete), timeout_connect,
// timeout_first_byte, timeout_idle, timeout_total, protocol (a malformed response), tls,
// pool_exhausted (connect_ms passed while every one of the pool's max_connections was in use and
// the request was not among those a connect in progress would serve: the endpoint is busy, not
// failing).
// Which of them may be retried is the retry policy's business (retry_policy.h): nothing
// here retries, except one transparent re-send when a *reused* keep-alive connection turns out
// to have been closed by the upstream before it answered a single byte (the classic keep-alive
// race; the request never reached the upstream's application) -- only when the close came while
// the request was still being written or within a few ms after (Go's rule); a later close is
// `reset` (the upstream may have acted on the request). The re-sent request gets a fresh
// connect_ms deadline.
//
// Timeouts (http_request::timeouts, 0 = none): connect_ms from start() (or a stale re-send)
// until the request has a connection (waiting for a pool slot, resolving, connecting);
// first_byte_ms from then until the first response byte (a TLS handshake runs in this phase);
// idle_ms between response bytes (not counted while paused); total_ms from start() to the end.
//
// Pools (client_pool): per endpoint, keep-alive connections (LIFO reuse; an idle connection that
// receives anything or is closed by the upstream is dropped; idle ones expire after
// idle_keepalive_ms), at most max_connections open (connecting, busy or idle; requests beyond
// wait in FIFO order), at most max_idle kept idle. A connection is reused only when its response
// ended cleanly with keep-alive and nothing followed it. pool.stats() are the metrics hooks:
// requests, errors by kind, connects, reuses, and gauges of idle/busy/connecting/waiting.
//
// TLS (https://, wss://): the pool builds its TLS context (trusted roots: ca_file or the system
// store) when it is created, so an engine pays for it when it is made, not at its first request;
// a ca_file that cannot be loaded fails each connect with `tls` ("TLS setup: ...").
// Each connection runs a tls::session (proto/tls.h) over the socket: SNI
// for host names (never for IP literals), certificate verification against the system store or
// pool_options::tls.ca_file (or none with verify = false), ALPN http/1.1. A failed handshake or
// certificate ends the request with `tls` and a message such as "TLS: certificate verify failed:
// hostname mismatch". The handshake runs after connect_ms (TCP connected) and counts toward
// first_byte_ms. A close-delimited body must end with close_notify, else it is `reset`.
//
// Host names: IP literals are connected directly; names (also "localhost", from /etc/hosts) go
// through the resolver (server/resolver.h: hosts file, then DNS on the ring, cached), each
// address tried in turn until one accepts; a name that does not resolve is connect_failed with
// the resolver's reason ("cannot resolve host \"x\": no such name"). set_lookup() replaces the
// resolver (tests).
//
// Thread-safety: everything belongs to the shard whose reactor the client was built on.
// Lifetime: the client may be destroyed with requests in flight (they are aborted silently);
// handles must not outlive their client.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/reactor.h"
#include "core/shared_buffer.h"
#include "core/stream_socket.h"
#include "core/unique_function.h"
#include "proto/http1_response.h"
#include "proto/tls.h"
#include "proto/url.h"
#include "server/resolver.h"

namespace rc {
class connector;
}

namespace rc::server {

enum class client_error : uint8_t {
  none,
  connect_failed,
  reset,
  timeout_connect,
  timeout_first_byte,
  timeout_idle,
  timeout_total,
  protocol,
  tls,
  pool_exhausted,
};
inline constexpr size_t client_error_count = static_cast<size_t>(client_error::pool_exhausted) + 1;
// "connect_failed", "timeout_idle", ...: for metrics labels and logs.
std::string_view name_of(client_error e);

struct client_timeouts {
  uint32_t connect_ms = 10000;
  uint32_t first_byte_ms = 120000;
  uint32_t idle_ms = 120000;
  uint32_t total_ms = 0;
};

struct http_request {
  std::string method = "GET";
  std::string target = "/";  // origin-form: the endpoint's base path is the caller's business
  // Sent in order. Host is added unless present; Content-Length always comes from `body`.
  // REQUIRES: http1::field_name_ok / field_text_ok hold for each (checked: the request fails
  // with `protocol` before anything is sent).
  std::vector<std::pair<std::string, std::string>> headers;
  shared_buffer body;  // may be empty
  client_timeouts timeouts;
  // A WebSocket (or other) upgrade: a 101 answer hands the connection to the sink.
  bool upgrade = false;
};

class upgraded_connection;

class response_sink {
 public:
  virtual void on_response_head(const http1::response& head) = 0;
  virtual void on_response_body(std::string_view bytes) = 0;
  virtual void on_response_end() = 0;
  virtual void on_response_error(client_error kind, std::string_view message) = 0;
  // Only for requests with `upgrade` set; the default closes the connection.
  virtual void on_upgraded(std::unique_ptr<upgraded_connection> conn, const http1::response& head);

 protected:
  ~response_sink() = default;
};

// The receiving side of an upgraded connection.
class stream_handler {
 public:
  virtual void on_stream_data(std::string_view bytes) = 0;
  // The peer closed (error 0) or the connection failed (an errno, or EPROTO for TLS errors).
  virtual void on_stream_closed(int error) = 0;

 protected:
  ~stream_handler() = default;
};

class http_connection;  // server/src/http_connection.h

// A connection after "101 Switching Protocols": raw bytes both ways (decrypted, for TLS).
// leftover() holds the bytes that arrived after the 101 head, before the caller took over:
// process them first. Destroying it closes the connection.
class upgraded_connection {
 public:
  explicit upgraded_connection(http_connection* c, std::string leftover);
  ~upgraded_connection();
  upgraded_connection(const upgraded_connection&) = delete;
  upgraded_connection& operator=(const upgraded_connection&) = delete;

  std::string take_leftover() { return std::move(leftover_); }
  // Starts delivering data to `h` (never from inside this call).
  void set_handler(stream_handler& h);
  void send(std::string_view bytes);
  void pause_reading();
  void resume_reading();
  // Sends what is queued, then closes; no callback follows.
  void close();
  bool open() const { return conn_ != nullptr; }

 private:
  friend class http_connection;
  http_connection* conn_;
  std::string leftover_;
};

struct pool_options {
  uint32_t max_connections = 256;
  uint32_t max_idle = 32;
  uint32_t idle_keepalive_ms = 60000;
  http1::response_limits limits;
  // For https/wss endpoints: verification on (system store, or only ca_file's roots) or off.
  tls::client_options tls;
};

struct pool_stats {
  uint64_t requests = 0;
  uint64_t connects = 0;
  uint64_t reused = 0;         // requests sent on a kept-alive connection
  uint64_t stale_resends = 0;  // transparent re-sends after the keep-alive race
  uint64_t errors[client_error_count] = {};
  uint32_t idle = 0;
  uint32_t busy = 0;
  uint32_t connecting = 0;
  uint32_t waiting = 0;  // requests waiting for a connection
};

class client_request;  // server/src/http_client_request.h
class http_client;

// One endpoint's connections. Created by http_client::pool(); lives as long as the client.
class client_pool {
 public:
  const url::endpoint& endpoint() const { return endpoint_; }
  // Counters and the gauges as of now.
  pool_stats stats() const;
  // Requests started and not finished: for least-outstanding balancing.
  uint32_t outstanding() const { return outstanding_; }
  // New TLS options make a new TLS context (for the connections opened from now on).
  void set_options(const pool_options& o);
  const pool_options& options() const { return options_; }
  // "http://127.0.0.1:8000" (for logs and labels).
  const std::string& label() const { return label_; }

  ~client_pool();
  client_pool(const client_pool&) = delete;
  client_pool& operator=(const client_pool&) = delete;

 private:
  friend class http_client;
  friend class http_connection;
  friend class client_request;
  client_pool(http_client& client, url::endpoint ep, const pool_options& o);

  void acquire(client_request& r);
  void withdraw(client_request& r);  // a waiting request cancelled or timed out
  void connect_one();
  void make_tls_context();
  void connect_to(std::shared_ptr<std::vector<sockaddr_storage>> addrs, size_t i);
  void fail_connect_later(int error, std::string why);
  // `why` replaces strerror(error) in the message when not empty.
  void on_connected(int fd, int error, std::string why);
  // A busy connection is done with its request: reusable ones serve a waiter or go idle.
  void release(http_connection& c, bool reusable);
  // An idle connection became unusable (closed by the upstream, expired).
  void forget(http_connection& c);
  // A connection's fd is closed; it is about to be freed.
  void on_connection_closed(http_connection& c);
  void serve_waiters();
  void fail_first_waiter(client_error kind, const std::string& message);
  uint32_t open_connections() const {
    return static_cast<uint32_t>(idle_.size()) + busy_ + connecting_;
  }

  http_client& client_;
  url::endpoint endpoint_;
  pool_options options_;
  std::string label_;
  std::string host_field_;              // "host[:port]"
  std::vector<http_connection*> idle_;  // most recently used last
  std::vector<http_connection*> all_;   // every open connection of the pool
  std::vector<client_request*> waiting_;
  uint32_t busy_ = 0;
  uint32_t connecting_ = 0;
  uint32_t outstanding_ = 0;
  pool_stats stats_;
  std::shared_ptr<bool> alive_;  // connect callbacks check it: the pool may be gone
  // TLS endpoints: made with the pool (reading ca_file or the system store is not done on the
  // request path); when it could not be made, every connect fails with tls_setup_error_.
  std::unique_ptr<tls::client_context> tls_context_;
  std::string tls_setup_error_;
};

class request_handle {
 public:
  request_handle() = default;
  explicit request_handle(client_request* r) : r_(r) {}
  request_handle(request_handle&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  request_handle& operator=(request_handle&& o) noexcept;
  request_handle(const request_handle&) = delete;
  request_handle& operator=(const request_handle&) = delete;
  ~request_handle() { reset(); }

  // Cancels (if still running) and lets go of the request.
  void reset();
  void cancel() { reset(); }
  void pause_reading();
  void resume_reading();
  // Started and not yet ended (no end/error/upgrade delivered, not cancelled).
  bool active() const;

 private:
  client_request* r_ = nullptr;
};

struct client_options {
  // Name lookups: the shard's resolver when given (shared cache), else one of the client's own
  // made with `resolver_options`.
  resolver* shared_resolver = nullptr;
  rc::resolver_options resolver_options;
  uint32_t connects_in_flight_max = 256;
  // Connects are also bounded per request by timeouts.connect_ms; this is the connector's own
  // ceiling for an attempt nobody waits for any more.
  uint32_t connect_attempt_ms_max = 60000;
};

class http_client {
 public:
  http_client(reactor& r, socket_set& sockets, const client_options& opts = {});
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  // The pool for `ep` (scheme, host and port; the base path is ignored) and TLS options,
  // created on first use with `opts`; later calls leave its other options as they are.
  client_pool& pool(const url::endpoint& ep, const pool_options& opts = {});
  // Starts `req` on `p`. The sink must stay valid until the request ends or is cancelled.
  request_handle start(client_pool& p, http_request req, response_sink& sink);

  reactor& loop() { return reactor_; }
  socket_set& sockets() { return sockets_; }

  // Replaces the resolver for hosts that are not IP literals. `done` gets the addresses (port
  // set; tried in order) or an error and a message, never from inside the lookup call.
  using lookup_done =
      unique_function<void(std::vector<sockaddr_storage> addrs, int error, std::string_view why)>;
  using lookup_fn = unique_function<void(std::string_view host, uint16_t port, lookup_done done)>;
  void set_lookup(lookup_fn fn) { lookup_ = std::move(fn); }

 private:
  friend class client_pool;
  friend class client_request;
  reactor& reactor_;
  socket_set& sockets_;
  std::unique_ptr<connector> connector_;
  std::unique_ptr<resolver> own_resolver_;
  lookup_fn lookup_;
  std::vector<std::unique_ptr<client_pool>> pools_;
};

}  // namespace rc::server
