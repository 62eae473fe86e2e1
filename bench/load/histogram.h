// histogram: a log-linear latency histogram in the manner of HdrHistogram, for nanoseconds.
//
// Values below 256 have buckets of width 1; above, every power of two is split into 128 equal
// sub-buckets, so a recorded value is known to within 1/128 (< 0.8%: two significant digits)
// from 1 ns up to value_max (about 73 minutes). Larger values are clamped to value_max and
// counted in saturated(). Recording is an index computation and an increment, with no
// allocation; histograms of several threads merge by adding counts.
//
// Percentiles report the highest value equivalent to the bucket the percentile falls in (what
// HdrHistogram calls highestEquivalentValue), capped by the exact maximum: a reported p99 is never
// below the true one. min, max and mean are exact.
//
// Thread-safety: none; one histogram per thread, merged after the threads are done.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace rc::load {

class histogram {
 public:
  static constexpr int sub_bucket_bits = 7;
  static constexpr uint64_t linear_max = uint64_t{2} << sub_bucket_bits;  // 256: width-1 buckets
  static constexpr int magnitude_max = 41;  // highest bit of value_max
  static constexpr uint64_t value_max = (uint64_t{2} << magnitude_max) - 1;
  static constexpr size_t bucket_count = static_cast<size_t>(magnitude_max - sub_bucket_bits + 2)
                                         << sub_bucket_bits;

  histogram();

  void record(uint64_t value) {
    if (value > value_max) {
      value = value_max;
      ++saturated_;
    }
    ++counts_[index_of(value)];
    ++count_;
    sum_ += value;
    if (value < min_) min_ = value;
    if (value > max_) max_ = value;
  }
  void merge(const histogram& other);
  void clear();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }
  uint64_t saturated() const { return saturated_; }
  // The value at percentile p (0 < p <= 100), as described above; 0 when empty.
  uint64_t percentile(double p) const;
  // Calls f(highest_equivalent(i), count) for every non-empty bucket i, ascending.
  template <class F>
  void for_each_bucket(F&& f) const {
    for (size_t i = 0; i < bucket_count; ++i)
      if (counts_[i] != 0) f(highest_equivalent(i), counts_[i]);
  }

  static constexpr size_t index_of(uint64_t value) {
    if (value < linear_max) return static_cast<size_t>(value);
    int magnitude = 63 - __builtin_clzll(value);  // >= sub_bucket_bits + 1
    int shift = magnitude - sub_bucket_bits;
    return (static_cast<size_t>(shift + 1) << sub_bucket_bits) +
           static_cast<size_t>((value >> shift) - (uint64_t{1} << sub_bucket_bits));
  }
  // The largest value that maps to bucket `index`.
  static uint64_t highest_equivalent(size_t index);

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  uint64_t saturated_ = 0;
};

}  // namespace rc::load
