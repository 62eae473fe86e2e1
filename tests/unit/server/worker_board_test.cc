// The jsonrpc engine's worker board (slots reserved across shards, crash loops, announced
// models) and the ringcast_worker_* metrics.
#include "../../../server/src/worker_board.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "server/metrics.h"
#include "server/worker_metrics.h"

namespace rc::server {
namespace {

std::shared_ptr<const upstream_config> config(uint32_t workers, uint32_t capacity) {
  auto c = std::make_shared<upstream_config>();
  c->name = "local";
  c->kind = "jsonrpc";
  c->workers = workers;
  c->max_concurrency_per_worker = capacity;
  c->crash_loop_restarts = 3;
  c->crash_loop_window_ms = 1000;
  return c;
}

TEST(WorkerBoard, OnlyReadyWorkersBelowCapacityAreReserved) {
  worker_board b(config(2, 2), 2);
  EXPECT_EQ(b.owner(0), 0u);
  EXPECT_EQ(b.owner(1), 1u);
  EXPECT_FALSE(b.try_reserve(0));  // stopped
  EXPECT_FALSE(b.any_ready());
  b.slots[0].state.store(worker_state::ready);
  EXPECT_TRUE(b.any_ready());
  EXPECT_TRUE(b.try_reserve(0));
  EXPECT_TRUE(b.try_reserve(0));
  EXPECT_FALSE(b.try_reserve(0));  // at capacity
  b.release(0);
  EXPECT_TRUE(b.try_reserve(0));
  b.slots[0].state.store(worker_state::backoff);
  b.release(0);
  EXPECT_FALSE(b.try_reserve(0));  // room, but not ready
}

TEST(WorkerBoard, TicketsReleaseOnceWhereverTheyEnd) {
  auto cfg = config(1, 4);
  auto b = std::make_shared<worker_board>(cfg, 1);
  b->slots[0].state.store(worker_state::ready);
  ASSERT_TRUE(b->try_reserve(0));
  {
    slot_ticket t(b, 0);
    slot_ticket moved(std::move(t));
    EXPECT_FALSE(t);
    EXPECT_TRUE(moved);
    EXPECT_EQ(b->slots[0].inflight.load(), 1u);
  }
  EXPECT_EQ(b->slots[0].inflight.load(), 0u);
}

TEST(WorkerBoard, ConcurrentReservationsNeverExceedCapacity) {
  auto b = std::make_shared<worker_board>(config(1, 3), 2);
  b->slots[0].state.store(worker_state::ready);
  std::atomic<uint32_t> held{0}, most{0};
  auto run = [&] {
    for (int i = 0; i < 20000; ++i) {
      if (!b->try_reserve(0)) continue;
      uint32_t now = held.fetch_add(1) + 1;
      uint32_t m = most.load();
      while (now > m && !most.compare_exchange_weak(m, now)) {
      }
      held.fetch_sub(1);
      b->release(0);
    }
  };
  std::thread a(run), c(run);
  a.join();
  c.join();
  EXPECT_LE(most.load(), 3u);
  EXPECT_EQ(b->slots[0].inflight.load(), 0u);
}

TEST(WorkerBoard, CrashLoopNeedsEnoughExitsWithinTheWindow) {
  worker_board b(config(1, 1), 1);
  EXPECT_FALSE(b.note_crash(1000));
  EXPECT_FALSE(b.note_crash(1500));
  EXPECT_FALSE(b.note_crash(2600));  // the first two are older than the window now
  EXPECT_FALSE(b.note_crash(2700));
  EXPECT_TRUE(b.note_crash(2800));
}

TEST(WorkerBoard, ModelsAreTheUnionOfWhatWorkersAnnounced) {
  worker_board b(config(2, 1), 1);
  uint64_t v0 = b.models_version();
  b.set_models(0, {"small", "large"});
  b.set_models(1, {"large", "tiny"});
  EXPECT_EQ(b.models(), (std::vector<std::string>{"small", "large", "tiny"}));
  uint64_t v1 = b.models_version();
  EXPECT_NE(v0, v1);
  b.set_models(1, {"large", "tiny"});  // unchanged
  EXPECT_EQ(b.models_version(), v1);
}

TEST(WorkerBoard, OneBoardPerConfigWhileItLives) {
  auto a = config(1, 1), other = config(1, 1);
  auto b1 = board_for(a, 2);
  auto b2 = board_for(a, 2);
  EXPECT_EQ(b1.get(), b2.get());
  EXPECT_NE(board_for(other, 2).get(), b1.get());
  const worker_board* old = b1.get();
  b1.reset();
  b2.reset();
  auto again = board_for(a, 2);  // the old one died with its engines: a fresh board
  EXPECT_EQ(again->slots[0].inflight.load(), 0u);
  (void)old;
}

TEST(WorkerMetrics, RenderedPerWorkerAcrossShards) {
  std::vector<shard_metrics> shards(2);
  worker_metrics& w0 = shards[0].workers[worker_metrics_index(shards[0].workers, "local", 0)];
  w0.state = static_cast<int64_t>(worker_state::ready);
  w0.inflight = 2;
  ++w0.requests[static_cast<size_t>(worker_method::generate)];
  ++w0.restarts[static_cast<size_t>(worker_restart_reason::ping_timeout)];
  w0.count_error("worker_crashed");
  w0.count_error("worker_crashed");
  w0.first_token.observe_us(300);
  worker_metrics& w1 = shards[1].workers[worker_metrics_index(shards[1].workers, "local", 1)];
  w1.state = static_cast<int64_t>(worker_state::backoff);
  byte_buffer out;
  render_worker_metrics(shards, out);
  std::string text(out.view());
  EXPECT_NE(text.find("ringcast_worker_state{upstream=\"local\",worker=\"0\",state=\"ready\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ringcast_worker_state{upstream=\"local\",worker=\"0\",state=\"starting\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("ringcast_worker_state{upstream=\"local\",worker=\"1\",state=\"backoff\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("ringcast_worker_inflight{upstream=\"local\",worker=\"0\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("ringcast_worker_restarts_total{upstream=\"local\",worker=\"0\",reason=\"ping_timeout\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("ringcast_worker_requests_total{upstream=\"local\",worker=\"0\",method=\"generate\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("ringcast_worker_errors_total{upstream=\"local\",worker=\"0\",code=\"worker_crashed\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("ringcast_worker_first_token_seconds_count{upstream=\"local\",worker=\"0\"} 1\n"), std::string::npos);
  // The whole exposition goes through render_prometheus too.
  byte_buffer all;
  render_prometheus(shards, all);
  EXPECT_NE(std::string(all.view()).find("# TYPE ringcast_worker_state gauge"), std::string::npos);
}

}  // namespace
}  // namespace rc::server
