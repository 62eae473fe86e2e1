#include "server/session_store.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>

namespace rc::server {
namespace {

// A session that records its destruction (the engine's closes its upstream connection).
struct fake_session : retained_session {
  fake_session(std::set<std::string>& closed, std::string name)
      : closed_(closed), name_(std::move(name)) {}
  ~fake_session() override { closed_.insert(name_); }
  std::set<std::string>& closed_;
  std::string name_;
};

class SessionStore : public ::testing::Test {
 protected:
  static constexpr uint64_t idle_ms = 100;
  static constexpr uint64_t ticks_per_ms = 10;

  std::unique_ptr<session_store> make(uint32_t max) {
    return std::make_unique<session_store>(wheel, session_store_options{max, idle_ms, ticks_per_ms});
  }
  std::unique_ptr<retained_session> session(std::string name) {
    return std::make_unique<fake_session>(closed, std::move(name));
  }
  // A response that ran to its end on a new session, retained under `id`.
  void finish_new(session_store& s, const std::string& id) {
    ASSERT_EQ(s.begin(id), session_store::begin_status::ok);
    s.put(id, id, session(id));
  }
  void advance_ms(uint64_t ms) {
    now += ms * ticks_per_ms;
    wheel.advance(now);
  }

  uint64_t now = 1000;
  timer_wheel wheel{1000};
  std::set<std::string> closed;
};

TEST_F(SessionStore, NewResponseIsBusyUntilPutThenIdle) {
  auto s = make(4);
  ASSERT_EQ(s->begin("resp_a"), session_store::begin_status::ok);
  EXPECT_EQ(s->busy(), 1u);
  std::unique_ptr<retained_session> out;
  EXPECT_EQ(s->take("resp_a", out), session_store::take_status::busy);  // 409
  s->put("resp_a", "resp_a", session("A"));
  EXPECT_EQ(s->idle(), 1u);
  EXPECT_EQ(s->busy(), 0u);
  EXPECT_TRUE(s->validate());
  EXPECT_EQ(s->stats().conflicts, 1u);
}

TEST_F(SessionStore, FollowUpTakesTheSocketAndRekeysIt) {
  auto s = make(4);
  finish_new(*s, "resp_a");
  std::unique_ptr<retained_session> out;
  ASSERT_EQ(s->take("resp_a", out), session_store::take_status::ok);
  ASSERT_TRUE(out);
  EXPECT_EQ(static_cast<fake_session&>(*out).name_, "resp_a");
  // While the follow-up runs, a second one naming the same id conflicts.
  std::unique_ptr<retained_session> second;
  EXPECT_EQ(s->take("resp_a", second), session_store::take_status::busy);
  EXPECT_FALSE(second);
  EXPECT_TRUE(s->validate());
  s->put("resp_a", "resp_b", std::move(out));
  // The session now continues from resp_b; resp_a is no longer a key (the socket moved on).
  EXPECT_EQ(s->take("resp_a", second), session_store::take_status::not_found);
  ASSERT_EQ(s->take("resp_b", second), session_store::take_status::ok);
  EXPECT_EQ(static_cast<fake_session&>(*second).name_, "resp_a");
  EXPECT_TRUE(closed.empty());
  EXPECT_EQ(s->size(), 1u);
  EXPECT_EQ(s->stats().reused, 2u);
}

TEST_F(SessionStore, UnknownIdIsNotFound) {
  auto s = make(4);
  std::unique_ptr<retained_session> out;
  EXPECT_EQ(s->take("resp_nope", out), session_store::take_status::not_found);
  EXPECT_EQ(s->stats().not_found, 1u);
}

TEST_F(SessionStore, FailureEvictsAndTheIdIsNotFound) {
  auto s = make(4);
  finish_new(*s, "resp_a");
  std::unique_ptr<retained_session> out;
  ASSERT_EQ(s->take("resp_a", out), session_store::take_status::ok);
  out.reset();  // the stream failed: its session is closed
  s->drop("resp_a");
  EXPECT_EQ(s->take("resp_a", out), session_store::take_status::not_found);
  EXPECT_EQ(s->size(), 0u);
  EXPECT_EQ(s->stats().dropped, 1u);
  // A new response that fails is forgotten too.
  ASSERT_EQ(s->begin("resp_b"), session_store::begin_status::ok);
  s->drop("resp_b");
  EXPECT_EQ(s->size(), 0u);
  EXPECT_TRUE(s->validate());
}

TEST_F(SessionStore, DropIgnoresIdleAndUnknownKeys) {
  auto s = make(4);
  finish_new(*s, "resp_a");
  s->drop("resp_a");  // idle: not held by anyone, nothing to drop
  s->drop("resp_x");
  EXPECT_EQ(s->idle(), 1u);
  EXPECT_TRUE(closed.empty());
}

TEST_F(SessionStore, FullStoreEvictsTheLeastRecentlyUsedIdleSession) {
  auto s = make(3);
  finish_new(*s, "resp_a");
  finish_new(*s, "resp_b");
  finish_new(*s, "resp_c");
  // Use resp_a again: resp_b becomes the least recently used.
  std::unique_ptr<retained_session> out;
  ASSERT_EQ(s->take("resp_a", out), session_store::take_status::ok);
  s->put("resp_a", "resp_a2", std::move(out));
  ASSERT_EQ(s->begin("resp_d"), session_store::begin_status::ok);
  EXPECT_EQ(closed, std::set<std::string>{"resp_b"});
  EXPECT_EQ(s->take("resp_b", out), session_store::take_status::not_found);
  EXPECT_EQ(s->stats().evicted_lru, 1u);
  EXPECT_EQ(s->size(), 3u);
  EXPECT_TRUE(s->validate());
}

TEST_F(SessionStore, BusySessionsAreNeverEvictedAndLeaveNoCapacity) {
  auto s = make(2);
  ASSERT_EQ(s->begin("resp_a"), session_store::begin_status::ok);
  finish_new(*s, "resp_b");
  std::unique_ptr<retained_session> out;
  ASSERT_EQ(s->take("resp_b", out), session_store::take_status::ok);
  // Both keys busy: no room, nothing evicted.
  EXPECT_FALSE(s->has_room());
  EXPECT_EQ(s->begin("resp_c"), session_store::begin_status::no_capacity);
  EXPECT_EQ(s->stats().no_capacity, 1u);
  EXPECT_TRUE(closed.empty());
  // One ends: there is room again.
  s->put("resp_b", "resp_b2", std::move(out));
  EXPECT_TRUE(s->has_room());
  EXPECT_EQ(s->begin("resp_c"), session_store::begin_status::ok);
  EXPECT_EQ(closed, std::set<std::string>{"resp_b"});  // the idle one made room
  EXPECT_TRUE(s->validate());
}

TEST_F(SessionStore, ZeroSessionsRetainsNothing) {
  auto s = make(0);
  EXPECT_EQ(s->begin("resp_a"), session_store::begin_status::no_capacity);
  s->put("resp_a", "resp_a", session("A"));  // not held, no room: closed at once
  EXPECT_EQ(closed, std::set<std::string>{"A"});
  EXPECT_EQ(s->size(), 0u);
}

TEST_F(SessionStore, DuplicateBeginIsRefused) {
  auto s = make(4);
  ASSERT_EQ(s->begin("resp_a"), session_store::begin_status::ok);
  EXPECT_EQ(s->begin("resp_a"), session_store::begin_status::duplicate);
  EXPECT_EQ(s->size(), 1u);
}

TEST_F(SessionStore, IdleSessionsExpireOnTheWheel) {
  auto s = make(4);
  finish_new(*s, "resp_a");
  advance_ms(idle_ms / 2);
  finish_new(*s, "resp_b");
  advance_ms(idle_ms / 2 - 1);
  EXPECT_TRUE(closed.empty());  // never early
  advance_ms(2);
  EXPECT_EQ(closed, std::set<std::string>{"resp_a"});
  std::unique_ptr<retained_session> out;
  EXPECT_EQ(s->take("resp_a", out), session_store::take_status::not_found);
  EXPECT_EQ(s->stats().expired, 1u);
  // A busy session does not expire; its idle time restarts when it is put back.
  ASSERT_EQ(s->take("resp_b", out), session_store::take_status::ok);
  advance_ms(idle_ms * 3);
  EXPECT_EQ(closed.count("resp_b"), 0u);
  s->put("resp_b", "resp_c", std::move(out));
  advance_ms(idle_ms - 1);
  EXPECT_EQ(closed.count("resp_b"), 0u);
  advance_ms(2);
  EXPECT_EQ(closed.count("resp_b"), 1u);
  EXPECT_EQ(s->size(), 0u);
  EXPECT_TRUE(s->validate());
  EXPECT_TRUE(wheel.validate());
  EXPECT_EQ(wheel.count(), 0u);
}

TEST_F(SessionStore, PutAfterClearNeedsRoom) {
  auto s = make(1);
  ASSERT_EQ(s->begin("resp_a"), session_store::begin_status::ok);
  s->clear();
  s->put("resp_a", "resp_a", session("A"));  // the engine was reset meanwhile: retained if room
  EXPECT_EQ(s->idle(), 1u);
  EXPECT_TRUE(s->validate());
}

TEST_F(SessionStore, ClearClosesEverythingAndCancelsTimers) {
  auto s = make(4);
  finish_new(*s, "resp_a");
  finish_new(*s, "resp_b");
  ASSERT_EQ(s->begin("resp_c"), session_store::begin_status::ok);
  s.reset();
  EXPECT_EQ(closed, (std::set<std::string>{"resp_a", "resp_b"}));
  EXPECT_EQ(wheel.count(), 0u);
}

}  // namespace
}  // namespace rc::server

namespace rc::server {
namespace {

TEST(SessionStoreTotals, CountsIntoTheShardsMetrics) {
  timer_wheel wheel(0);
  std::set<std::string> closed;
  session_store_stats totals;
  int64_t idle = 0;
  {
    session_store a(wheel, {2, 100, 10}), b(wheel, {2, 100, 10});
    a.count_into(&totals, &idle);
    b.count_into(&totals, &idle);
    ASSERT_EQ(a.begin("x"), session_store::begin_status::ok);
    a.put("x", "x", std::make_unique<fake_session>(closed, "x"));
    ASSERT_EQ(b.begin("y"), session_store::begin_status::ok);
    b.put("y", "y", std::make_unique<fake_session>(closed, "y"));
    EXPECT_EQ(idle, 2);
    std::unique_ptr<retained_session> out;
    ASSERT_EQ(a.take("x", out), session_store::take_status::ok);
    EXPECT_EQ(idle, 1);
    EXPECT_EQ(a.take("x", out), session_store::take_status::busy);
    EXPECT_EQ(b.take("z", out), session_store::take_status::not_found);
    EXPECT_EQ(totals.retained, 2u);
    EXPECT_EQ(totals.reused, 1u);
    EXPECT_EQ(totals.conflicts, 1u);
    EXPECT_EQ(totals.not_found, 1u);
  }
  EXPECT_EQ(idle, 0);  // the engines' stores are gone: nothing idle is left
}

}  // namespace
}  // namespace rc::server

namespace rc::server {
namespace {

TEST_F(SessionStore, IdleSessionThatFailsIsEvicted) {
  auto s = make(2);
  finish_new(*s, "resp_a");
  ASSERT_EQ(s->begin("resp_b"), session_store::begin_status::ok);
  s->evict("resp_b");  // busy: its stream decides, not the store
  EXPECT_EQ(s->busy(), 1u);
  s->evict("resp_a");
  EXPECT_EQ(closed, std::set<std::string>{"resp_a"});
  std::unique_ptr<retained_session> out;
  EXPECT_EQ(s->take("resp_a", out), session_store::take_status::not_found);
  EXPECT_EQ(s->stats().dropped, 1u);
  EXPECT_EQ(wheel.count(), 0u);
  EXPECT_TRUE(s->validate());
}

}  // namespace
}  // namespace rc::server
