#include "load/run_control.h"

#include "core/clock.h"

namespace rc::load {

run_control::run_control(unsigned threads, uint64_t ready_target, uint64_t warmup_ns,
                         uint64_t duration_ns, uint64_t ready_timeout_ns)
    : threads_(threads),
      ready_target_(ready_target),
      warmup_ns_(warmup_ns),
      duration_ns_(duration_ns),
      ready_deadline_ns_(monotonic_ns() + ready_timeout_ns),
      delivered_(new padded_counter[threads]) {}

uint64_t run_control::delivered_total() const {
  uint64_t sum = 0;
  for (unsigned t = 0; t < threads_; ++t)
    sum += delivered_[t].value.load(std::memory_order_relaxed);
  return sum;
}

void run_control::coordinate(uint64_t now_ns) {
  switch (current()) {
    case phase::connecting: {
      uint64_t ready = this->ready(), failed = this->failed();
      bool all_in = ready + failed >= ready_target_;
      if (!all_in && now_ns < ready_deadline_ns_) return;
      if (ready == 0) {
        abort_reason_ = "no connection became ready (" + std::to_string(failed) + " failed)";
        phase_.store(phase::aborted, std::memory_order_release);
        return;
      }
      not_ready_ = all_in ? 0 : ready_target_ - ready - failed;
      load_start_ns_.store(now_ns, std::memory_order_relaxed);
      window_start_ns_.store(now_ns + warmup_ns_, std::memory_order_relaxed);
      window_end_ns_.store(now_ns + warmup_ns_ + duration_ns_, std::memory_order_relaxed);
      phase_.store(phase::running, std::memory_order_release);
      return;
    }
    case phase::running:
      if (now_ns >= window_end_ns()) phase_.store(phase::draining, std::memory_order_release);
      return;
    default:
      return;
  }
}

}  // namespace rc::load
