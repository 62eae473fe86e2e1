#include "load/histogram.h"

#include <algorithm>
#include <cmath>

#include "base/assert.h"

namespace rc::load {

static_assert(histogram::index_of(histogram::value_max) == histogram::bucket_count - 1);
static_assert(histogram::index_of(histogram::linear_max - 1) == histogram::linear_max - 1);
static_assert(histogram::index_of(histogram::linear_max) == histogram::linear_max);

histogram::histogram() : counts_(bucket_count, 0) {}

uint64_t histogram::highest_equivalent(size_t index) {
  if (index < linear_max) return index;
  int shift = static_cast<int>(index >> sub_bucket_bits) - 1;
  uint64_t sub = (uint64_t{1} << sub_bucket_bits) + (index & ((size_t{1} << sub_bucket_bits) - 1));
  return ((sub + 1) << shift) - 1;
}

void histogram::merge(const histogram& other) {
  for (size_t i = 0; i < bucket_count; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  saturated_ += other.saturated_;
}

void histogram::clear() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = sum_ = max_ = saturated_ = 0;
  min_ = UINT64_MAX;
}

uint64_t histogram::percentile(double p) const {
  RC_ASSERT(p > 0 && p <= 100);
  if (count_ == 0) return 0;
  // The rank of the sample at percentile p, counting from 1 (nearest rank: ceil(p/100 * count)).
  // In integers, with p in millionths of a percent: in doubles 0.999 * 1000 is
  // 999.0000000000001, which would make p99.9 of 1,000 samples the maximum. Split so that
  // nothing overflows: count = q * 10^8 + r, and r * micro < 10^16.
  constexpr uint64_t whole = 100'000'000;  // 100 % in millionths of a percent
  auto micro = static_cast<uint64_t>(std::llround(p * 1e6));
  uint64_t q = count_ / whole, r = count_ % whole;
  uint64_t rank = q * micro + (r * micro + whole - 1) / whole;
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < bucket_count; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(highest_equivalent(i), max_);
  }
  return max_;
}

}  // namespace rc::load
