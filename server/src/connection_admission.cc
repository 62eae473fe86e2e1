// connection: admission of API requests and WebSocket actions — the key, the budget it draws on
// (limits.h), and the rate token, which may have to come from the budget's home shard.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "base/assert.h"
#include "proto/openai_errors.h"
#include "server/admission.h"
#include "server/authentication.h"
#include "server/connection.h"
#include "server/openai_api.h"
#include "server/shard.h"
#include "server/ws_endpoint.h"

namespace rc::server {

const std::array<uint8_t, 16>& connection::client_prefix() {
  RC_ASSERT(http_);  // admission of a request (a WebSocket keeps the subject it was admitted as)
  std::array<uint8_t, 16>& prefix = http_->client_prefix;
  if (http_->client_prefix_known) return prefix;
  http_->client_prefix_known = true;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return prefix;
  if (ss.ss_family == AF_INET) {
    // IPv4-mapped (::ffff:a.b.c.d): the whole address.
    prefix[10] = prefix[11] = 0xff;
    std::memcpy(prefix.data() + 12, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, 4);
  } else if (ss.ss_family == AF_INET6) {
    const uint8_t* a = reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr.s6_addr;
    bool v4_mapped =
        std::all_of(a, a + 10, [](uint8_t b) { return b == 0; }) && a[10] == 0xff && a[11] == 0xff;
    std::memcpy(prefix.data(), a, v4_mapped ? 16 : 8);  // IPv6: the /64
  }
  return prefix;
}

void connection::choose_budget(const api_key* key, limit_subject& s, limit_rule& r) {
  const server_config& cfg = shard_.config();
  double burst = 0;
  if (key) {
    s.what = limit_subject::kind::key;
    s.key_index = key->index;
    r.rps = key->rps > 0 ? key->rps : cfg.rate_limit_rps;
    burst = key->burst > 0 ? key->burst : cfg.rate_limit_burst;
    r.streams_max = key->streams_max > 0 ? key->streams_max : cfg.key_streams_max;
  } else if (cfg.anon_rate_limit_rps > 0 || cfg.anon_streams_max > 0) {
    s.what = limit_subject::kind::address;
    s.address = client_prefix();
    r.rps = cfg.anon_rate_limit_rps;
    burst = cfg.anon_rate_limit_burst;
    r.streams_max = cfg.anon_streams_max;
  } else {
    s.what = limit_subject::kind::anonymous;
    r.rps = cfg.rate_limit_rps;
    burst = cfg.rate_limit_burst;
    r.streams_max = cfg.key_streams_max;
  }
  r.burst = std::max(burst > 0 ? burst : r.rps, 1.0);
}

connection::admission_ticket& connection::ticket() {
  if (!ticket_) ticket_ = std::make_unique<admission_ticket>();
  return *ticket_;
}

bool connection::prepare_admission(const http1::request& req, route_match& m, bool& matched) {
  using st = admission_ticket::state;
  admission_ticket& t = ticket();
  if (t.st != st::none) return t.st == st::decided;
  t.st = st::decided;
  t.rules = shard_.rules();  // keeps the key found below alive until dispatch
  t.subject = {};
  t.rule = {};
  m = match_route(req.method, req.path);
  matched = true;
  std::string_view path = req.path;
  if (!path.starts_with("/v1/") && !path.starts_with("/api/") && path != "/ws") return true;
  // A CORS preflight is answered before admission (dispatch): it takes nothing.
  if (req.method == http1::method::options && m.status == 405) return true;
  t.api = true;
  if (authentication_required(shard_)) {
    auth_result a = authenticate(shard_, req, m.route);
    if (a.refusal) {
      t.refusal = std::make_unique<openai::api_error>(std::move(*a.refusal));
      return true;
    }
    t.key = a.key;
    t.token = std::move(a.token);
  }
  choose_budget(t.key, t.subject, t.rule);
  if (t.rule.rps <= 0) return true;
  t.rated = true;
  shard_limits& limits = shard_.budgets();
  if (auto d = limits.try_take(t.subject, t.rule, shard_.loop().now_us())) {
    t.rate = *d;
    return true;
  }
  t.st = st::waiting;
  uint64_t id = id_;
  limits.ask(t.subject, t.rule, [id](const rate_decision& d) {
    if (connection* c = shard_server::current()->find_connection(id)) c->on_rate_answer(d);
  });
  return false;
}

void connection::on_rate_answer(const rate_decision& d) {
  if (!waiting_admission()) return;  // the request was abandoned meanwhile
  ticket_->st = admission_ticket::state::decided;
  ticket_->rate = d;
  ticket_->until_us = shard_.loop().now_us() + shard_limits::lease_ms * 1000;
  if (phase_ == phase::closing) return;
  if (mode_ == mode::ws) {
    if (ws_) ws_->release_held();
    account_inbound();  // the held messages no longer count
    update_timer();
    return;
  }
  if (mode_ != mode::http || async_) return;
  size_t used = process(http_->in.data(), http_->in.size(), http_->in.capacity());
  http_->in.consume(used);
  http_->in.release_if_empty();
  hand_over_to_websocket();
  if (eof_ && phase_ == phase::reading && !waiting_admission() && deferred_.empty()) {
    // The peer finished sending while this request waited and what is left can't complete.
    phase_ = phase::closing;
    close_after_flush(shard_.config().linger_ms);
  } else if (input_paused_) {
    resume_input();  // receiving may have paused while this request waited
  }
  account_inbound();  // process() consumed what was held
  update_timer();
}

void connection::reset_ticket() {
  if (!ticket_) return;
  if (mode_ == mode::ws) {
    ticket_.reset();  // a WebSocket holds one only while a message's admission is decided
    return;
  }
  admission_ticket& t = *ticket_;
  t.st = admission_ticket::state::none;
  t.api = t.rated = false;
  t.key = nullptr;
  if (t.refusal) t.refusal.reset();
  t.token.reset();
  if (t.rules) t.rules = rules_ref();
}

bool connection::admit(const http1::request&) {
  admission_ticket& t = ticket();
  RC_ASSERT(t.st == admission_ticket::state::decided);
  t.st = admission_ticket::state::none;  // this request takes it; the rest is reset below
  current_.key = t.key;
  token_ = std::move(t.token);
  current_.subject = t.subject;
  current_.rule = t.rule;
  if (!t.api) return true;
  auto& m = shard_.metrics();
  if (t.refusal) {
    reject_reason why = t.refusal->status == 403 ? reject_reason::permission : reject_reason::auth;
  if (t.refusal->code == "origin_not_allowed") why = reject_reason::origin;  // Basic, cross-site
    ++m.rejected[static_cast<size_t>(why)];
    openai::api_error refusal = std::move(*t.refusal);
    reset_ticket();
    // OpenAI's missing-key error has a null code; ringcast's own routes always name it.
    if (!refusal.code && !openai_compatible(current_.route)) refusal.code = "missing_api_key";
    respond_api_error(*this, refusal);
    return false;
  }
  t.api = false;
  t.key = nullptr;
  if (t.rated) {
    current_.rate_headers = true;
    current_.rate_limit = t.rate.limit;
    current_.rate_remaining = t.rate.remaining;
    current_.rate_reset_ms = t.rate.reset_ms;
    t.rated = false;
    if (!t.rate.allowed) {
      ++m.rejected[static_cast<size_t>(reject_reason::rate)];
      respond_api_error(*this, openai::rate_limited("Rate limit reached for requests"),
                        t.rate.retry_after_ms);
      return false;
    }
  }
  ++m.admitted;
  return true;
}

bool connection::ws_admission_ready() {
  using st = admission_ticket::state;
  if (waiting_admission()) return false;
  if (current_.rule.rps <= 0) return true;
  uint64_t now = shard_.loop().now_us();
  if (ticket_ && ticket_->st == st::decided && now < ticket_->until_us) return true;
  reset_ticket();
  shard_limits& limits = shard_.budgets();
  if (limits.can_decide(current_.subject, now)) return true;
  ticket().st = st::waiting;
  uint64_t id = id_;
  limits.ask(current_.subject, current_.rule, [id](const rate_decision& d) {
    if (connection* c = shard_server::current()->find_connection(id)) c->on_rate_answer(d);
  });
  return false;
}

bool connection::admit_ws_action(uint64_t& retry_after_ms) {
  auto& m = shard_.metrics();
  if (current_.rule.rps > 0) {
    uint64_t now = shard_.loop().now_us();
    rate_decision d;
    if (ticket_ && ticket_->st == admission_ticket::state::decided && now < ticket_->until_us) {
      d = ticket_->rate;
    } else if (auto got = shard_.budgets().try_take(current_.subject, current_.rule, now)) {
      d = *got;
    } else {
      // Only the home can tell, and this message was not held for it (ws_admission_ready runs
      // before every message of an admitting handler): refuse rather than guess.
      d.allowed = false;
      d.retry_after_ms = 1;
    }
    reset_ticket();
    if (!d.allowed) {
      ++m.rejected[static_cast<size_t>(reject_reason::rate)];
      retry_after_ms = d.retry_after_ms;
      return false;
    }
  }
  ++m.admitted;
  return true;
}

}  // namespace rc::server
