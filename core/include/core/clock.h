// Clocks. Shards read the monotonic clock once per loop turn and use that value for every
// timer and deadline in the turn (reactor::now_ms), so hot paths never call the clock.
//
// Thread-safety: pure functions over clock_gettime (vDSO, no syscall).
#pragma once

#include <time.h>

#include <cstdint>

namespace rc {

inline uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}
inline uint64_t monotonic_ms() { return monotonic_ns() / 1'000'000u; }

inline int64_t wall_time_s() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return ts.tv_sec;
}

}  // namespace rc
