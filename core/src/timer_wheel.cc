#include "core/timer_wheel.h"

#include <bit>

namespace rc {

timer::~timer() {
  if (wheel_) wheel_->cancel(*this);
}

timer_wheel::timer_wheel(uint64_t now) : next_tick_(now + 1) {}

timer_wheel::~timer_wheel() {
  // Detach remaining timers so their destructors don't touch a dead wheel.
  auto detach = [](timer* t) {
    while (t) {
      timer* next = t->next_;
      t->prev_ = t->next_ = nullptr;
      t->wheel_ = nullptr;
      t = next;
    }
  };
  for (auto& level : wheel_)
    for (timer* head : level) detach(head);
  detach(firing_);
}

int timer_wheel::level_for(uint64_t due) const {
  uint64_t delta = due - next_tick_;
  for (int level = 0; level < levels - 1; ++level)
    if (delta < (uint64_t{1} << ((level + 1) * slot_bits))) return level;
  return levels - 1;
}

void timer_wheel::link(timer& t) {
  // A deadline already processed fires on the next tick; one beyond the span is parked at the
  // far end of the last level and re-filed when its slot cascades.
  uint64_t due = t.deadline_ < next_tick_ ? next_tick_ : t.deadline_;
  if (due - next_tick_ >= span_ticks) due = next_tick_ + span_ticks - 1;
  int level = level_for(due);
  int s = slot_for(due, level);
  t.due_ = due;
  t.level_ = static_cast<uint8_t>(level);
  t.slot_ = static_cast<uint8_t>(s);
  timer*& head = wheel_[level][s];
  t.prev_ = nullptr;
  t.next_ = head;
  if (head) head->prev_ = &t;
  head = &t;
  occupied_[level] |= uint64_t{1} << s;
  t.wheel_ = this;
  ++count_;
}

void timer_wheel::unlink(timer& t) {
  RC_ASSERT(t.wheel_ == this);
  if (t.prev_) {
    t.prev_->next_ = t.next_;
  } else {
    timer*& head = head_of(t);
    RC_ASSERT(head == &t);
    head = t.next_;
    if (!head && t.level_ < levels) occupied_[t.level_] &= ~(uint64_t{1} << t.slot_);
  }
  if (t.next_) t.next_->prev_ = t.prev_;
  t.prev_ = t.next_ = nullptr;
  t.wheel_ = nullptr;
  --count_;
}

void timer_wheel::arm(timer& t, uint64_t deadline) {
  RC_ASSERT(t.fn_ != nullptr);
  if (t.wheel_) unlink(t);
  t.deadline_ = deadline;
  link(t);
}

void timer_wheel::cancel(timer& t) {
  if (t.wheel_) unlink(t);
}

void timer_wheel::cascade(int level, uint64_t tick) {
  int s = slot_for(tick, level);
  timer* t = wheel_[level][s];
  wheel_[level][s] = nullptr;
  occupied_[level] &= ~(uint64_t{1} << s);
  while (t) {
    timer* next = t->next_;
    --count_;
    link(*t);  // relative to next_tick_ == tick: lands on a lower level (or stays parked)
    t = next;
  }
}

size_t timer_wheel::advance(uint64_t now) {
  size_t fired = 0;
  while (next_tick_ <= now) {
    if (count_ == 0) {
      next_tick_ = now + 1;
      break;
    }
    // Jump over ticks with nothing to do (no timer due, no occupied slot to cascade): a busy
    // shard advances often by a few ticks, an idle one by many, and most ticks are empty.
    uint64_t work = this->now() + static_cast<uint64_t>(ticks_until_next());
    if (work > now) {
      next_tick_ = now + 1;
      break;
    }
    next_tick_ = work;
    uint64_t tick = next_tick_;
    // At the start of a level's round, the due slot of the level above comes down; top-down,
    // so a timer can fall through several levels in one tick.
    for (int level = levels - 1; level >= 1; --level)
      if ((tick & ((uint64_t{1} << (level * slot_bits)) - 1)) == 0) cascade(level, tick);
    int s = slot_for(tick, 0);
    RC_ASSERT(firing_ == nullptr);
    firing_ = wheel_[0][s];
    wheel_[0][s] = nullptr;
    occupied_[0] &= ~(uint64_t{1} << s);
    for (timer* t = firing_; t; t = t->next_) t->level_ = levels;
    next_tick_ = tick + 1;
    while (timer* t = firing_) {
      unlink(*t);
      ++fired;
      t->fn_(*t, t->ctx_);
    }
  }
  return fired;
}

int64_t timer_wheel::ticks_until_next() const {
  if (count_ == 0) return -1;
  uint64_t best = UINT64_MAX;
  for (int level = 0; level < levels; ++level) {
    uint64_t bits = occupied_[level];
    if (!bits) continue;
    int shift = level * slot_bits;
    // Level 0: the nearest occupied slot is an exact deadline. Higher levels: the tick at which
    // the nearest occupied slot's round starts (when it cascades).
    uint64_t round = next_tick_ >> shift;
    int cur = static_cast<int>(round & (slots - 1));
    bool cur_pending = level == 0 || (next_tick_ & ((uint64_t{1} << shift) - 1)) == 0;
    uint64_t ahead;
    if (cur_pending && (bits & (uint64_t{1} << cur))) {
      ahead = 0;
    } else {
      uint64_t rotated = std::rotr(bits, (cur + 1) & (slots - 1));
      ahead = static_cast<uint64_t>(std::countr_zero(rotated)) + 1;
    }
    uint64_t at = (round + ahead) << shift;
    if (level == 0) at = next_tick_ + ahead;
    uint64_t wait = at - now();
    if (wait < best) best = wait;
  }
  return static_cast<int64_t>(best);
}

bool timer_wheel::validate() const {
  if (firing_) return false;
  size_t seen = 0;
  for (int level = 0; level < levels; ++level) {
    for (int s = 0; s < slots; ++s) {
      const timer* t = wheel_[level][s];
      bool bit = occupied_[level] & (uint64_t{1} << s);
      if (bit != (t != nullptr)) return false;
      for (const timer* prev = nullptr; t; prev = t, t = t->next_) {
        if (t->wheel_ != this || t->prev_ != prev) return false;
        if (t->level_ != level || t->slot_ != s) return false;
        if (t->due_ < next_tick_ || slot_for(t->due_, level) != s) return false;
        if (level == 0 && t->due_ - next_tick_ >= slots) return false;
        if (level_for(t->due_) > level) return false;  // would be cascaded too late
        ++seen;
      }
    }
  }
  return seen == count_;
}

}  // namespace rc
