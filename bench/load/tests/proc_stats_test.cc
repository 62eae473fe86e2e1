// group_usage_between: several processes (the nodes of a cluster) measured as one.
#include <gtest/gtest.h>

#include <vector>

#include "load/proc_stats.h"

namespace rc::load {
namespace {

process_sample sample(uint64_t wall_ns, uint64_t ticks, std::vector<task_cpu> tasks) {
  process_sample s;
  s.ok = true;
  s.wall_ns = wall_ns;
  s.cpu_ticks = ticks;
  s.tasks = std::move(tasks);
  return s;
}

TEST(GroupUsage, SumsCpuAndKeepsTheBusiestThreadOfAny) {
  uint64_t tick_ns = ticks_to_ns(1);
  uint64_t second = 1'000'000'000;
  uint64_t per_s = second / tick_ns;  // ticks in one second
  // Process A: one thread busy half the second; B: two threads, one busy 90%, one 10%.
  std::vector<process_sample> a = {sample(0, 0, {{1, 0}}), sample(0, 0, {{2, 0}, {3, 0}})};
  std::vector<process_sample> b = {sample(second, per_s / 2, {{1, per_s / 2}}),
                                   sample(second, per_s, {{2, per_s * 9 / 10}, {3, per_s / 10}})};
  group_usage g = group_usage_between(a, b);
  ASSERT_TRUE(g.ok);
  EXPECT_NEAR(g.total.cpu_s, 1.5, 1e-9);
  EXPECT_NEAR(g.total.wall_s, 1.0, 1e-9);
  EXPECT_NEAR(g.total.busiest_share, 0.9, 1e-9);
  EXPECT_EQ(g.total.busy_threads, 3u);
  ASSERT_EQ(g.cpu_s.size(), 2u);
  EXPECT_NEAR(g.cpu_s[0], 0.5, 1e-9);
  EXPECT_NEAR(g.cpu_s[1], 1.0, 1e-9);
}

TEST(GroupUsage, AGoneProcessOrMismatchedSamplesAreNotOk) {
  uint64_t second = 1'000'000'000;
  std::vector<process_sample> a = {sample(0, 0, {})};
  std::vector<process_sample> gone = {process_sample{}};
  EXPECT_FALSE(group_usage_between(a, gone).ok);
  std::vector<process_sample> two = {sample(second, 1, {}), sample(second, 1, {})};
  EXPECT_FALSE(group_usage_between(a, two).ok);
  EXPECT_FALSE(group_usage_between({}, {}).ok);
}

}  // namespace
}  // namespace rc::load
