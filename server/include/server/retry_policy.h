// retry_policy: whether and when an upstream request that failed is tried again.
//
// Only before the first byte reached the client: once anything was relayed, a retry would
// duplicate output, so the caller reports `relayed` and gets "no". Retryable outcomes are the
// ones where trying again (preferably elsewhere) can help and the upstream most likely did no
// work: connect_failed, timeout_connect, a reset before any response byte, and the answers that
// say "not now" — 429, 502, 503, 504. Never retried: timeout_first_byte (the upstream may be
// generating: a retry would run the request twice and double the load that made it slow; the
// client gets 504), 500 (an engine that crashed on a request usually crashes again), protocol and
// tls errors (a broken or misconfigured upstream stays so), timeout_idle and timeout_total, other
// statuses, a reset after the response started.
//
// When: jittered exponential backoff ("equal jitter": half of base·2^(n-1), capped, plus a random
// part of the same size, so synchronized clients spread out); a Retry-After (or the OpenAI
// `retry-after-ms`) from the upstream is honoured when it is within retry_after_cap_ms and
// refused (no retry, the client gets the upstream's answer) beyond it. No retry that would
// start after the request's deadline. A retry prefers another endpoint (endpoint_set::choose
// with `avoid`).
//
// Thread-safety: a policy object holds a random state; one per shard (or per engine).
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string_view>

#include "proto/http1_response.h"
#include "server/http_client.h"

namespace rc::server {

struct retry_options {
  uint32_t retries_max = 2;  // attempts = 1 + retries_max
  uint32_t backoff_base_ms = 100;
  uint32_t backoff_cap_ms = 2000;
  uint32_t retry_after_cap_ms = 10000;
};

// How one attempt ended.
struct attempt_result {
  client_error error = client_error::none;  // none: the upstream answered with `status`
  int status = 0;
  std::optional<uint64_t> retry_after_ms;  // from the answer's head
  bool got_response_bytes = false;         // any byte of the answer arrived (for reset)
  bool relayed = false;                    // anything was already sent on to the client
};

struct retry_decision {
  bool retry = false;
  uint32_t delay_ms = 0;
  bool prefer_other_endpoint = false;
  std::string_view reason;  // why not (or "retryable"), for logs and tests
};

class retry_policy {
 public:
  explicit retry_policy(const retry_options& o = {}, uint64_t seed = 0x9e3779b97f4a7c15ull);

  // After `attempts` attempts (>= 1) of which the last ended as `r`, at now_ms; deadline_ms is
  // the request's overall deadline (0: none).
  retry_decision decide(const attempt_result& r, uint32_t attempts, uint64_t now_ms,
                        uint64_t deadline_ms);

  // Whether an outcome is of the retryable kind at all (ignoring counts and time).
  static bool retryable(const attempt_result& r);
  // The backoff before retry number `n` (1-based), with jitter.
  uint32_t backoff_ms(uint32_t n);
  void set_options(const retry_options& o) { opts_ = o; }

 private:
  uint64_t next_random();
  retry_options opts_;
  uint64_t state_;
};

// The upstream's requested wait, from `retry-after-ms` (milliseconds, OpenAI) or `Retry-After`
// (delta-seconds or an HTTP-date, compared with now_s); nullopt when absent or unreadable.
std::optional<uint64_t> retry_after_of(const http1::response& head, std::time_t now_s);
std::optional<uint64_t> parse_retry_after(std::string_view value, std::time_t now_s);

}  // namespace rc::server
