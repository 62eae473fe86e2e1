#include "http_client_request.h"

#include <algorithm>
#include <string>

#include "base/assert.h"
#include "http_connection.h"

namespace rc::server {
namespace {

bool target_ok(std::string_view t) {
  return !t.empty() && http1::field_text_ok(t) && t.find(' ') == std::string_view::npos;
}

bool has_header(const http_request& r, std::string_view name) {
  return std::any_of(r.headers.begin(), r.headers.end(), [&](const auto& h) {
    return h.first.size() == name.size() &&
           std::equal(h.first.begin(), h.first.end(), name.begin(),
                      [](char a, char b) { return (a | 0x20) == (b | 0x20); });
  });
}

}  // namespace

client_request::client_request(client_pool& pool, http_request req, response_sink& sink)
    : pool_(pool), req_(std::move(req)), sink_(&sink) {
  timer_.bind<client_request, &client_request::on_timer>(this);
}

client_request::~client_request() {
  // REQUIRES: ended and let go of by its handle.
  RC_ASSERT(phase_ == phase::done && conn_ == nullptr);
}

bool client_request::begin() {
  reactor& loop = pool_.client_.reactor_;
  start_ms_ = loop.now_ms();
  connect_start_ms_ = start_ms_;
  head_ok_ = http1::field_name_ok(req_.method) && target_ok(req_.target);
  for (const auto& [name, value] : req_.headers)
    head_ok_ = head_ok_ && http1::field_name_ok(name) && http1::field_text_ok(value);
  if (!head_ok_) {
    // Reported from the loop, like every other outcome.
    loop.arm_after_ms(timer_, 0);
    return false;
  }
  http1::request_writer w(head_);
  w.start(req_.method, req_.target);
  if (!has_header(req_, "host")) w.header("Host", pool_.host_field_);
  for (const auto& [name, value] : req_.headers) w.header(name, value);
  bool bodiless =
      req_.body.size() == 0 && (req_.upgrade || req_.method == "GET" || req_.method == "HEAD");
  if (bodiless) {
    w.end_no_body();
  } else {
    w.end_with_length(req_.body.size());
  }
  arm();
  return true;
}

http1::request_method_kind client_request::method_kind() const {
  return req_.method == "HEAD" ? http1::request_method_kind::head
                               : http1::request_method_kind::other;
}

void client_request::attach(http_connection& c, bool reused) {
  RC_ASSERT(phase_ == phase::waiting && conn_ == nullptr);
  conn_ = &c;
  phase_ = phase::sent;
  attach_ms_ = pool_.client_.reactor_.now_ms();
  if (reused) ++pool_.stats_.reused;
  c.attach(*this, head_, req_.body);
  if (paused_) c.pause_reading();
  arm();
}

bool client_request::can_retry_stale() const {
  return !stale_retry_used_ && phase_ == phase::sent;
}

void client_request::retry_stale() {
  stale_retry_used_ = true;
  conn_ = nullptr;
  phase_ = phase::waiting;
  ++pool_.stats_.stale_resends;
  // A fresh connect deadline: the time spent on the dead connection was not the new one's.
  connect_start_ms_ = pool_.client_.reactor_.now_ms();
  arm();
  pool_.acquire(*this);
}

void client_request::note_bytes() {
  last_byte_ms_ = pool_.client_.reactor_.now_ms();
  if (phase_ == phase::sent) {
    phase_ = phase::receiving;
    arm();
  }
}

// One timer serves every deadline: it is armed for the earliest that applies in this phase and
// re-checked when it fires (the idle deadline moves with every byte without touching the wheel).
void client_request::arm() {
  const client_timeouts& t = req_.timeouts;
  uint64_t deadline = UINT64_MAX;
  if (t.total_ms) deadline = start_ms_ + t.total_ms;
  switch (phase_) {
    case phase::waiting:
      if (t.connect_ms) deadline = std::min<uint64_t>(deadline, connect_start_ms_ + t.connect_ms);
      break;
    case phase::sent:
      if (t.first_byte_ms) deadline = std::min<uint64_t>(deadline, attach_ms_ + t.first_byte_ms);
      break;
    case phase::receiving:
      if (t.idle_ms && !paused_) deadline = std::min<uint64_t>(deadline, last_byte_ms_ + t.idle_ms);
      break;
    case phase::done:
      return;
  }
  reactor& loop = pool_.client_.reactor_;
  if (deadline == UINT64_MAX) {
    loop.cancel_timer(timer_);
  } else {
    loop.arm_at_ms(timer_, deadline);
  }
}

void client_request::on_timer() {
  if (phase_ == phase::done) return;
  if (!head_ok_) {
    deliver_error(client_error::protocol, "a request header holds bytes that cannot be sent");
    return;
  }
  const client_timeouts& t = req_.timeouts;
  uint64_t now = pool_.client_.reactor_.now_ms();
  client_error kind = client_error::none;
  std::string why;
  if (t.total_ms && now >= start_ms_ + t.total_ms) {
    kind = client_error::timeout_total;
    why = "the exchange took longer than " + std::to_string(t.total_ms) + " ms";
  } else if (phase_ == phase::waiting && t.connect_ms && now >= connect_start_ms_ + t.connect_ms) {
    if (waiting_for_slot()) {
      kind = client_error::pool_exhausted;
      why = "no free connection to " + pool_.label_ + " within " + std::to_string(t.connect_ms) +
            " ms: all " + std::to_string(pool_.options_.max_connections) + " connections in use";
    } else {
      kind = client_error::timeout_connect;
      why = "no connection to " + pool_.label_ + " within " + std::to_string(t.connect_ms) + " ms";
    }
  } else if (phase_ == phase::sent && t.first_byte_ms && now >= attach_ms_ + t.first_byte_ms) {
    kind = client_error::timeout_first_byte;
    why = "no response within " + std::to_string(t.first_byte_ms) + " ms";
  } else if (phase_ == phase::receiving && t.idle_ms && !paused_ &&
             now >= last_byte_ms_ + t.idle_ms) {
    kind = client_error::timeout_idle;
    why = "nothing received for " + std::to_string(t.idle_ms) + " ms";
  }
  if (kind == client_error::none) {
    arm();
    return;
  }
  if (conn_) {
    http_connection* c = std::exchange(conn_, nullptr);
    c->detach_and_abort();
  } else if (phase_ == phase::waiting) {
    pool_.withdraw(*this);
  }
  deliver_error(kind, why);
}

// The pool serves its waiters in order, the first `connecting_` of them from the connects in
// progress; a waiter behind those, in a pool at max_connections, waits for a slot.
bool client_request::waiting_for_slot() const {
  const auto& w = pool_.waiting_;
  auto it = std::find(w.begin(), w.end(), this);
  if (it == w.end()) return false;
  return static_cast<uint32_t>(it - w.begin()) >= pool_.connecting_ &&
         pool_.open_connections() >= pool_.options_.max_connections;
}

void client_request::deliver_head(const http1::response& head) {
  ++depth_;
  sink_->on_response_head(head);
  --depth_;
  maybe_free();
}

void client_request::deliver_body(std::string_view bytes) {
  ++depth_;
  sink_->on_response_body(bytes);
  --depth_;
  maybe_free();
}

void client_request::deliver_end() {
  conn_ = nullptr;
  end();
  ++depth_;
  sink_->on_response_end();
  --depth_;
  maybe_free();
}

void client_request::deliver_error(client_error kind, std::string_view message) {
  conn_ = nullptr;
  ++pool_.stats_.errors[static_cast<size_t>(kind)];
  end();
  ++depth_;
  sink_->on_response_error(kind, message);
  --depth_;
  maybe_free();
}

void client_request::deliver_upgraded(std::unique_ptr<upgraded_connection> conn,
                                      const http1::response& head) {
  conn_ = nullptr;
  end();
  ++depth_;
  sink_->on_upgraded(std::move(conn), head);
  --depth_;
  maybe_free();
}

void client_request::end() {
  RC_ASSERT(phase_ != phase::done);
  phase_ = phase::done;
  pool_.client_.reactor_.cancel_timer(timer_);
  RC_ASSERT(pool_.outstanding_ > 0);
  --pool_.outstanding_;
}

void client_request::orphan() {
  conn_ = nullptr;
  if (phase_ != phase::done) {
    phase_ = phase::done;
    pool_.client_.reactor_.cancel_timer(timer_);
  }
  maybe_free();
}

void client_request::release_handle() {
  handle_alive_ = false;
  if (phase_ != phase::done) {
    if (conn_) {
      http_connection* c = std::exchange(conn_, nullptr);
      c->detach_and_abort();
    } else if (phase_ == phase::waiting) {
      pool_.withdraw(*this);
    }
    end();
  }
  maybe_free();
}

void client_request::pause() {
  if (paused_ || phase_ == phase::done) return;
  paused_ = true;
  if (conn_) conn_->pause_reading();
  arm();
}

void client_request::resume() {
  if (!paused_ || phase_ == phase::done) return;
  paused_ = false;
  // The idle clock restarts: the wait was ours, not the upstream's.
  last_byte_ms_ = pool_.client_.reactor_.now_ms();
  arm();
  if (conn_) conn_->resume_reading();
}

void client_request::maybe_free() {
  if (!handle_alive_ && phase_ == phase::done && depth_ == 0) delete this;
}

}  // namespace rc::server
