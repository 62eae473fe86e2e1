// nats_client: one NATS connection of a shard, on the shard's io_uring (plain TCP through
// rc::connector + rc::stream_socket, host names through the shard's resolver), speaking the text
// protocol of proto/nats.h. It never has a thread of its own.
//
// Connecting: start() tries the URLs in order, then round robin, forever until stop(). Each try
// resolves the host (each address in turn), connects (connect_timeout_ms), waits for INFO, sends
// CONNECT (token or user/password from the options, else from the URL's userinfo) and PING, and
// is connected when the PONG comes back (INFO to PONG within connect_timeout_ms too, so a try
// lasts at most twice that). A
// -ERR during the handshake (e.g. 'Authorization Violation') fails the try; last_error() keeps
// the reason. After a failed try or a lost connection it waits a jittered exponential backoff
// (uniform in [d/2, d], d = reconnect_min_ms doubling up to reconnect_max_ms; reset once a
// connection is established) before the next URL.
//
// Once connected: every subscription is (re-)sent, then the publishes buffered while
// disconnected are flushed in order, then state listeners hear `connected`. The client PINGs
// every ping_interval_ms; with max_pings_out PINGs unanswered the connection is stale and is
// dropped (then reconnected). A protocol error, an oversized message (beyond
// inbound_bytes_max; INFO's max_payload bounds only what we publish), a message before the
// handshake is done, a -ERR other than a permissions violation, or EOF drops the connection too.
//
// Publishing: publish() writes at once when connected (refusing while the socket's send queue
// holds more than pending_bytes_max: the server is not reading); otherwise it buffers up to
// pending_bytes_max bytes and refuses beyond (false, counted in dropped_publishes). Bytes handed to
// a socket that then fails are lost (as in every NATS client: the protocol has no publish
// acknowledgement; JetStream's is a reply).
//
// Request/reply: one wildcard subscription "<inbox_prefix>.*" carries every reply; a request
// publishes with reply "<inbox_prefix>.<n>" and waits for the first answer or timeout_ms. A
// request made while not connected fails in a later turn with ENOTCONN; requests in flight fail
// with ENOTCONN when the connection is lost, ECANCELED on stop() (and when made after it, still
// before stop()'s `done`). ENOBUFS (in a later turn)
// when requests_in_flight_max requests are waiting or the send queue is full: a backlog, retry
// later (a 503 for an HTTP caller, like ENOTCONN). A 503 status (no responders) is
// EHOSTUNREACH. Other statuses (408, 404, ...) are answers with `status` set. While the
// callbacks of a lost connection run, the client already reports disconnected (connected() is
// false, publishes are buffered); state listeners hear `disconnected` after them.
//
// Callbacks: message, reply and state callbacks run on the shard's loop, never from inside the
// call that caused them (subscribe, publish, request, start). A callback may call anything here
// except destroy the client (use stop()). unsubscribe() and remove_state_listener() take effect
// at once, also from inside the callback being removed.
//
// Thread-safety: everything belongs to the shard whose reactor the client was built on.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/connector.h"
#include "core/reactor.h"
#include "core/stream_socket.h"
#include "core/timer_wheel.h"
#include "core/unique_function.h"
#include "proto/nats.h"
#include "server/resolver.h"

namespace rc::server {

struct nats_options {
  std::vector<std::string> urls;      // nats://host:port (host name or IP literal)
  std::string token, user, password;  // optional auth
  std::string name;                   // client name (node id + shard)
  std::string inbox_prefix;           // "_INBOX.<node>.<shard>.<rand>"; empty: "_INBOX.<rand>"
  uint32_t connect_timeout_ms = 2000;
  uint32_t reconnect_min_ms = 100, reconnect_max_ms = 2000;  // jittered exponential backoff
  uint32_t ping_interval_ms = 2000;
  uint32_t max_pings_out = 2;            // stale connection detection
  uint64_t pending_bytes_max = 8 << 20;  // publishes buffered while disconnected
  // Largest message accepted from the server (headers + payload). Not INFO's max_payload: that
  // bounds what clients publish, while deliveries (stored before a limit was lowered, from a
  // server of the cluster configured otherwise) may be larger.
  size_t inbound_bytes_max = nats::default_max_payload;
  // Requests awaiting an answer; one more fails (in a later turn) with ENOBUFS.
  size_t requests_in_flight_max = 65536;
};

// connecting: before the first connection; disconnected: lost it, reconnecting.
enum class nats_state : uint8_t { connecting, connected, disconnected, closed };
std::string_view name_of(nats_state s);

struct nats_msg {  // views valid during the callback only
  std::string_view subject, reply, headers /*raw block or empty*/, data;
  // The header block's status (503 no responders, 404, 408, 409, 100 heartbeat/flow control),
  // 0 if none.
  int status() const;
  std::string_view header(std::string_view name) const;
};

struct nats_reply {  // owned
  // 0, ETIMEDOUT, ENOTCONN (not connected / connection lost), EHOSTUNREACH (503 no responders),
  // ECANCELED (client stopped), EMSGSIZE (beyond max_payload), EINVAL (bad subject), ENOBUFS
  // (too many requests in flight or the send queue is full: retry later).
  int error = 0;
  int status = 0;
  std::string headers, data;
};

struct nats_stats {
  uint64_t connects = 0, reconnects = 0;
  uint64_t msgs_in = 0, msgs_out = 0, bytes_in = 0, bytes_out = 0;
  uint64_t requests_in_flight = 0;  // gauge
  uint64_t pending_bytes = 0;       // gauge: buffered while disconnected
  uint64_t dropped_publishes = 0;
};

class nats_socket;  // server/src/nats_socket.h

class nats_client {
 public:
  using msg_fn = unique_function<void(const nats_msg&)>;  // may be called many times
  using reply_fn = unique_function<void(nats_reply&&)>;   // called exactly once
  using state_fn = unique_function<void(nats_state)>;

  nats_client(reactor& r, socket_set& sockets, resolver& names, nats_options opts);
  ~nats_client();  // REQUIRES: stop() finished (or start() never called)
  nats_client(const nats_client&) = delete;
  nats_client& operator=(const nats_client&) = delete;

  void start();  // connects, reconnects forever until stop()
  // Flushes what it can (≤ 200 ms), closes; fails pending requests with ECANCELED. `done` runs
  // (in a later turn) once no socket or connect is left.
  void stop(unique_function<void()> done);

  nats_state state() const { return state_; }
  bool connected() const { return state_ == nats_state::connected; }
  const std::string& connected_url() const { return connected_url_; }
  // Why the last connection try failed or the last connection was dropped ("" if none yet;
  // kept after a later success, for logs and /readyz reasons).
  const std::string& last_error() const { return last_error_; }
  const std::string& inbox_prefix() const { return prefix_; }
  // The backoff before the next connection try, as last chosen (ms; for Retry-After hints).
  uint32_t reconnect_delay_ms() const { return backoff_ms_; }

  // Subscriptions survive reconnects (re-sent after CONNECT, before buffered publishes).
  // REQUIRES: nats::valid_subject(subject, true).
  uint64_t subscribe(std::string subject, std::string queue_group, msg_fn on_msg);
  void unsubscribe(uint64_t sid);  // no callback after this returns
  // Plain publish (headers: a whole block or empty). False when buffered bytes would exceed
  // pending_bytes_max, the message exceeds max_payload, or the subject is invalid (nothing
  // queued).
  bool publish(std::string_view subject, std::string_view reply, std::string_view headers,
               std::string_view data);
  // Request/reply over the shared inbox (timeout_ms 0: no timeout).
  void request(std::string_view subject, std::string_view headers, std::string_view data,
               uint32_t timeout_ms, reply_fn done);
  // Calls done(0) once the server has processed everything sent before (a PING/PONG round
  // trip: subscriptions made before are in place); ENOTCONN when not connected or the
  // connection is lost first, ECANCELED on stop(). Never from inside this call.
  void flush(unique_function<void(int error)> done);
  // A fresh subject for a subscription of the caller's: "<prefix>.s.<n>" (outside the reply
  // wildcard "<prefix>.*", so replies and these never reach each other's handlers).
  std::string new_inbox();

  uint64_t add_state_listener(state_fn fn);
  void remove_state_listener(uint64_t id);
  const nats_stats& stats() const;
  size_t max_payload() const { return max_payload_; }

 private:
  friend class nats_socket;
  struct subscription {
    std::string subject, queue;
    msg_fn on_msg;
  };
  struct pending_request;
  struct endpoint {
    std::string text;  // as given
    nats::server_url url;
  };

  // nats_client_conn.cc: connecting, the handshake, the socket, reconnecting.
  void try_connect();
  void connect_addresses(std::shared_ptr<std::vector<sockaddr_storage>> addrs, size_t i);
  void on_tcp_connected(int fd, int error, uint64_t attempt);
  void on_socket_data(const char* data, size_t len);
  void on_socket_eof(int err);
  void on_socket_closed(nats_socket* s);
  void handle_op(const nats::server_op& o);
  void on_info(std::string_view json);
  void on_handshake_done();
  void connection_lost(std::string reason);
  void schedule_reconnect();
  void on_ping_timer();
  void on_handshake_timeout();
  void on_reconnect_timer();
  void maybe_stopped();
  void set_state(nats_state s);
  void notify_listeners(nats_state s);
  void send(std::string_view bytes);  // REQUIRES: sock_
  // Connected, with a socket to write to (false while a lost connection is being torn down).
  bool live() const { return state_ == nats_state::connected && sock_ != nullptr; }

  // nats_client.cc: messages, requests, deferred callbacks.
  void dispatch(const nats::server_op& o);
  void on_reply(const nats_msg& m);
  void fail_requests(int error);
  void fail_flushes(int error);
  void defer_reply(reply_fn done, int error);
  void on_deferred_timer();
  void finish_request(uint64_t token, nats_reply&& r);

  reactor& reactor_;
  socket_set& sockets_;
  resolver& names_;
  nats_options opts_;
  std::vector<endpoint> endpoints_;
  std::unique_ptr<connector> connector_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::mt19937_64 rng_;

  nats_state state_ = nats_state::connecting;
  bool started_ = false;
  bool handshake_pong_wait_ = false;
  nats_socket* sock_ = nullptr;
  uint64_t attempt_ = 0;  // identifies the current connection try
  size_t next_endpoint_ = 0;
  size_t trying_endpoint_ = 0;  // the endpoint of the try in progress (or the connection)
  uint32_t failures_ = 0;       // tries since the last established connection
  uint32_t backoff_ms_ = 0;
  uint32_t pings_out_ = 0;
  bool ever_connected_ = false;
  std::string connected_url_, trying_url_, last_error_;
  size_t max_payload_ = nats::default_max_payload;
  nats::parser parser_;
  std::string drop_reason_;  // set while parsing when the connection must go

  std::string prefix_;
  uint64_t next_sid_ = 1;
  uint64_t inbox_sid_ = 0;
  uint64_t next_token_ = 1;
  uint64_t next_inbox_ = 1;
  std::map<uint64_t, subscription> subs_;  // by sid: re-sent in creation order
  std::unordered_map<uint64_t, std::unique_ptr<pending_request>> requests_;
  std::string pending_;  // publishes buffered while disconnected
  std::string scratch_;

  std::vector<unique_function<void()>> deferred_;  // run by deferred_timer_
  // One entry per PING in flight, answered in order; empty for the client's own heartbeats.
  std::deque<unique_function<void(int)>> pongs_;
  unique_function<void()> stop_done_;

  std::map<uint64_t, state_fn> listeners_;
  uint64_t next_listener_ = 1;
  mutable nats_stats stats_;

  timer handshake_timer_, ping_timer_, reconnect_timer_, deferred_timer_;
};

}  // namespace rc::server
