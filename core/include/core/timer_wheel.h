// timer_wheel: a hierarchical hashed timing wheel (Varghese & Lauck).
//
// Time is counted in ticks; the wheel doesn't care how long one is. The reactor's ticks are
// 100 µs (reactor::tick_ns), fine enough for pacing token streams and measuring first-token
// latency, coarse enough that a second is 10,000 ticks.
//
// Every connection has timers (header deadline, keep-alive idle, write stall, heartbeat) that are
// armed and moved on every request, so arm/cancel must be O(1) and allocation-free: a timer is an
// intrusive node owned by its user, linked into one slot of the wheel. Four levels of 64 slots
// cover 64^4 ticks exactly (at 100 µs: level 0 holds timers due within 6.4 ms, level 1 within
// 0.4 s, level 2 within 26 s, level 3 within 28 minutes). When a lower level wraps, the matching slot of the
// level above is cascaded down, so every timer fires at its exact tick, never early and at most
// one tick late. Deadlines further than the wheel's span are parked in the last level and
// re-filed when they cascade.
//
// The reference point for filing is the next tick to process (as in the classic Linux wheel):
// a timer due within 64 ticks of it goes to level 0 at slot due % 64, and so on up. Due timers
// are moved to a firing list before their callbacks run, so a callback that re-arms a timer can
// never make it fire again in the same tick.
//
// Invariants (checked by validate()): a linked timer sits in the list its (level, slot) names;
// its filed tick maps to that slot at that level and is not yet processed; level-0 timers are due
// within 64 ticks; slot bitmaps mirror non-empty slots; count() is the number of linked timers.
//
// Thread-safety: none; a wheel and its timers belong to one shard. A timer must be cancelled
// (or have fired) before it is destroyed or moved; its destructor cancels it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "base/assert.h"

namespace rc {

class timer_wheel;

class timer {
 public:
  using callback = void (*)(timer&, void* ctx);

  timer() = default;
  timer(callback fn, void* ctx) : fn_(fn), ctx_(ctx) {}
  timer(const timer&) = delete;
  timer& operator=(const timer&) = delete;
  ~timer();

  // Binds `Method` of `obj` as the callback.
  template <class T, void (T::*Method)()>
  void bind(T* obj) {
    fn_ = [](timer&, void* c) { (static_cast<T*>(c)->*Method)(); };
    ctx_ = obj;
  }
  void set_callback(callback fn, void* ctx) {
    fn_ = fn;
    ctx_ = ctx;
  }

  bool armed() const { return wheel_ != nullptr; }
  uint64_t deadline() const { return deadline_; }

 private:
  friend class timer_wheel;
  timer* prev_ = nullptr;
  timer* next_ = nullptr;
  timer_wheel* wheel_ = nullptr;
  uint64_t deadline_ = 0;  // as requested (ticks)
  uint64_t due_ = 0;       // as filed: clamped to the wheel's range
  callback fn_ = nullptr;
  void* ctx_ = nullptr;
  uint8_t level_ = 0;  // timer_wheel::levels means "in the firing list"
  uint8_t slot_ = 0;
};

class timer_wheel {
 public:
  static constexpr int levels = 4;
  static constexpr int slot_bits = 6;
  static constexpr int slots = 1 << slot_bits;
  static constexpr uint64_t span_ticks = uint64_t{1} << (levels * slot_bits);

  // Ticks up to and including `now` count as processed.
  explicit timer_wheel(uint64_t now);
  timer_wheel(const timer_wheel&) = delete;
  timer_wheel& operator=(const timer_wheel&) = delete;
  ~timer_wheel();

  // Arms `t` to fire at tick `deadline` (re-arms it if armed). A deadline already processed
  // fires on the next tick.
  void arm(timer& t, uint64_t deadline);
  void arm_after(timer& t, uint64_t delay_ticks) { arm(t, now() + delay_ticks); }
  void cancel(timer& t);

  // Processes every tick up to `now`, calling the callbacks of due timers in deadline order.
  // Callbacks may arm and cancel any timer, including the one firing. Returns how many fired.
  size_t advance(uint64_t now);

  // Ticks from now() until advance() has work (a timer fires or a slot cascades), or -1 when no
  // timer is armed. Callers sleep at most this long.
  int64_t ticks_until_next() const;

  // The last processed tick.
  uint64_t now() const { return next_tick_ - 1; }
  size_t count() const { return count_; }

  // Checks every invariant above; for tests (O(timers)).
  bool validate() const;

 private:
  void link(timer& t);
  void unlink(timer& t);
  timer*& head_of(const timer& t) {
    return t.level_ == levels ? firing_ : wheel_[t.level_][t.slot_];
  }
  void cascade(int level, uint64_t tick);
  int level_for(uint64_t due) const;
  static int slot_for(uint64_t due, int level) {
    return static_cast<int>((due >> (level * slot_bits)) & (slots - 1));
  }

  uint64_t next_tick_;  // the next tick to process
  size_t count_ = 0;
  std::array<uint64_t, levels> occupied_{};  // bit s set: slot s of that level is non-empty
  std::array<std::array<timer*, slots>, levels> wheel_{};
  timer* firing_ = nullptr;  // due timers of the tick being processed
};

}  // namespace rc
