#include "core/spsc_queue.h"

#include <gtest/gtest.h>

#include <memory>
#include <thread>

#include "core/unique_function.h"

namespace rc {
namespace {

TEST(SpscQueue, FullAndEmpty) {
  spsc_queue<int> q(4);
  EXPECT_FALSE(q.try_pop().has_value());
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(q.try_push(int{i}));
  int extra = 99;
  EXPECT_FALSE(q.try_push(std::move(extra)));
  EXPECT_EQ(extra, 99);  // untouched on failure
  for (int i = 0; i < 4; ++i) EXPECT_EQ(*q.try_pop(), i);
  EXPECT_FALSE(q.try_pop().has_value());
}

TEST(SpscQueue, DestroysRemainingElements) {
  auto counter = std::make_shared<int>(0);
  {
    spsc_queue<std::shared_ptr<int>> q(8);
    for (int i = 0; i < 5; ++i) q.try_push(std::shared_ptr<int>(counter));
    EXPECT_EQ(counter.use_count(), 6);
  }
  EXPECT_EQ(counter.use_count(), 1);
}

// Two threads, a small queue (so it is full and empty often), every value in order exactly once.
TEST(SpscQueue, TwoThreadStressKeepsOrder) {
  constexpr uint64_t n = 2'000'000;
  spsc_queue<uint64_t> q(64);
  std::thread producer([&] {
    for (uint64_t i = 0; i < n;) {
      uint64_t v = i;
      if (q.try_push(std::move(v))) ++i;
    }
  });
  uint64_t expect = 0;
  while (expect < n) {
    if (auto v = q.try_pop()) {
      ASSERT_EQ(*v, expect);
      ++expect;
    }
  }
  producer.join();
}

TEST(UniqueFunction, MoveOnlyCapturesInlineAndOnHeap) {
  auto p = std::make_unique<int>(41);
  unique_function<int()> small = [p = std::move(p)] { return *p + 1; };
  EXPECT_EQ(small(), 42);
  struct big_t {
    char pad[200];
    int v;
  };
  big_t big{};
  big.v = 7;
  unique_function<int(int)> large = [big](int x) { return big.v + x; };
  unique_function<int(int)> moved = std::move(large);
  EXPECT_FALSE(large);
  EXPECT_EQ(moved(3), 10);
}

}  // namespace
}  // namespace rc
