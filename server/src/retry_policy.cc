#include "server/retry_policy.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <ctime>
#include <string>

#include "base/assert.h"

namespace rc::server {

retry_policy::retry_policy(const retry_options& o, uint64_t seed) : opts_(o), state_(seed | 1) {}

uint64_t retry_policy::next_random() {
  // xorshift64*: cheap, and plenty for spreading retries.
  state_ ^= state_ >> 12;
  state_ ^= state_ << 25;
  state_ ^= state_ >> 27;
  return state_ * 2685821657736338717ull;
}

bool retry_policy::retryable(const attempt_result& r) {
  if (r.relayed) return false;
  switch (r.error) {
    case client_error::connect_failed:
    case client_error::timeout_connect:
      return true;
    case client_error::reset:
      return !r.got_response_bytes;
    case client_error::none:
      return r.status == 429 || r.status == 502 || r.status == 503 || r.status == 504;
    default:
      return false;
  }
}

uint32_t retry_policy::backoff_ms(uint32_t n) {
  RC_ASSERT(n >= 1);
  uint64_t full = opts_.backoff_base_ms;
  for (uint32_t i = 1; i < n && full < opts_.backoff_cap_ms; ++i) full *= 2;
  full = std::min<uint64_t>(full, opts_.backoff_cap_ms);
  uint64_t half = full / 2;
  uint64_t jitter = full - half == 0 ? 0 : next_random() % (full - half + 1);
  return static_cast<uint32_t>(half + jitter);
}

retry_decision retry_policy::decide(const attempt_result& r, uint32_t attempts, uint64_t now_ms,
                                    uint64_t deadline_ms) {
  retry_decision d;
  if (r.relayed) {
    d.reason = "output already relayed";
    return d;
  }
  if (!retryable(r)) {
    d.reason = "not retryable";
    return d;
  }
  if (attempts > opts_.retries_max) {
    d.reason = "retries exhausted";
    return d;
  }
  uint64_t delay = backoff_ms(attempts);
  if (r.retry_after_ms) {
    if (*r.retry_after_ms > opts_.retry_after_cap_ms) {
      d.reason = "retry-after beyond the cap";
      return d;
    }
    delay = std::max<uint64_t>(delay, *r.retry_after_ms);
  }
  if (deadline_ms != 0 && now_ms + delay >= deadline_ms) {
    d.reason = "deadline";
    return d;
  }
  d.retry = true;
  d.delay_ms = static_cast<uint32_t>(delay);
  d.prefer_other_endpoint = true;
  d.reason = "retryable";
  return d;
}

std::optional<uint64_t> parse_retry_after(std::string_view v, std::time_t now_s) {
  if (v.empty()) return std::nullopt;
  uint64_t seconds = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), seconds);
  if (ec == std::errc() && p == v.data() + v.size()) {
    if (seconds > UINT64_MAX / 1000) return std::nullopt;
    return seconds * 1000;
  }
  // IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 §5.6.7).
  std::string text(v);
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  std::time_t at = timegm(&tm);
  if (at <= now_s) return 0;
  return static_cast<uint64_t>(at - now_s) * 1000;
}

std::optional<uint64_t> retry_after_of(const http1::response& head, std::time_t now_s) {
  std::string_view ms = head.find("retry-after-ms");
  if (!ms.empty()) {
    // Milliseconds, possibly fractional ("1500.5"): the integer part is enough.
    uint64_t n = 0;
    auto [p, ec] = std::from_chars(ms.data(), ms.data() + ms.size(), n);
    if (ec == std::errc() && (p == ms.data() + ms.size() || *p == '.')) return n;
  }
  return parse_retry_after(head.find("retry-after"), now_s);
}

}  // namespace rc::server
