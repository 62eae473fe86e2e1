#include "load/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace rc::load {
namespace {

TEST(Histogram, SmallValuesAreExact) {
  for (uint64_t v = 0; v < histogram::linear_max; ++v)
    EXPECT_EQ(histogram::highest_equivalent(histogram::index_of(v)), v);
}

TEST(Histogram, BucketsAreContiguousAndWithinTwoSignificantDigits) {
  // Every bucket starts right after the previous one ends, and is narrower than 1/128 of its
  // values.
  uint64_t prev_high = histogram::linear_max - 1;
  for (size_t i = histogram::linear_max; i < histogram::bucket_count; ++i) {
    uint64_t high = histogram::highest_equivalent(i);
    uint64_t low = prev_high + 1;
    ASSERT_EQ(histogram::index_of(low), i);
    ASSERT_EQ(histogram::index_of(high), i);
    ASSERT_LE(static_cast<double>(high - low + 1) / static_cast<double>(low), 1.0 / 128);
    prev_high = high;
  }
  EXPECT_EQ(prev_high, histogram::value_max);
}

TEST(Histogram, PercentilesMatchSortedSamplesWithinResolution) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(11.0, 1.5);  // around 60 µs, long tail
  std::vector<uint64_t> v;
  histogram h;
  for (int i = 0; i < 200000; ++i) {
    auto x = static_cast<uint64_t>(dist(rng));
    v.push_back(x);
    h.record(x);
  }
  std::sort(v.begin(), v.end());
  for (double p : {1.0, 50.0, 90.0, 99.0, 99.9, 100.0}) {
    size_t rank = static_cast<size_t>(std::ceil(p / 100 * static_cast<double>(v.size())));
    uint64_t exact = v[std::max<size_t>(rank, 1) - 1];
    uint64_t got = h.percentile(p);
    EXPECT_GE(got, exact) << p;  // never below the true value
    EXPECT_LE(static_cast<double>(got), static_cast<double>(exact) * (1 + 1.0 / 128) + 1) << p;
  }
  EXPECT_EQ(h.max(), v.back());
  EXPECT_EQ(h.min(), v.front());
  EXPECT_EQ(h.count(), v.size());
}

TEST(Histogram, MergeEqualsRecordingInOne) {
  histogram a, b, all;
  for (uint64_t i = 1; i < 50000; i += 7) {
    (i % 2 ? a : b).record(i * 13);
    all.record(i * 13);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_DOUBLE_EQ(a.mean(), all.mean());
  for (double p : {10.0, 50.0, 99.0, 99.99}) EXPECT_EQ(a.percentile(p), all.percentile(p));
}

TEST(Histogram, HugeValuesAreClampedAndCounted) {
  histogram h;
  h.record(UINT64_MAX);
  h.record(5);
  EXPECT_EQ(h.saturated(), 1u);
  EXPECT_EQ(h.max(), histogram::value_max);
  EXPECT_EQ(h.percentile(100), histogram::value_max);
  EXPECT_EQ(h.percentile(50), 5u);
}

TEST(Histogram, NearestRankIsExactAtThousandsOfSamples) {
  // 999 fast samples and one outlier: p99.9 of 1,000 is the 999th sample, not the outlier
  // (0.999 * 1000 is 999.0000000000001 in doubles, so a floating-point ceil picked rank 1000).
  histogram h;
  for (int i = 0; i < 999; ++i) h.record(100);
  h.record(5'000'000'000);
  EXPECT_EQ(h.percentile(99.9), 100u);
  EXPECT_GT(h.percentile(100), 4'000'000'000u);
  // 2,000 samples: p99.9 is rank 1998; p99.95 rank 1999; p99.951 rounds up to rank 2000.
  histogram k;
  for (int i = 0; i < 1998; ++i) k.record(10);
  k.record(20);
  k.record(30);
  EXPECT_EQ(k.percentile(99.9), 10u);
  EXPECT_EQ(k.percentile(99.95), 20u);
  EXPECT_EQ(k.percentile(99.951), 30u);
  EXPECT_EQ(k.percentile(0.001), 10u);
}

TEST(Histogram, EmptyReportsZero) {
  histogram h;
  EXPECT_EQ(h.percentile(99), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
}

}  // namespace
}  // namespace rc::load
