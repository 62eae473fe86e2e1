// run_control: the timeline every client thread follows, and the few facts they share.
//
//   connecting --(every connection ready or failed, or the ready deadline)--> running
//   running: load flows; the measured window opens `warmup` later and lasts `duration`
//   running --(window closed)--> draining: no new load; answers still in flight are read
//   any phase --(nothing could connect)--> aborted
//
// Thread 0 coordinates: it calls coordinate() from its periodic tick and moves the phase; every
// thread reads the phase and the window bounds with relaxed loads (they are written once, before
// the phase that makes them relevant is published with release). Completions count only when
// they happen inside [window_start, window_end): warm-up and drain are excluded, whichever
// thread saw them.
//
// Besides the timeline: ready/failed counts (relaxed increments, a few per connection), the
// deliveries each thread has seen (one writer each, for the fanout publisher's closed loop; one
// cache line per thread so writers don't contend) and the fanout's final sequence number.
//
// Thread-safety: as described; every member function may be called from any client thread,
// except coordinate() (thread 0 only).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace rc::load {

enum class phase : uint8_t { connecting, running, draining, aborted };

class run_control {
 public:
  run_control(unsigned threads, uint64_t ready_target, uint64_t warmup_ns, uint64_t duration_ns,
              uint64_t ready_timeout_ns);

  void note_ready() { ready_.fetch_add(1, std::memory_order_relaxed); }
  void note_failed() { failed_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t ready() const { return ready_.load(std::memory_order_relaxed); }
  uint64_t failed() const { return failed_.load(std::memory_order_relaxed); }
  uint64_t ready_target() const { return ready_target_; }

  phase current() const { return phase_.load(std::memory_order_acquire); }
  uint64_t load_start_ns() const { return load_start_ns_.load(std::memory_order_relaxed); }
  uint64_t window_start_ns() const { return window_start_ns_.load(std::memory_order_relaxed); }
  uint64_t window_end_ns() const { return window_end_ns_.load(std::memory_order_relaxed); }
  bool in_window(uint64_t now_ns) const {
    return now_ns >= window_start_ns() && now_ns < window_end_ns();
  }
  // Connections neither ready nor failed when the run started (ready deadline passed).
  uint64_t not_ready() const { return not_ready_; }
  const std::string& abort_reason() const { return abort_reason_; }

  // Thread 0's periodic step: moves the phase (see the header comment).
  void coordinate(uint64_t now_ns);
  // Thread 0: ends the run now (SIGINT, SIGTERM).
  void abort(std::string reason) {
    abort_reason_ = std::move(reason);
    phase_.store(phase::aborted, std::memory_order_release);
  }

  // fanout: deliveries thread `t` has received so far (its only writer), and their sum.
  void set_delivered(unsigned t, uint64_t n) {
    delivered_[t].value.store(n, std::memory_order_relaxed);
  }
  uint64_t delivered_total() const;
  // fanout: the sequence number of the last publication, and how many were acknowledged, once
  // the publisher knows them.
  void set_final_seq(uint64_t seq, uint64_t count) {
    final_seq_.store(seq, std::memory_order_relaxed);
    final_count_.store(count, std::memory_order_relaxed);
    final_known_.store(true, std::memory_order_release);
  }
  bool final_seq_known() const { return final_known_.load(std::memory_order_acquire); }
  uint64_t final_seq() const { return final_seq_.load(std::memory_order_relaxed); }
  uint64_t final_count() const { return final_count_.load(std::memory_order_relaxed); }

 private:
  struct alignas(64) padded_counter {
    std::atomic<uint64_t> value{0};
  };

  unsigned threads_;
  uint64_t ready_target_;
  uint64_t warmup_ns_;
  uint64_t duration_ns_;
  uint64_t ready_deadline_ns_;
  std::atomic<uint64_t> ready_{0};
  std::atomic<uint64_t> failed_{0};
  std::atomic<phase> phase_{phase::connecting};
  std::atomic<uint64_t> load_start_ns_{UINT64_MAX};
  std::atomic<uint64_t> window_start_ns_{UINT64_MAX};
  std::atomic<uint64_t> window_end_ns_{UINT64_MAX};
  uint64_t not_ready_ = 0;    // written by thread 0 before `running` is published
  std::string abort_reason_;  // written by thread 0 before `aborted` is published
  std::unique_ptr<padded_counter[]> delivered_;
  std::atomic<uint64_t> final_seq_{0};
  std::atomic<uint64_t> final_count_{0};
  std::atomic<bool> final_known_{false};
};

}  // namespace rc::load
