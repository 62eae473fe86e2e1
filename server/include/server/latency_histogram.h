// Latency histogram with fixed buckets (so shards merge), for metrics.h and upstream_metrics.h.
//
// Thread-safety: a plain value; each belongs to one shard's metrics.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace rc::server {

// Latency histogram with Prometheus-style cumulative buckets, in seconds.
struct latency_histogram {
  static constexpr std::array<uint64_t, 16> bounds_us = {
      50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
      1000000, 2500000, 10000000};
  std::array<uint64_t, bounds_us.size() + 1> buckets{};  // last: +Inf (not cumulative here)
  uint64_t count = 0;
  uint64_t sum_us = 0;

  void observe_us(uint64_t us) {
    size_t i = 0;
    while (i < bounds_us.size() && us > bounds_us[i]) ++i;
    ++buckets[i];
    ++count;
    sum_us += us;
  }
  void merge(const latency_histogram& o) {
    for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += o.buckets[i];
    count += o.count;
    sum_us += o.sum_us;
  }
};

}  // namespace rc::server
