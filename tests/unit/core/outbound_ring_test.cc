// outbound_ring: watermarks, refusal, wake-ups, and a two-thread stress of the pause/resume and
// idle/wake handshakes (run under TSan in CI).
#include "core/outbound_ring.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

namespace rc {
namespace {

shared_buffer bytes_of(uint64_t seq, size_t size) {
  std::string s(size, 'x');
  std::memcpy(s.data(), &seq, sizeof seq);
  return shared_buffer::copy_of(s);
}

TEST(OutboundRing, WatermarksAndResumeOncePerPause) {
  outbound_ring r({.entries = 64, .high_bytes = 300, .low_bytes = 100, .max_bytes = 500});
  auto buf = shared_buffer::copy_of(std::string(100, 'a'));
  EXPECT_EQ(r.push(buf, 0, 100).status, outbound_ring::push_status::ok);
  EXPECT_EQ(r.push(buf, 0, 100).status, outbound_ring::push_status::ok);
  EXPECT_EQ(r.push(buf, 0, 100).status, outbound_ring::push_status::ok_pause);
  EXPECT_TRUE(r.producer_paused());
  EXPECT_EQ(r.push(buf, 0, 100).status, outbound_ring::push_status::ok_pause);
  EXPECT_EQ(r.push(buf, 0, 100).status, outbound_ring::push_status::ok_pause);  // 500 = max
  EXPECT_EQ(r.push(buf, 0, 1).status, outbound_ring::push_status::full);
  EXPECT_EQ(r.queued_bytes(), 500u);
  size_t popped = 0;
  auto count = [&](outbound_entry&& s) { popped += s.bytes(); };
  EXPECT_FALSE(r.pop(250, count));  // 500 -> 200: above low
  EXPECT_EQ(popped, 300u);          // whole entries: 3 x 100 (stops once 250 is reached)
  EXPECT_TRUE(r.pop(100, count));   // 200 -> 100: at low, resume
  EXPECT_FALSE(r.producer_paused());
  EXPECT_FALSE(r.pop(100, count));  // resumed once only
  EXPECT_EQ(r.queued_bytes(), 0u);
}

TEST(OutboundRing, WakeOnlyWhenConsumerIdle) {
  outbound_ring r({.entries = 8, .high_bytes = 1000, .low_bytes = 10, .max_bytes = 2000});
  auto buf = shared_buffer::copy_of("abc");
  EXPECT_TRUE(r.push(buf, 0, 3).wake);   // starts idle
  EXPECT_FALSE(r.push(buf, 0, 3).wake);  // consumer busy: no second notification
  EXPECT_FALSE(r.consumer_idle());       // entries pending: stays busy
  r.pop(100, [](outbound_entry&&) {});
  EXPECT_TRUE(r.consumer_idle());
  EXPECT_TRUE(r.push(buf, 0, 3).wake);
}

TEST(OutboundRing, CloseRefusesAndReleasesReferences) {
  outbound_ring r({.entries = 8, .high_bytes = 1000, .low_bytes = 10, .max_bytes = 2000});
  auto buf = shared_buffer::copy_of("abc");
  r.push(buf, 0, 3);
  EXPECT_EQ(buf.use_count(), 2u);
  r.close();
  EXPECT_EQ(buf.use_count(), 1u);
  EXPECT_EQ(r.push(buf, 0, 3).status, outbound_ring::push_status::closed);
}

TEST(OutboundRing, OutOfSlotsIsFull) {
  outbound_ring r({.entries = 2, .high_bytes = 1000, .low_bytes = 10, .max_bytes = 2000});
  auto buf = shared_buffer::copy_of("a");
  r.push(buf, 0, 1);
  r.push(buf, 0, 1);
  EXPECT_EQ(r.push(buf, 0, 1).status, outbound_ring::push_status::full);
}

// A producer that honours pause/resume and a consumer that pops in bursts and goes idle, woken
// only through `wake`. Every entry arrives once, in order; the producer never sees `full`; the
// run finishes (a lost wake-up or resume would hang it, and the test would time out).
TEST(OutboundRing, TwoThreadPauseResumeAndWakeStress) {
  constexpr uint64_t n = 50000;
  outbound_ring r({.entries = 256, .high_bytes = 4096, .low_bytes = 1024, .max_bytes = 1 << 20});
  std::atomic<bool> resume{false};
  std::atomic<bool> wake{false};
  std::atomic<uint64_t> pauses{0}, full{0};
  std::thread producer([&] {
    for (uint64_t seq = 0; seq < n; ++seq) {
      auto res = r.push(bytes_of(seq, 16 + seq % 64), 0, static_cast<uint32_t>(16 + seq % 64));
      if (res.status == outbound_ring::push_status::full) {
        ++full;
        --seq;
        std::this_thread::yield();
        continue;
      }
      if (res.wake) wake.store(true, std::memory_order_release);
      if (res.status == outbound_ring::push_status::ok_pause) {
        ++pauses;
        while (!resume.exchange(false, std::memory_order_acq_rel)) std::this_thread::yield();
      }
    }
  });
  uint64_t expect = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (expect < n) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "stalled at " << expect;
    bool resume_now = r.pop(2048, [&](outbound_entry&& s) {
      uint64_t seq;
      std::memcpy(&seq, s.first.buf.data(), sizeof seq);
      ASSERT_EQ(seq, expect);
      ASSERT_EQ(s.bytes(), 16 + seq % 64);
      ++expect;
    });
    if (resume_now) resume.store(true, std::memory_order_release);
    if (expect % 7 == 0 && r.consumer_idle()) {
      // Idle: sleep until the producer says there is something (or it is paused on us).
      while (!wake.exchange(false, std::memory_order_acq_rel) && r.queued_bytes() == 0 &&
             expect < n) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "lost wake-up at " << expect;
        std::this_thread::yield();
      }
    }
  }
  producer.join();
  EXPECT_EQ(full.load(), 0u);
  EXPECT_GT(pauses.load(), 0u);
  EXPECT_EQ(r.queued_bytes(), 0u);
}

}  // namespace
}  // namespace rc
