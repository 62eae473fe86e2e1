// Cross-shard messaging through real reactors: ordering, doorbells that wake sleeping shards,
// the full-queue backlog and the refusal past it. Runs clean under TSan (the tsan preset).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "core/mailbox.h"
#include "core/reactor.h"
#include "core/shard_group.h"
#include "core/uring.h"

namespace rc {
namespace {

bool uring_usable() {
  uring_support s;
  return probe_uring(s).empty();
}

shard_group_options small_options(unsigned shards, size_t capacity) {
  shard_group_options o;
  o.shards = shards;
  o.mailbox_capacity = capacity;
  o.reactor.ring.sq_entries = 256;
  o.reactor.ring.cq_entries = 1024;
  o.reactor.buffers.count = 16;
  return o;
}

// Every shard sends `per_pair` numbered messages to every other shard, in bursts larger than the
// queue so the backlog path is taken; receivers check order per sender.
void all_to_all(unsigned shards, size_t capacity, uint64_t per_pair) {
  // Per receiving shard: next expected sequence per sender, and the count received. Each row is
  // touched only by its own shard's thread.
  std::vector<std::vector<uint64_t>> next(shards, std::vector<uint64_t>(shards, 0));
  std::vector<uint64_t> received(shards, 0);
  const uint64_t expected = per_pair * (shards - 1);
  std::atomic<unsigned> finished{0};
  std::atomic<uint64_t> full_events{0};
  std::atomic<bool> order_ok{true};
  auto finish_one = [&](reactor& r) {
    // The last shard to finish stops every loop.
    if (finished.fetch_add(1) + 1 == shards)
      for (unsigned s = 0; s < shards; ++s) r.post(s, [] { reactor::current()->stop(); });
  };
  auto deliver = [&](unsigned from, uint64_t seq) {
    reactor& r = *reactor::current();
    unsigned me = r.shard_id();
    if (next[me][from] != seq) order_ok = false;
    next[me][from] = seq + 1;
    if (++received[me] == expected) finish_one(r);
  };
  auto err = run_shards(small_options(shards, capacity), [&](reactor& r) {
    unsigned me = r.shard_id();
    for (uint64_t seq = 0; seq < per_pair; ++seq)
      for (unsigned to = 0; to < shards; ++to)
        if (to != me) {
          EXPECT_TRUE(r.post(to, [&deliver, me, seq] { deliver(me, seq); }));
        }
    r.run();
    full_events += r.stats().mailbox_full;
    EXPECT_EQ(r.stats().mailbox_dropped, 0u);
    EXPECT_EQ(r.stats().mailbox_backlog, 0u);
  });
  ASSERT_EQ(err, "");
  EXPECT_TRUE(order_ok);
  for (unsigned s = 0; s < shards; ++s) EXPECT_EQ(received[s], expected);
  EXPECT_GT(full_events.load(), 0u) << "the test should have exercised full queues";
}

TEST(Mailbox, TwoShardsInOrderThroughFullQueues) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  all_to_all(2, 8, 20000);
}

TEST(Mailbox, FourShardsAllToAll) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  all_to_all(4, 16, 5000);
}

// A shard that is asleep (blocked in io_uring_enter, no timers) must be woken by the doorbell.
TEST(Mailbox, DoorbellWakesSleepingShard) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  std::atomic<int> pongs{0};
  auto err = run_shards(small_options(2, 64), [&](reactor& r) {
    if (r.shard_id() == 0) {
      // Give shard 1 time to fall asleep, then ping it 100 times, one round trip at a time.
      struct pinger {
        reactor* r;
        std::atomic<int>* pongs;
        timer t;
        void ping() {
          r->post(1, [this] {
            reactor::current()->post(0, [this] {
              if (++*pongs == 100) {
                r->post(1, [] { reactor::current()->stop(); });
                r->stop();
              } else {
                r->arm_after_ms(t, 2);  // sleep between pings so shard 1 sleeps too
              }
            });
          });
        }
      } p{&r, &pongs, {}};
      p.t.bind<pinger, &pinger::ping>(&p);
      r.arm_after_ms(p.t, 20);
      r.run();
      EXPECT_GT(r.stats().doorbells_sent, 0u);
    } else {
      r.run();
    }
  });
  ASSERT_EQ(err, "");
  EXPECT_EQ(pongs.load(), 100);
}

TEST(Mailbox, PostFailsWhenBacklogIsFull) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  auto opts = small_options(2, 4);
  opts.reactor.mailbox_backlog_max = 10;
  std::atomic<bool> go{false};
  std::atomic<int> refused{0};
  std::atomic<int> delivered{0};
  auto err = run_shards(opts, [&](reactor& r) {
    if (r.shard_id() == 1) {
      while (!go.load()) std::this_thread::yield();  // not draining until shard 0 says so
      r.run();
      return;
    }
    // 4 fit in the queue, 10 wait in the backlog, the rest are refused.
    for (int i = 0; i < 20; ++i)
      if (!r.post(1, [&] { ++delivered; })) ++refused;
    EXPECT_EQ(r.stats().mailbox_backlog, 10u);
    EXPECT_EQ(r.stats().mailbox_dropped, 6u);
    go = true;
    bool stop_sent = false;
    r.add_turn_hook([&] {
      if (!stop_sent && r.stats().mailbox_backlog == 0) {
        stop_sent = r.post(1, [] { reactor::current()->stop(); });
      }
      if (stop_sent && r.stats().mailbox_backlog == 0) r.stop();
    });
    r.run();
  });
  ASSERT_EQ(err, "");
  EXPECT_EQ(refused.load(), 6);
  EXPECT_EQ(delivered.load(), 14);
}

}  // namespace
}  // namespace rc
