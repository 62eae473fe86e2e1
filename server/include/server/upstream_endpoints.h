// upstream_endpoints: the endpoints of one upstream on one shard, with the choice of where a
// request goes and a circuit breaker per endpoint.
//
// Choice: the endpoint with the fewest outstanding requests (started on its pool and not yet
// ended) among those whose breaker lets a request through; ties rotate, so equal endpoints
// share the load round-robin. A caller retrying after a failure names the endpoint to avoid:
// another one is taken when any is available, the same one only when it is the last left.
//
// Circuit breaker (per endpoint): closed — requests flow; `failures_to_open` consecutive
// failures open it. Open — no request is sent there for `cool_down_ms`; then it is half-open:
// exactly one request (the probe) goes through; its success closes the breaker, its failure
// opens it for another cool-down. A probe that ends neither way (the caller cancelled) frees the
// slot for the next probe. What a failure is, is the caller's call (connect failures, resets,
// timeouts, protocol errors and 5xx answers, typically; a 4xx is the client's fault, not the
// endpoint's), reported with on_success()/on_failure().
//
// Metrics hooks: per endpoint, its pool's stats (requests, errors by kind, idle/busy), the
// breaker's state and how often it opened, and retries noted by the caller.
//
// Thread-safety: one shard; nothing is shared with other shards.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "server/http_client.h"

namespace rc::server {

struct breaker_options {
  uint32_t failures_to_open = 5;  // 0: never opens
  uint32_t cool_down_ms = 10000;
};

enum class breaker_state : uint8_t { closed, open, half_open };
std::string_view name_of(breaker_state s);

class circuit_breaker {
 public:
  explicit circuit_breaker(const breaker_options& o = {}) : opts_(o) {}

  // The state at `now_ms` (an open breaker past its cool-down reads half_open).
  breaker_state state(uint64_t now_ms) const;
  // Whether a request could be sent now (closed, or half-open with no probe out).
  bool available(uint64_t now_ms) const;
  // Sends a request through: REQUIRES available(now_ms). In half-open, takes the probe slot.
  void admit(uint64_t now_ms);
  void on_success();
  void on_failure(uint64_t now_ms);
  // The admitted request ended without a verdict (cancelled): frees a probe slot.
  void on_abandoned();
  // When an open breaker lets the next probe through (0 if not open).
  uint64_t reopens_at_ms() const {
    return state_ == breaker_state::open ? opened_ms_ + opts_.cool_down_ms : 0;
  }
  uint64_t times_opened() const { return times_opened_; }
  void set_options(const breaker_options& o) { opts_ = o; }

 private:
  void open(uint64_t now_ms);

  breaker_options opts_;
  breaker_state state_ = breaker_state::closed;  // open stays stored as open past cool-down
  uint32_t consecutive_failures_ = 0;
  uint64_t opened_ms_ = 0;
  bool probe_out_ = false;
  uint64_t times_opened_ = 0;
};

// The least-loaded available candidate, ties broken by the rotation `start`: index or -1.
struct endpoint_candidate {
  bool available = false;
  uint32_t outstanding = 0;
};
int choose_least_outstanding(const std::vector<endpoint_candidate>& c, size_t start, int avoid);

class endpoint_set {
 public:
  endpoint_set(http_client& client, const std::vector<url::endpoint>& endpoints,
               const pool_options& pools, const breaker_options& breakers);

  size_t size() const { return members_.size(); }
  // Picks an endpoint for a request (admitting it through that breaker), or -1 when every
  // breaker is open: then retry_after_ms() says when one reopens.
  int choose(uint64_t now_ms, int avoid = -1);
  client_pool& pool(int i) { return *members_[static_cast<size_t>(i)].pool; }
  circuit_breaker& breaker(int i) { return members_[static_cast<size_t>(i)].breaker; }
  // Milliseconds from now until the first open breaker lets a probe through (at least 1).
  uint64_t retry_after_ms(uint64_t now_ms) const;

  void on_success(int i) { breaker(i).on_success(); }
  void on_failure(int i, uint64_t now_ms) { breaker(i).on_failure(now_ms); }
  void on_abandoned(int i) { breaker(i).on_abandoned(); }
  void note_retry(int i) { ++members_[static_cast<size_t>(i)].retries; }
  uint64_t retries(int i) const { return members_[static_cast<size_t>(i)].retries; }

 private:
  struct member {
    client_pool* pool;
    circuit_breaker breaker;
    uint64_t retries = 0;
  };
  std::vector<member> members_;
  size_t rotation_ = 0;
};

}  // namespace rc::server
