#include "server/upstream_endpoints.h"

#include <algorithm>

#include "base/assert.h"

namespace rc::server {

std::string_view name_of(breaker_state s) {
  switch (s) {
    case breaker_state::closed:
      return "closed";
    case breaker_state::open:
      return "open";
    case breaker_state::half_open:
      return "half_open";
  }
  return "unknown";
}

breaker_state circuit_breaker::state(uint64_t now_ms) const {
  if (state_ == breaker_state::open && now_ms >= opened_ms_ + opts_.cool_down_ms)
    return breaker_state::half_open;
  return state_;
}

bool circuit_breaker::available(uint64_t now_ms) const {
  switch (state(now_ms)) {
    case breaker_state::closed:
      return true;
    case breaker_state::open:
      return false;
    case breaker_state::half_open:
      return !probe_out_;
  }
  return false;
}

void circuit_breaker::admit(uint64_t now_ms) {
  RC_ASSERT(available(now_ms));
  if (state(now_ms) == breaker_state::half_open) {
    state_ = breaker_state::half_open;
    probe_out_ = true;
  }
}

void circuit_breaker::on_success() {
  consecutive_failures_ = 0;
  probe_out_ = false;
  state_ = breaker_state::closed;
}

void circuit_breaker::on_failure(uint64_t now_ms) {
  if (state_ == breaker_state::half_open) {
    // The probe failed: another cool-down.
    probe_out_ = false;
    open(now_ms);
    return;
  }
  if (state_ == breaker_state::open) return;  // a request admitted before it opened
  ++consecutive_failures_;
  if (opts_.failures_to_open > 0 && consecutive_failures_ >= opts_.failures_to_open) open(now_ms);
}

void circuit_breaker::on_abandoned() {
  if (state_ == breaker_state::half_open) probe_out_ = false;
}

void circuit_breaker::open(uint64_t now_ms) {
  state_ = breaker_state::open;
  opened_ms_ = now_ms;
  consecutive_failures_ = 0;
  ++times_opened_;
}

int choose_least_outstanding(const std::vector<endpoint_candidate>& c, size_t start, int avoid) {
  int best = -1, fallback = -1;
  const size_t n = c.size();
  for (size_t k = 0; k < n; ++k) {
    size_t i = (start + k) % n;
    if (!c[i].available) continue;
    if (static_cast<int>(i) == avoid) {
      fallback = static_cast<int>(i);
      continue;
    }
    if (best < 0 || c[i].outstanding < c[static_cast<size_t>(best)].outstanding)
      best = static_cast<int>(i);
  }
  return best >= 0 ? best : fallback;
}

endpoint_set::endpoint_set(http_client& client, const std::vector<url::endpoint>& endpoints,
                           const pool_options& pools, const breaker_options& breakers) {
  members_.reserve(endpoints.size());
  for (const url::endpoint& e : endpoints)
    members_.push_back(member{&client.pool(e, pools), circuit_breaker(breakers)});
}

int endpoint_set::choose(uint64_t now_ms, int avoid) {
  if (members_.empty()) return -1;
  std::vector<endpoint_candidate> c(members_.size());
  for (size_t i = 0; i < members_.size(); ++i) {
    c[i].available = members_[i].breaker.available(now_ms);
    c[i].outstanding = members_[i].pool->outstanding();
  }
  int i = choose_least_outstanding(c, rotation_++ % members_.size(), avoid);
  if (i >= 0) breaker(i).admit(now_ms);
  return i;
}

uint64_t endpoint_set::retry_after_ms(uint64_t now_ms) const {
  uint64_t soonest = UINT64_MAX;
  for (const member& m : members_) {
    uint64_t at = m.breaker.reopens_at_ms();
    if (at != 0) soonest = std::min(soonest, at);
  }
  if (soonest == UINT64_MAX || soonest <= now_ms) return 1;
  return soonest - now_ms;
}

}  // namespace rc::server
