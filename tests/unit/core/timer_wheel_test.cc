#include "core/timer_wheel.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <vector>

namespace rc {
namespace {

struct probe {
  timer t;
  std::vector<uint64_t>* log = nullptr;
  timer_wheel* wheel = nullptr;
  int id = 0;
  uint64_t fired_at = 0;
  int fires = 0;
};

void record(timer& t, void* ctx) {
  auto* p = static_cast<probe*>(ctx);
  p->fired_at = p->wheel->now();
  ++p->fires;
  if (p->log) p->log->push_back(static_cast<uint64_t>(p->id));
  (void)t;
}

TEST(TimerWheel, FiresAtExactTickAcrossLevels) {
  timer_wheel w(1000);
  std::vector<std::unique_ptr<probe>> probes;
  const uint64_t delays[] = {0, 1, 2, 63, 64, 65, 100, 4095, 4096, 4097, 70000, 262143, 262144,
                             300000, 16777215};
  for (uint64_t d : delays) {
    auto p = std::make_unique<probe>();
    p->wheel = &w;
    p->t.set_callback(record, p.get());
    w.arm(p->t, 1000 + d);
    probes.push_back(std::move(p));
  }
  ASSERT_TRUE(w.validate());
  // Advance in irregular steps and check nothing fires early or late.
  uint64_t now = 1000;
  std::mt19937_64 rng(7);
  while (w.count() > 0) {
    now += 1 + rng() % 5000;
    w.advance(now);
    ASSERT_TRUE(w.validate());
  }
  for (size_t i = 0; i < probes.size(); ++i) {
    uint64_t due = 1000 + (delays[i] == 0 ? 1 : delays[i]);
    EXPECT_EQ(probes[i]->fires, 1) << delays[i];
    // fired_at is the tick being processed when it fired, i.e. its due tick.
    EXPECT_EQ(probes[i]->fired_at, due) << delays[i];
  }
}

TEST(TimerWheel, MatchesReferenceModelUnderRandomOperations) {
  std::mt19937_64 rng(42);
  timer_wheel w(0);
  constexpr int n = 300;
  std::vector<std::unique_ptr<probe>> probes(n);
  std::vector<uint64_t> log;
  for (int i = 0; i < n; ++i) {
    probes[i] = std::make_unique<probe>();
    probes[i]->wheel = &w;
    probes[i]->id = i;
    probes[i]->log = &log;
    probes[i]->t.set_callback(record, probes[i].get());
  }
  std::map<int, uint64_t> model;  // id -> due tick
  uint64_t now = 0;
  for (int step = 0; step < 20000; ++step) {
    int id = static_cast<int>(rng() % n);
    switch (rng() % 4) {
      case 0:
      case 1: {
        uint64_t delay = (rng() % 3 == 0) ? rng() % 64 : rng() % 400000;
        w.arm(probes[id]->t, now + delay);
        model[id] = now + (delay == 0 ? 1 : delay);
        break;
      }
      case 2:
        w.cancel(probes[id]->t);
        model.erase(id);
        break;
      case 3: {
        uint64_t to = now + rng() % 3000;
        log.clear();
        w.advance(to);
        // Everything due in (now, to] fired, in due order; nothing else did.
        std::vector<std::pair<uint64_t, int>> due;
        for (auto it = model.begin(); it != model.end();) {
          if (it->second <= to) {
            due.emplace_back(it->second, it->first);
            it = model.erase(it);
          } else {
            ++it;
          }
        }
        std::sort(due.begin(), due.end());
        ASSERT_EQ(log.size(), due.size()) << "step " << step;
        for (size_t k = 0; k < due.size(); ++k) {
          EXPECT_EQ(probes[log[k]]->fired_at, due[k].first);
        }
        now = to;
        break;
      }
    }
    ASSERT_EQ(w.count(), model.size());
    if (step % 97 == 0) {
      ASSERT_TRUE(w.validate()) << "step " << step;
    }
  }
}

TEST(TimerWheel, CallbackMayRearmItselfWithoutFiringTwiceInOneTick) {
  timer_wheel w(0);
  int fires = 0;
  struct ctx_t {
    timer_wheel* w;
    int* fires;
  } ctx{&w, &fires};
  timer t([](timer& self, void* c) {
    auto* x = static_cast<ctx_t*>(c);
    ++*x->fires;
    // Re-arm for now (fires next tick) and for exactly 64 ticks ahead (same level-0 slot).
    x->w->arm(self, *x->fires % 2 ? x->w->now() : x->w->now() + 64);
  }, &ctx);
  w.arm(t, 10);
  w.advance(10);
  EXPECT_EQ(fires, 1);
  w.advance(11);
  EXPECT_EQ(fires, 2);
  w.advance(74);
  EXPECT_EQ(fires, 2);
  w.advance(75);
  EXPECT_EQ(fires, 3);
  EXPECT_TRUE(w.validate());
  w.cancel(t);
}

TEST(TimerWheel, CallbackMayCancelAnotherDueTimer) {
  timer_wheel w(0);
  probe victim;
  victim.wheel = &w;
  victim.t.set_callback(record, &victim);
  struct canceller {
    timer_wheel* w;
    timer* victim;
  } c{&w, &victim.t};
  timer first([](timer&, void* p) {
    auto* x = static_cast<canceller*>(p);
    x->w->cancel(*x->victim);
  }, &c);
  w.arm(victim.t, 5);
  w.arm(first, 5);  // linked in front of victim: fires first
  w.advance(5);
  EXPECT_EQ(victim.fires, 0);
  EXPECT_EQ(w.count(), 0u);
}

TEST(TimerWheel, TicksUntilNextNeverOvershoots) {
  std::mt19937_64 rng(3);
  for (int round = 0; round < 200; ++round) {
    uint64_t start = rng() % 1000000;
    timer_wheel w(start);
    probe p;
    p.wheel = &w;
    p.t.set_callback(record, &p);
    uint64_t due = start + 1 + rng() % 500000;
    w.arm(p.t, due);
    uint64_t now = start;
    int wakeups = 0;
    while (p.fires == 0) {
      int64_t wait = w.ticks_until_next();
      ASSERT_GT(wait, 0);
      now += static_cast<uint64_t>(wait);
      ASSERT_LE(now, due) << "slept past the deadline";
      w.advance(now);
      ASSERT_LT(++wakeups, 20) << "too many wake-ups";
    }
    EXPECT_EQ(p.fired_at, due);
    EXPECT_EQ(w.ticks_until_next(), -1);
  }
}

TEST(TimerWheel, DestroyingArmedTimerUnlinksIt) {
  timer_wheel w(0);
  {
    probe p;
    p.wheel = &w;
    p.t.set_callback(record, &p);
    w.arm(p.t, 100);
    EXPECT_EQ(w.count(), 1u);
  }
  EXPECT_EQ(w.count(), 0u);
  EXPECT_TRUE(w.validate());
}

}  // namespace
}  // namespace rc
