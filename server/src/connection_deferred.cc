// connection: deferred answers (see connection.h, defer()).
//
// A publication to a topic homed on another shard is answered once the home has sequenced it:
// a mailbox round trip. Answered strictly one at a time, a publisher that pipelines would get
// one publication per round trip, and every subscriber one event per send. Deferring lets the
// connection parse the publications pipelined behind it meanwhile, so a whole run of them
// crosses to the home in one turn and reaches the subscribers together.
//
// While answers are deferred only further keep-alive topic publications are dispatched (other
// requests wait in the input buffer until every answer is written, as behind any asynchronous
// response). Every answer written meanwhile — a deferred one when it comes, or one given at once
// (a refusal, an error) — is rendered into its slot with the request state it was dispatched
// with (swapped in as current_), and slots leave in request order.
//
// Thread-safety: owned by its shard, like the connection.
#include "server/authentication.h"
#include "server/connection.h"
#include "server/shard.h"

namespace rc::server {

namespace {

// Publications one connection may have waiting for their answers: about what a publisher
// pipelines; past it the connection waits for the oldest answer, as before deferring existed.
constexpr size_t deferred_max = 128;

}  // namespace

uint64_t connection::defer() {
  if (mode_ != mode::http || phase_ != phase::handling || answering_ || !current_.keep_alive ||
      current_.head || deferred_.size() >= deferred_max)
    return 0;
  deferred_answer& d = deferred_.emplace_back();
  d.ticket = next_ticket_++;
  d.request = current_;
  d.access = std::move(access_);
  if (d.access) {
    access_ = std::make_unique<access_state>(*d.access);  // for the next request
    access_->open = false;
  }
  d.rules = rules_;
  d.token = std::move(token_);
  // The request is the connection's no longer: parsing goes on behind it.
  phase_ = phase::idle;
  return d.ticket;
}

bool connection::may_follow_deferred(const http1::request& req) const {
  if (deferred_.size() >= deferred_max || close_after_answers_) return false;
  const auto& cfg = shard_.config();
  bool keep_alive = req.keep_alive && !shard_.draining() &&
                    (cfg.keepalive_requests_max == 0 ||
                     requests_served_ + deferred_.size() + 1 < cfg.keepalive_requests_max);
  return keep_alive && match_route(req.method, req.path).route == route_id::topic_publish;
}

bool connection::enter_deferred(uint64_t ticket) {
  if (phase_ == phase::closing || closing() || answering_) return false;
  deferred_answer* d = nullptr;
  for (deferred_answer& a : deferred_)
    if (a.ticket == ticket && !a.ready) d = &a;
  if (!d) return false;
  std::swap(current_, d->request);
  std::swap(access_, d->access);
  std::swap(rules_, d->rules);
  std::swap(token_, d->token);
  // Draining: the last outstanding answer says Connection: close, as the pending response of a
  // request in progress does (connection_drain.cc); nothing is dispatched behind it any more.
  if (shard_.draining() && d == &deferred_.back()) current_.keep_alive = false;
  answering_ = d;
  answering_phase_ = phase_;
  phase_ = phase::handling;
  render_to_ = &d->bytes;
  return true;
}

void connection::leave_deferred() {
  deferred_answer& d = *answering_;
  RC_ASSERT(phase_ != phase::handling);  // the answer was written
  d.ready = true;
  std::swap(current_, d.request);
  std::swap(access_, d.access);
  std::swap(rules_, d.rules);
  std::swap(token_, d.token);
  d.access.reset();
  d.token.reset();
  d.rules = rules_ref();
  answering_ = nullptr;
  render_to_ = nullptr;
  phase_ = answering_phase_;
  write_ready_answers();
}

void connection::hold_answer() {
  deferred_answer& d = deferred_.emplace_back();
  d.ready = true;
  render_to_ = &d.bytes;
}

void connection::write_ready_answers() {
  bool wrote = false;
  while (!deferred_.empty() && deferred_.front().ready) {
    byte_buffer& b = deferred_.front().bytes;
    out().append(b.view());
    deferred_.pop_front();
    wrote = true;
  }
  if (wrote) flush();
  if (!deferred_.empty() || phase_ == phase::closing) return;
  if (close_after_answers_ || (eof_ && phase_ == phase::idle && input_empty()) ||
      (shard_.draining() && phase_ == phase::idle && input_empty())) {
    phase_ = phase::closing;
    close_after_flush(shard_.config().linger_ms);
    update_timer();
    return;
  }
  // Parse what waited behind the answers, in a later turn: this may run inside another
  // connection's request (a mailbox message).
  uint64_t id = id_;
  shard_.loop().post(shard_.id(), [id] {
    if (auto* c = shard_server::current()->find_connection(id)) c->resume_input();
  });
  update_timer();
}

}  // namespace rc::server
