// timeline: samples placed in their interval by timestamp, threads merged, errors per interval,
// the last interval shorter, an aborted run's partial intervals; and the JSON of the report's
// "histograms" and "timeline".
#include "load/timeline.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/byte_buffer.h"
#include "load/report_timeline.h"

namespace rc::load {
namespace {

constexpr uint64_t ms = 1'000'000;
constexpr uint64_t t0 = 5'000 * ms;  // when the window opens

// A run whose window is [t0, t0 + duration).
struct run {
  explicit run(unsigned threads, uint64_t duration_ns = 1000 * ms)
      : control(threads, 1, 0, duration_ns, 60'000 * ms) {
    control.note_ready();
    control.coordinate(t0);
  }
  run_control control;
};

TEST(Histogram, ForEachBucketIsAscendingAndCountsEverySample) {
  histogram h;
  for (uint64_t v : {300u, 3u, 3u, 1'000'000u, 300u, 7u}) h.record(v);
  std::vector<std::pair<uint64_t, uint64_t>> seen;
  h.for_each_bucket([&](uint64_t v, uint64_t n) { seen.emplace_back(v, n); });
  std::vector<std::pair<uint64_t, uint64_t>> want = {
      {3, 2}, {7, 1}, {301, 2}, {histogram::highest_equivalent(histogram::index_of(1'000'000)), 1}};
  EXPECT_EQ(seen, want);
}

TEST(Timeline, IntervalsCoverTheWindowAndTheLastIsShorter) {
  timeline t(1, 300 * ms, 1000 * ms);
  ASSERT_EQ(t.intervals(), 4u);
  EXPECT_EQ(t.end_of(0), 300 * ms);
  EXPECT_EQ(t.end_of(3), 1000 * ms);
  EXPECT_EQ(t.index_of(0), 0u);
  EXPECT_EQ(t.index_of(299 * ms), 0u);
  EXPECT_EQ(t.index_of(300 * ms), 1u);
  EXPECT_EQ(t.index_of(999 * ms), 3u);
}

TEST(Timeline, SamplesGoToTheirIntervalAndThreadsMerge) {
  run r(2);
  timeline t(2, 300 * ms, 1000 * ms);
  error_counts e0, e1;
  timeline_writer a(t, r.control, e0), b(t, r.control, e1);
  a.tick(t0 - 10 * ms);  // before the window: nothing
  a.count_op(t0 + 10 * ms);
  a.sample(hist_id::latency, t0 + 10 * ms, 100);
  b.count_op(t0 + 20 * ms);
  b.sample(hist_id::latency, t0 + 20 * ms, 300);
  b.sample(hist_id::latency, t0 + 299 * ms, 200);
  a.sample(hist_id::token_gap, t0 + 350 * ms, 7);  // interval 1
  a.sample(hist_id::token_gap, t0 + 950 * ms, 9);  // interval 3 (submits 1 and 2 for a)
  // Interval 0 is summarised only when both threads have submitted it.
  EXPECT_TRUE(t.points().size() == 3 && t.points()[0].latencies[0].count == 0);
  a.tick(t0 + 1000 * ms);
  b.tick(t0 + 1000 * ms);
  std::vector<timeline_point> p = t.points();
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0].ops, 2u);
  const latency_summary& l = p[0].latencies[static_cast<size_t>(hist_id::latency)];
  EXPECT_EQ(l.count, 3u);
  EXPECT_EQ(l.p50, 200u);
  EXPECT_EQ(l.p99, 300u);  // the bucket's highest equivalent (301), capped by the exact max
  EXPECT_EQ(l.max, 300u);
  EXPECT_EQ(p[1].latencies[static_cast<size_t>(hist_id::token_gap)].count, 1u);
  EXPECT_EQ(p[1].latencies[static_cast<size_t>(hist_id::latency)].count, 0u);
  EXPECT_EQ(p[2].latencies[static_cast<size_t>(hist_id::token_gap)].count, 0u);
  EXPECT_EQ(p[3].latencies[static_cast<size_t>(hist_id::token_gap)].max, 9u);
  EXPECT_EQ(p[3].end_ns, 1000 * ms);
  EXPECT_EQ(p[3].length_ns, 100 * ms);
  for (const timeline_point& q : p) EXPECT_EQ(q.submitted, 2u);
}

TEST(Timeline, ALateTimestampCountsInTheNewerInterval) {
  run r(1);
  timeline t(1, 300 * ms, 1000 * ms);
  error_counts e;
  timeline_writer w(t, r.control, e);
  w.sample(hist_id::latency, t0 + 400 * ms, 10);
  w.sample(hist_id::latency, t0 + 250 * ms, 20);  // older than the previous one
  w.tick(t0 + 2000 * ms);
  std::vector<timeline_point> p = t.points();
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0].latencies[0].count, 0u);
  EXPECT_EQ(p[1].latencies[0].count, 2u);
}

TEST(Timeline, ErrorsAreCountedInTheIntervalTheyHappenedIn) {
  run r(1);
  timeline t(1, 500 * ms, 1000 * ms);
  error_counts e;
  timeline_writer w(t, r.control, e);
  e.connect = 4;  // before the window: not the window's
  w.tick(t0 - 1 * ms);
  e.closed = 2;
  w.tick(t0 + 100 * ms);
  e.seq_gap = 1;  // a loss counts too
  w.tick(t0 + 500 * ms);
  e.protocol = 3;
  w.tick(t0 + 1000 * ms);
  e.protocol = 10;  // after the window
  w.tick(t0 + 1500 * ms);
  std::vector<timeline_point> p = t.points();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].errors, 3u);
  EXPECT_EQ(p[1].errors, 3u);
}

TEST(Timeline, FinishSummarisesWhatNotEveryThreadSubmitted) {
  run r(2);
  timeline t(2, 300 * ms, 1000 * ms);
  error_counts e;
  timeline_writer w(t, r.control, e);
  w.sample(hist_id::to_done, t0 + 10 * ms, 42);
  w.tick(t0 + 301 * ms);  // the other thread never submits (an aborted run)
  t.finish();
  std::vector<timeline_point> p = t.points();
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].submitted, 1u);
  EXPECT_EQ(p[0].latencies[static_cast<size_t>(hist_id::to_done)].max, 42u);
}

TEST(ReportTimeline, Json) {
  run r(1);
  timeline t(1, 600 * ms, 1000 * ms);
  error_counts e;
  timeline_writer w(t, r.control, e);
  shard_results res;
  res.latency.record(3);
  res.latency.record(300);
  res.streams.to_done.record(5);
  w.count_op(t0 + 1 * ms);
  w.sample(hist_id::latency, t0 + 1 * ms, 300);
  w.tick(t0 + 1000 * ms);
  t.set_server(0, 1.5, 4096);
  byte_buffer b;
  json::writer j(b);
  j.begin_object();
  write_histograms(j, res);
  write_timeline(j, t);
  j.end_object();
  EXPECT_EQ(std::string(b.view()),
            R"({"histograms":{"latency":{"unit":"ns","count":2,"buckets":[[3,1],[301,1]]},)"
            R"("to_done":{"unit":"ns","count":1,"buckets":[[5,1]]}},)"
            R"("timeline":{"interval_ms":600,"points":[)"
            R"({"t_s":0.6,"ops":1,"ops_per_s":1.6666666666666667,"errors":0,)"
            R"("server_cpu_cores":1.5,"server_rss_bytes":4096,)"
            R"("latencies":{"latency":{"count":1,"p50":300,"p99":300,"max":300}}},)"
            R"({"t_s":1.0,"ops":0,"ops_per_s":0.0,"errors":0,"server_cpu_cores":null,)"
            R"("server_rss_bytes":null,"latencies":{}}]}})");
}

}  // namespace
}  // namespace rc::load
