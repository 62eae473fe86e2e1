// nats_client (server/nats_client.h): subscriptions, publishing, the request/reply mux over the
// shared inbox, deferred failures, state listeners and stats.
#include "server/nats_client.h"

#include <cerrno>
#include <charconv>
#include <cstdio>

#include "base/assert.h"
#include "core/log.h"
#include "nats_socket.h"

namespace rc::server {
namespace {

bool parse_u64(std::string_view s, uint64_t& out) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

}  // namespace

std::string_view name_of(nats_state s) {
  switch (s) {
    case nats_state::connecting:
      return "connecting";
    case nats_state::connected:
      return "connected";
    case nats_state::disconnected:
      return "disconnected";
    case nats_state::closed:
      return "closed";
  }
  return "?";
}

int nats_msg::status() const {
  if (headers.empty()) return 0;
  auto h = nats::header_block::parse(headers);
  return h ? h->status : 0;
}

std::string_view nats_msg::header(std::string_view name) const {
  if (headers.empty()) return {};
  auto h = nats::header_block::parse(headers);
  return h ? h->get(name) : std::string_view();
}

struct nats_client::pending_request {
  nats_client* client;
  uint64_t token;
  reply_fn done;
  timer deadline;
};

nats_client::nats_client(reactor& r, socket_set& sockets, resolver& names, nats_options opts)
    : reactor_(r), sockets_(sockets), names_(names), opts_(std::move(opts)) {
  std::random_device seed;
  rng_.seed((uint64_t{seed()} << 32) ^ seed() ^ reinterpret_cast<uintptr_t>(this));
  for (const auto& u : opts_.urls) {
    std::string why;
    if (auto parsed = nats::parse_url(u, &why)) {
      endpoints_.push_back({u, std::move(*parsed)});
    } else {
      RC_WARN("nats: ignoring URL \"%s\": %s", u.c_str(), why.c_str());
    }
  }
  connector_options co;
  co.in_flight_max = 4;
  co.timeout_ms = opts_.connect_timeout_ms;
  connector_ = std::make_unique<connector>(r, co);
  prefix_ = opts_.inbox_prefix;
  if (prefix_.empty()) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(rng_()));
    prefix_ = std::string("_INBOX.") + hex;
  }
  inbox_sid_ = next_sid_++;
  subs_[inbox_sid_] = {prefix_ + ".*", "", [this](const nats_msg& m) { on_reply(m); }};
  handshake_timer_.bind<nats_client, &nats_client::on_handshake_timeout>(this);
  ping_timer_.bind<nats_client, &nats_client::on_ping_timer>(this);
  reconnect_timer_.bind<nats_client, &nats_client::on_reconnect_timer>(this);
  deferred_timer_.bind<nats_client, &nats_client::on_deferred_timer>(this);
}

nats_client::~nats_client() {
  // REQUIRES: stop() finished (or start() never called).
  RC_ASSERT(sock_ == nullptr && connector_->idle());
  RC_ASSERT(!started_ || state_ == nats_state::closed);
  *alive_ = false;
}

uint64_t nats_client::subscribe(std::string subject, std::string queue_group, msg_fn on_msg) {
  RC_ASSERT(nats::valid_subject(subject, true));
  uint64_t sid = next_sid_++;
  if (live()) {
    scratch_.clear();
    nats::write_sub(scratch_, subject, queue_group, sid);
    send(scratch_);
  }
  subs_[sid] = {std::move(subject), std::move(queue_group), std::move(on_msg)};
  return sid;
}

void nats_client::unsubscribe(uint64_t sid) {
  auto it = subs_.find(sid);
  if (it == subs_.end() || sid == inbox_sid_) return;
  subs_.erase(it);  // a callback running now was moved out by dispatch() and dies there
  if (live()) {
    scratch_.clear();
    nats::write_unsub(scratch_, sid);
    send(scratch_);
  }
}

bool nats_client::publish(std::string_view subject, std::string_view reply,
                          std::string_view headers, std::string_view data) {
  if (!nats::valid_subject(subject, false) ||
      (!reply.empty() && !nats::valid_subject(reply, false)) ||
      headers.size() + data.size() > max_payload_ || state_ == nats_state::closed) {
    ++stats_.dropped_publishes;
    return false;
  }
  bool now = live();
  size_t bytes = subject.size() + reply.size() + headers.size() + data.size() + 48;
  uint64_t queued = now ? sock_->queued_bytes() : pending_.size();
  if (queued + bytes > opts_.pending_bytes_max) {
    ++stats_.dropped_publishes;
    return false;
  }
  std::string& out = now ? scratch_ : pending_;
  if (now) scratch_.clear();
  if (headers.empty()) {
    nats::write_pub(out, subject, reply, data);
  } else {
    nats::write_hpub(out, subject, reply, headers, data);
  }
  if (now) send(scratch_);
  ++stats_.msgs_out;
  return true;
}

void nats_client::request(std::string_view subject, std::string_view headers, std::string_view data,
                          uint32_t timeout_ms, reply_fn done) {
  if (!live()) {
    defer_reply(std::move(done), state_ == nats_state::closed ? ECANCELED : ENOTCONN);
    return;
  }
  if (!nats::valid_subject(subject, false)) {
    defer_reply(std::move(done), EINVAL);
    return;
  }
  if (headers.size() + data.size() > max_payload_) {
    defer_reply(std::move(done), EMSGSIZE);
    return;
  }
  if (requests_.size() >= opts_.requests_in_flight_max) {
    defer_reply(std::move(done), ENOBUFS);
    return;
  }
  uint64_t token = next_token_++;
  std::string reply = prefix_ + "." + std::to_string(token);
  if (!publish(subject, reply, headers, data)) {
    defer_reply(std::move(done), ENOBUFS);
    return;
  }
  auto p = std::make_unique<pending_request>();
  p->client = this;
  p->token = token;
  p->done = std::move(done);
  if (timeout_ms != 0) {
    p->deadline.set_callback(
        [](timer&, void* ctx) {
          auto* req = static_cast<pending_request*>(ctx);
          nats_reply r;
          r.error = ETIMEDOUT;
          req->client->finish_request(req->token, std::move(r));
        },
        p.get());
    reactor_.arm_after_ms(p->deadline, timeout_ms);
  }
  requests_.emplace(token, std::move(p));
}

std::string nats_client::new_inbox() {
  return prefix_ + ".s." + std::to_string(next_inbox_++);
}

uint64_t nats_client::add_state_listener(state_fn fn) {
  uint64_t id = next_listener_++;
  listeners_.emplace(id, std::move(fn));
  return id;
}

void nats_client::remove_state_listener(uint64_t id) {
  listeners_.erase(id);
}

const nats_stats& nats_client::stats() const {
  stats_.requests_in_flight = requests_.size();
  stats_.pending_bytes = pending_.size();
  return stats_;
}

void nats_client::dispatch(const nats::server_op& o) {
  ++stats_.msgs_in;
  uint64_t sid = 0;
  if (!parse_u64(o.sid, sid)) return;
  auto it = subs_.find(sid);
  if (it == subs_.end() || !it->second.on_msg) return;
  nats_msg m{o.subject, o.reply, o.headers, o.payload};
  // Moved out while it runs: the callback may unsubscribe itself.
  msg_fn fn = std::move(it->second.on_msg);
  fn(m);
  it = subs_.find(sid);
  if (it != subs_.end()) it->second.on_msg = std::move(fn);
}

void nats_client::on_reply(const nats_msg& m) {
  std::string_view subject = m.subject;
  if (subject.size() <= prefix_.size() + 1) return;
  uint64_t token = 0;
  if (!parse_u64(subject.substr(prefix_.size() + 1), token)) return;
  nats_reply r;
  r.status = m.status();
  if (r.status == 503) r.error = EHOSTUNREACH;
  r.headers.assign(m.headers);
  r.data.assign(m.data);
  finish_request(token, std::move(r));
}

void nats_client::finish_request(uint64_t token, nats_reply&& r) {
  auto it = requests_.find(token);
  if (it == requests_.end()) return;  // late answer or duplicate
  std::unique_ptr<pending_request> p = std::move(it->second);
  requests_.erase(it);
  reactor_.cancel_timer(p->deadline);
  reply_fn fn = std::move(p->done);
  fn(std::move(r));
}

void nats_client::fail_requests(int error) {
  auto all = std::move(requests_);
  requests_.clear();
  for (auto& [token, p] : all) {
    reactor_.cancel_timer(p->deadline);
    nats_reply r;
    r.error = error;
    reply_fn fn = std::move(p->done);
    fn(std::move(r));
  }
}

void nats_client::flush(unique_function<void(int error)> done) {
  if (!live()) {
    int error = state_ == nats_state::closed ? ECANCELED : ENOTCONN;
    deferred_.push_back([done = std::move(done), error]() mutable { done(error); });
    if (!deferred_timer_.armed()) reactor_.arm_after_ms(deferred_timer_, 0);
    return;
  }
  pongs_.push_back(std::move(done));
  send("PING\r\n");
}

void nats_client::fail_flushes(int error) {
  auto all = std::move(pongs_);
  pongs_.clear();
  for (auto& fn : all)
    if (fn) fn(error);
}

void nats_client::defer_reply(reply_fn done, int error) {
  deferred_.push_back([done = std::move(done), error]() mutable {
    nats_reply r;
    r.error = error;
    done(std::move(r));
  });
  if (!deferred_timer_.armed()) reactor_.arm_after_ms(deferred_timer_, 0);
}

void nats_client::on_deferred_timer() {
  auto ready = std::move(deferred_);
  deferred_.clear();
  for (auto& fn : ready) fn();
  if (stop_done_) {
    // Failures deferred by the callbacks just run come first: each is called before `done`.
    if (sock_ != nullptr || !connector_->idle() || !deferred_.empty()) {
      if (!deferred_timer_.armed()) reactor_.arm_after_ms(deferred_timer_, 5);
      return;
    }
    unique_function<void()> fn = std::move(stop_done_);
    stop_done_ = nullptr;
    fn();
  }
}

}  // namespace rc::server
