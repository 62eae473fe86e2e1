// http_client and client_pool (server/http_client.h): who gets which connection, when to connect,
// and tearing down with work in flight.
#include "server/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/assert.h"
#include "core/connector.h"
#include "http_client_request.h"
#include "http_connection.h"

namespace rc::server {
namespace {

uint16_t default_port(url::scheme s) {
  return s == url::scheme::https || s == url::scheme::wss ? 443 : 80;
}

// A connector (or resolver) with operations in flight cannot be destroyed (the kernel still
// references it): keep it until they have answered the cancel. When the loop is stopping, the
// process is going away and nothing will answer; the object is then left to the exit.
template <class T>
void reap(reactor& r, std::unique_ptr<T> c) {
  if (!c || c->idle()) return;
  if (r.stopping()) {
    (void)c.release();
    return;
  }
  r.post(r.shard_id(), [&r, c = std::move(c)]() mutable { reap(r, std::move(c)); });
}

}  // namespace

std::string_view name_of(client_error e) {
  switch (e) {
    case client_error::none:
      return "none";
    case client_error::connect_failed:
      return "connect_failed";
    case client_error::reset:
      return "reset";
    case client_error::timeout_connect:
      return "timeout_connect";
    case client_error::timeout_first_byte:
      return "timeout_first_byte";
    case client_error::timeout_idle:
      return "timeout_idle";
    case client_error::timeout_total:
      return "timeout_total";
    case client_error::protocol:
      return "protocol";
    case client_error::tls:
      return "tls";
    case client_error::pool_exhausted:
      return "pool_exhausted";
  }
  return "unknown";
}

void response_sink::on_upgraded(std::unique_ptr<upgraded_connection> conn, const http1::response&) {
  conn->close();
}

// ---- client_pool ----

client_pool::client_pool(http_client& client, url::endpoint ep, const pool_options& o)
    : client_(client), endpoint_(std::move(ep)), options_(o), alive_(std::make_shared<bool>(true)) {
  // (Built with append(): GCC 12's -Wrestrict misfires on chains of operator+.)
  std::string host;
  bool v6 = endpoint_.host.find(':') != std::string::npos;
  if (v6) host.append("[");
  host.append(endpoint_.host);
  if (v6) host.append("]");
  std::string port = std::to_string(endpoint_.port);
  host_field_ = host;
  if (endpoint_.port != default_port(endpoint_.kind)) host_field_.append(":").append(port);
  label_.append(endpoint_.tls() ? "https://" : "http://").append(host).append(":").append(port);
  if (endpoint_.tls()) make_tls_context();
}

void client_pool::make_tls_context() {
  tls_setup_error_.clear();
  tls_context_ = tls::client_context::create(options_.tls, tls_setup_error_);
  if (!tls_context_ && tls_setup_error_.empty()) tls_setup_error_ = "TLS setup failed";
}

void client_pool::set_options(const pool_options& o) {
  bool tls_changed = o.tls.verify != options_.tls.verify || o.tls.ca_file != options_.tls.ca_file;
  options_ = o;
  if (endpoint_.tls() && tls_changed) make_tls_context();
}

client_pool::~client_pool() {
  *alive_ = false;
  std::vector<client_request*> waiting = std::move(waiting_);
  for (client_request* r : waiting) r->orphan();
  std::vector<http_connection*> conns = std::move(all_);
  for (http_connection* c : conns) {
    client_request* r = nullptr;
    if (c->current_mode() == http_connection::mode::busy) r = c->attached();
    c->shut_down();
    if (r) r->orphan();
  }
}

pool_stats client_pool::stats() const {
  pool_stats s = stats_;
  s.idle = static_cast<uint32_t>(idle_.size());
  s.busy = busy_;
  s.connecting = connecting_;
  s.waiting = static_cast<uint32_t>(waiting_.size());
  return s;
}

void client_pool::acquire(client_request& r) {
  if (!idle_.empty()) {
    // Most recently used first: it is the least likely to have been closed by the upstream.
    http_connection* c = idle_.back();
    idle_.pop_back();
    ++busy_;
    r.attach(*c, true);
    return;
  }
  waiting_.push_back(&r);
  serve_waiters();
}

void client_pool::withdraw(client_request& r) {
  auto it = std::find(waiting_.begin(), waiting_.end(), &r);
  if (it != waiting_.end()) waiting_.erase(it);
}

void client_pool::serve_waiters() {
  while (waiting_.size() > connecting_ && open_connections() < options_.max_connections)
    connect_one();
}

void client_pool::fail_first_waiter(client_error kind, const std::string& message) {
  if (waiting_.empty()) return;
  client_request* r = waiting_.front();
  waiting_.erase(waiting_.begin());
  r->deliver_error(kind, message);
}

void client_pool::release(http_connection& c, bool reusable) {
  RC_ASSERT(busy_ > 0);
  --busy_;
  if (reusable) {
    if (!waiting_.empty()) {
      client_request* r = waiting_.front();
      waiting_.erase(waiting_.begin());
      ++busy_;
      c.make_idle(0);
      r->attach(c, true);
    } else if (idle_.size() < options_.max_idle) {
      idle_.push_back(&c);
      c.make_idle(options_.idle_keepalive_ms);
    } else {
      c.close_idle();
    }
  }
  serve_waiters();
}

void client_pool::forget(http_connection& c) {
  auto it = std::find(idle_.begin(), idle_.end(), &c);
  if (it != idle_.end()) idle_.erase(it);
}

void client_pool::on_connection_closed(http_connection& c) {
  forget(c);
  auto it = std::find(all_.begin(), all_.end(), &c);
  if (it != all_.end()) all_.erase(it);
}

// ---- request_handle ----

request_handle& request_handle::operator=(request_handle&& o) noexcept {
  if (this != &o) {
    reset();
    r_ = std::exchange(o.r_, nullptr);
  }
  return *this;
}

void request_handle::reset() {
  if (client_request* r = std::exchange(r_, nullptr)) r->release_handle();
}

void request_handle::pause_reading() {
  if (r_) r_->pause();
}

void request_handle::resume_reading() {
  if (r_) r_->resume();
}

bool request_handle::active() const {
  return r_ && r_->active();
}

// ---- upgraded_connection ----

upgraded_connection::upgraded_connection(http_connection* c, std::string leftover)
    : conn_(c), leftover_(std::move(leftover)) {}

upgraded_connection::~upgraded_connection() {
  if (conn_) std::exchange(conn_, nullptr)->close_upgraded(false);
}

void upgraded_connection::set_handler(stream_handler& h) {
  if (conn_) conn_->set_stream_handler(&h);
}

void upgraded_connection::send(std::string_view bytes) {
  if (conn_) conn_->send_raw(bytes);
}

void upgraded_connection::pause_reading() {
  if (conn_) conn_->pause_stream();
}

void upgraded_connection::resume_reading() {
  if (conn_) conn_->resume_stream();
}

void upgraded_connection::close() {
  if (conn_) std::exchange(conn_, nullptr)->close_upgraded(true);
}

// ---- http_client ----

http_client::http_client(reactor& r, socket_set& sockets, const client_options& opts)
    : reactor_(r), sockets_(sockets) {
  connector_options co;
  co.in_flight_max = opts.connects_in_flight_max;
  co.timeout_ms = opts.connect_attempt_ms_max;
  connector_ = std::make_unique<connector>(r, co);
  resolver* names = opts.shared_resolver;
  if (!names) {
    own_resolver_ = std::make_unique<resolver>(r, opts.resolver_options);
    names = own_resolver_.get();
  }
  lookup_ = [names](std::string_view host, uint16_t port, lookup_done done) {
    names->resolve(host, port, std::move(done));
  };
}

http_client::~http_client() {
  pools_.clear();
  connector_->cancel_all();
  reap(reactor_, std::move(connector_));
  if (own_resolver_) {
    own_resolver_->cancel_all();
    reap(reactor_, std::move(own_resolver_));
  }
}

client_pool& http_client::pool(const url::endpoint& ep, const pool_options& opts) {
  for (auto& p : pools_) {
    const url::endpoint& e = p->endpoint_;
    const tls::client_options& t = p->options_.tls;
    if (e.host == ep.host && e.port == ep.port && e.tls() == ep.tls() &&
        (!ep.tls() || (t.verify == opts.tls.verify && t.ca_file == opts.tls.ca_file)))
      return *p;
  }
  pools_.push_back(std::unique_ptr<client_pool>(new client_pool(*this, ep, opts)));
  return *pools_.back();
}

request_handle http_client::start(client_pool& p, http_request req, response_sink& sink) {
  auto* r = new client_request(p, std::move(req), sink);
  ++p.stats_.requests;
  ++p.outstanding_;
  if (r->begin()) p.acquire(*r);
  return request_handle(r);
}

}  // namespace rc::server
