// nats_client's connection (server/nats_client.h): resolving and connecting across the URL list,
// the INFO/CONNECT/PING handshake, reading server operations, stale detection, losing the
// connection and reconnecting with jittered backoff, and stopping.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "base/assert.h"
#include "core/log.h"
#include "nats_socket.h"
#include "server/nats_client.h"

namespace rc::server {
namespace {

socklen_t length_of(const sockaddr_storage& a) {
  return a.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

}  // namespace

void nats_client::start() {
  RC_ASSERT(!started_);
  started_ = true;
  try_connect();
}

void nats_client::try_connect() {
  if (state_ == nats_state::closed) return;
  if (endpoints_.empty()) {
    last_error_ = "no valid NATS URL";
    return;
  }
  trying_endpoint_ = next_endpoint_ % endpoints_.size();
  next_endpoint_ = (trying_endpoint_ + 1) % endpoints_.size();
  const endpoint& ep = endpoints_[trying_endpoint_];
  trying_url_ = ep.text;
  uint64_t attempt = ++attempt_;
  names_.resolve(ep.url.host, ep.url.port,
                 [this, alive = alive_, attempt](std::vector<sockaddr_storage> addrs, int error,
                                                 std::string_view message) {
                   if (!*alive || attempt != attempt_ || state_ == nats_state::closed) return;
                   if (error != 0 || addrs.empty()) {
                     last_error_ = "cannot resolve " + trying_url_ + ": " + std::string(message);
                     schedule_reconnect();
                     return;
                   }
                   connect_addresses(
                       std::make_shared<std::vector<sockaddr_storage>>(std::move(addrs)), 0);
                 });
}

// Tries the addresses in order: a refused or unreachable one moves on to the next.
void nats_client::connect_addresses(std::shared_ptr<std::vector<sockaddr_storage>> addrs,
                                    size_t i) {
  const sockaddr_storage& a = (*addrs)[i];
  uint64_t attempt = attempt_;
  connector_->connect(
      reinterpret_cast<const sockaddr*>(&a), length_of(a), nullptr, 0,
      [this, alive = alive_, addrs, i, attempt](int fd, int error) {
        if (!*alive) {
          if (fd >= 0) ::close(fd);
          return;
        }
        if (fd < 0 && error != ECANCELED && i + 1 < addrs->size() && state_ != nats_state::closed) {
          connect_addresses(addrs, i + 1);
          return;
        }
        on_tcp_connected(fd, error, attempt);
      });
}

void nats_client::on_tcp_connected(int fd, int error, uint64_t attempt) {
  if (state_ == nats_state::closed || attempt != attempt_) {
    if (fd >= 0) ::close(fd);
    maybe_stopped();
    return;
  }
  if (fd < 0) {
    last_error_ = "connect to " + trying_url_ + ": " + std::strerror(error);
    schedule_reconnect();
    return;
  }
  RC_ASSERT(sock_ == nullptr);
  sock_ = new nats_socket(sockets_, fd, this);
  // Until the handshake is done no message may come (nothing is subscribed yet): a peer that
  // is not a NATS server cannot make us buffer a payload.
  parser_ = nats::parser(0);
  drop_reason_.clear();
  handshake_pong_wait_ = false;
  pings_out_ = 0;
  reactor_.arm_after_ms(handshake_timer_, opts_.connect_timeout_ms);
  sock_->start_receiving();
}

void nats_client::send(std::string_view bytes) {
  RC_ASSERT(sock_ != nullptr);
  sock_->out().append(bytes);
  sock_->flush();
  stats_.bytes_out += bytes.size();
}

void nats_client::on_socket_data(const char* data, size_t len) {
  if (state_ == nats_state::closed) return;  // lingering after stop(): drop
  stats_.bytes_in += len;
  bool ok = parser_.feed({data, len}, [this](const nats::server_op& o) {
    if (drop_reason_.empty() && sock_ != nullptr && state_ != nats_state::closed) handle_op(o);
  });
  if (!ok && drop_reason_.empty()) drop_reason_ = "protocol error: " + std::string(parser_.error());
  if (!drop_reason_.empty() && sock_ != nullptr && state_ != nats_state::closed)
    connection_lost(std::move(drop_reason_));
}

void nats_client::on_socket_eof(int err) {
  if (state_ == nats_state::closed) return;
  connection_lost(err == 0 ? std::string("connection closed by the server")
                           : "connection failed: " + std::string(std::strerror(err)));
}

void nats_client::on_socket_closed(nats_socket* s) {
  if (s == sock_) sock_ = nullptr;
  maybe_stopped();
}

void nats_client::handle_op(const nats::server_op& o) {
  switch (o.kind) {
    case nats::op::msg:
    case nats::op::hmsg:
      if (state_ != nats_state::connected) {
        drop_reason_ = "protocol error: a message before the handshake";
        return;
      }
      dispatch(o);
      return;
    case nats::op::ping:
      send("PONG\r\n");
      return;
    case nats::op::pong:
      if (handshake_pong_wait_) {
        handshake_pong_wait_ = false;
        on_handshake_done();
      } else {
        pings_out_ = 0;
        if (!pongs_.empty()) {
          unique_function<void(int)> fn = std::move(pongs_.front());
          pongs_.pop_front();
          if (fn) fn(0);
        }
      }
      return;
    case nats::op::ok:
      return;
    case nats::op::info:
      on_info(o.payload);
      return;
    case nats::op::err:
      // Permissions violations concern one subject; the connection stays. Anything else is
      // fatal (the server closes after sending it).
      if (state_ == nats_state::connected &&
          o.payload.substr(0, 21) == std::string_view("Permissions Violation")) {
        RC_WARN("nats: %.*s", static_cast<int>(o.payload.size()), o.payload.data());
        return;
      }
      drop_reason_ = "server error: " + std::string(o.payload);
      return;
  }
}

void nats_client::on_info(std::string_view json) {
  auto info = nats::parse_info(json);
  if (!info) {
    drop_reason_ = "malformed INFO";
    return;
  }
  if (info->max_payload != 0) max_payload_ = info->max_payload;  // outbound only
  if (state_ == nats_state::connected || handshake_pong_wait_) return;  // an async INFO
  if (info->tls_required) {
    drop_reason_ = "the server requires TLS (not supported)";
    return;
  }
  if (!info->headers) {
    drop_reason_ = "the server does not support headers (nats-server >= 2.2 needed)";
    return;
  }
  const endpoint& ep = endpoints_[trying_endpoint_];
  nats::connect_options c;
  c.name = opts_.name;
  c.version = "1";
  bool own = !opts_.token.empty() || !opts_.user.empty();
  c.auth_token = own ? std::string_view(opts_.token) : std::string_view(ep.url.token);
  c.user = own ? std::string_view(opts_.user) : std::string_view(ep.url.user);
  c.pass = own ? std::string_view(opts_.password) : std::string_view(ep.url.pass);
  scratch_.clear();
  nats::write_connect(scratch_, c);
  nats::write_ping(scratch_);
  send(scratch_);
  handshake_pong_wait_ = true;
}

// CONNECT was accepted: restore subscriptions, flush the backlog, tell the listeners.
void nats_client::on_handshake_done() {
  reactor_.cancel_timer(handshake_timer_);
  parser_.set_max_payload(opts_.inbound_bytes_max);
  scratch_.clear();
  for (const auto& [sid, s] : subs_) nats::write_sub(scratch_, s.subject, s.queue, sid);
  send(scratch_);
  if (!pending_.empty()) {
    send(pending_);
    pending_.clear();
    pending_.shrink_to_fit();
  }
  ++stats_.connects;
  if (ever_connected_) ++stats_.reconnects;
  ever_connected_ = true;
  failures_ = 0;
  connected_url_ = trying_url_;
  pings_out_ = 0;
  reactor_.arm_after_ms(ping_timer_, opts_.ping_interval_ms);
  RC_INFO("nats: connected to %s", connected_url_.c_str());
  set_state(nats_state::connected);
}

void nats_client::connection_lost(std::string reason) {
  RC_ASSERT(sock_ != nullptr);
  bool was_connected = state_ == nats_state::connected;
  nats_socket* s = sock_;
  sock_ = nullptr;
  s->detach();
  s->abort();
  reactor_.cancel_timer(handshake_timer_);
  reactor_.cancel_timer(ping_timer_);
  handshake_pong_wait_ = false;
  drop_reason_.clear();
  last_error_ = (was_connected ? connected_url_ : trying_url_) + ": " + reason;
  if (was_connected) RC_WARN("nats: connection lost: %s", last_error_.c_str());
  connected_url_.clear();
  // Disconnected before any callback runs: a reply callback sees connected() false and its
  // publishes are buffered for the next connection. Listeners hear it after the callbacks.
  if (was_connected) state_ = nats_state::disconnected;
  fail_requests(ENOTCONN);
  fail_flushes(ENOTCONN);
  if (was_connected && state_ == nats_state::disconnected) notify_listeners(state_);
  schedule_reconnect();
}

void nats_client::schedule_reconnect() {
  if (state_ == nats_state::closed) return;
  uint64_t d = opts_.reconnect_min_ms;
  for (uint32_t i = 0; i < failures_ && d < opts_.reconnect_max_ms; ++i) d *= 2;
  if (d > opts_.reconnect_max_ms) d = opts_.reconnect_max_ms;
  if (d < 2) d = 2;
  ++failures_;
  std::uniform_int_distribution<uint64_t> jitter(d / 2, d);
  backoff_ms_ = static_cast<uint32_t>(jitter(rng_));
  reactor_.arm_after_ms(reconnect_timer_, backoff_ms_);
}

void nats_client::on_reconnect_timer() {
  try_connect();
}

void nats_client::on_handshake_timeout() {
  if (sock_ != nullptr) connection_lost("handshake timed out");
}

void nats_client::on_ping_timer() {
  if (sock_ == nullptr || state_ != nats_state::connected) return;
  if (pings_out_ >= opts_.max_pings_out) {
    connection_lost("stale connection (no PONG)");
    return;
  }
  ++pings_out_;
  pongs_.emplace_back();
  send("PING\r\n");
  reactor_.arm_after_ms(ping_timer_, opts_.ping_interval_ms);
}

void nats_client::stop(unique_function<void()> done) {
  RC_ASSERT(!stop_done_);
  bool was_open = state_ != nats_state::closed;
  stop_done_ = std::move(done);
  if (!was_open) {
    maybe_stopped();
    return;
  }
  ++attempt_;  // a resolve or connect in progress is now stale
  reactor_.cancel_timer(handshake_timer_);
  reactor_.cancel_timer(ping_timer_);
  reactor_.cancel_timer(reconnect_timer_);
  bool was_connected = state_ == nats_state::connected;
  state_ = nats_state::closed;
  connector_->cancel_all();
  if (sock_ != nullptr) {
    if (was_connected) {
      sock_->close_after_flush(200);  // what is queued leaves; the socket tells us when closed
    } else {
      sock_->abort();
    }
  }
  fail_requests(ECANCELED);
  fail_flushes(ECANCELED);
  auto ready = std::move(deferred_);
  deferred_.clear();
  for (auto& fn : ready) fn();
  pending_.clear();
  notify_listeners(nats_state::closed);
  maybe_stopped();
}

// stop()'s `done` runs from the deferred timer once the socket has closed and no connect is in
// flight (the connector may still count the connect whose callback is running now: poll).
void nats_client::maybe_stopped() {
  if (!stop_done_ || deferred_timer_.armed()) return;
  reactor_.arm_after_ms(deferred_timer_, (sock_ != nullptr || !connector_->idle()) ? 5 : 0);
}

void nats_client::set_state(nats_state s) {
  if (state_ == s || state_ == nats_state::closed) return;
  state_ = s;
  notify_listeners(s);
}

// Each listener is moved out while it runs, so it may remove itself (or others) safely.
void nats_client::notify_listeners(nats_state s) {
  std::vector<uint64_t> ids;
  for (const auto& [id, fn] : listeners_) ids.push_back(id);
  for (uint64_t id : ids) {
    if (state_ != s) return;  // a listener changed the state: the others heard the newer one
    auto it = listeners_.find(id);
    if (it == listeners_.end() || !it->second) continue;
    state_fn fn = std::move(it->second);
    fn(s);
    it = listeners_.find(id);
    if (it != listeners_.end()) it->second = std::move(fn);
  }
}

}  // namespace rc::server
