// reactor: one shard's event loop. One thread, one io_uring, one provided-buffer ring, one timer
// wheel, one end of every mailbox. Nothing in it is touched by another thread except through the
// mailbox hub.
//
// A loop turn:
//   1. submit everything queued this turn and wait for completions (not at all when work is
//      already pending; until the next timer otherwise) — the only syscall of the turn;
//   2. dispatch every completion to its io_handler;
//   3. read the clock once; run due timers;
//   4. run messages from other shards (a bounded batch per sender, for fairness);
//   5. run end-of-turn hooks: connections flush what they queued, so all the responses a turn
//      produced leave in that one submit;
//   6. publish recycled receive buffers, re-arm receives that ran out of buffers, and finish
//      connections that closed.
//
// Completion routing: an SQE's user_data is the address of its io_handler with a small op code in
// the low 4 bits (handlers are 16-byte aligned). A handler must stay alive until every operation
// it submitted has completed; stream_socket counts them. user_data 0 marks operations whose
// completion nobody needs (close, cancel; submitted with CQE_SKIP_SUCCESS) and 1 the mailbox
// doorbell.
//
// Thread-safety: all methods on the shard's own thread, except those documented otherwise.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/buffer_ring.h"
#include "core/intrusive_list.h"
#include "core/mailbox.h"
#include "core/timer_wheel.h"
#include "core/unique_function.h"
#include "core/uring.h"

namespace rc {

class reactor;

class alignas(16) io_handler {
 public:
  virtual void on_completion(uint8_t op, int32_t res, uint32_t flags) = 0;

 protected:
  ~io_handler() = default;
};

// An object that must outlive its owner while operations it submitted are in flight (the kernel
// still writes to its memory): its owner hands it to reactor::adopt_orphan() and it deletes itself
// when its last completion arrives. An orphan must also be an io_handler (its operations
// complete to it). When the reactor is destroyed, it submits what is queued (the orphans'
// cancels) and waits a short, bounded time for their completions, which free them as usual.
// Closing the ring does not stop the kernel at once (in-flight requests are cancelled later,
// asynchronously), so those still waiting after that are leaked, not deleted, unless
// free_at_teardown() says no operation of theirs references their memory; then they are deleted
// (their destructors must not touch the reactor).
struct orphan_tag;
class orphan : public list_node<orphan_tag> {
 public:
  virtual ~orphan() = default;
  virtual bool free_at_teardown() const { return false; }
};

inline constexpr uint64_t ignored_user_data = 0;
inline constexpr uint64_t doorbell_user_data = 1;

inline uint64_t make_user_data(io_handler* h, uint8_t op) {
  return reinterpret_cast<uint64_t>(h) | op;
}

struct reactor_options {
  uring_options ring;
  buffer_ring_options buffers;
  // Messages run per sending shard per turn before the loop goes back to I/O.
  uint32_t mailbox_batch = 256;
  // Messages a shard keeps per target while that mailbox is full.
  uint32_t mailbox_backlog_max = 65536;
};

// Counters the reactor keeps; read by the owning shard (metrics are shipped by message).
struct reactor_stats {
  uint64_t loop_turns = 0;
  uint64_t completions = 0;
  uint64_t messages_sent = 0;
  uint64_t messages_received = 0;
  uint64_t doorbells_sent = 0;
  uint64_t mailbox_full = 0;       // pushes that found the queue full (went to the backlog)
  uint64_t mailbox_dropped = 0;    // posts refused because the backlog was full too
  uint64_t mailbox_backlog = 0;    // messages waiting in backlogs now
  uint64_t recv_buffer_waits = 0;  // receives that ran out of buffers (ENOBUFS) and re-armed
};

class reactor {
 public:
  // REQUIRES: called on the shard's own thread (the ring is owned by its creator).
  reactor(unsigned shard_id, mailbox_hub& hub, const reactor_options& opts);
  reactor(const reactor&) = delete;
  reactor& operator=(const reactor&) = delete;
  ~reactor();

  // Empty on success, else a message naming the cause and the fix.
  std::string init();

  unsigned shard_id() const { return shard_id_; }
  unsigned shard_count() const { return hub_.shards(); }
  uring& ring() { return ring_; }
  buffer_ring& buffers() { return buffers_; }
  timer_wheel& timers() { return timers_; }
  const reactor_stats& stats() const { return stats_; }
  void note_recv_buffer_wait() { ++stats_.recv_buffer_waits; }
  const reactor_options& options() const { return opts_; }

  // Timer resolution: the wheel advances in ticks of this many nanoseconds.
  static constexpr uint64_t tick_ns = 100'000;

  // The monotonic clock as read once per turn (timestamps for timers and deadlines).
  uint64_t now_ms() const { return now_ns_ / 1'000'000; }
  uint64_t now_us() const { return now_ns_ / 1'000; }
  // The monotonic clock read now (for latency measurements, not for timers).
  uint64_t now_ns() const;

  // Timers on the shard's wheel. Delays count from this turn's clock reading (not from the
  // wheel's last processed tick, which lags it after a sleep) and round up to whole ticks: a
  // timer never fires early.
  void arm_at_ms(timer& t, uint64_t deadline_ms) {
    timers_.arm(t, deadline_ms * (1'000'000 / tick_ns));
  }
  void arm_after_ms(timer& t, uint64_t delay_ms) {
    timers_.arm(t, now_tick_ceil() + delay_ms * (1'000'000 / tick_ns));
  }
  void arm_after_us(timer& t, uint64_t delay_us) {
    constexpr uint64_t tick_us = tick_ns / 1000;
    timers_.arm(t, now_tick_ceil() + (delay_us + tick_us - 1) / tick_us);
  }
  void cancel_timer(timer& t) { timers_.cancel(t); }
  // Arms `t` for `deadline_ms` unless it is already armed to fire no later. For deadlines that
  // mostly move later (keep-alive, header and write timeouts): the timer fires early at worst,
  // and its owner re-checks and re-arms, so the wheel is touched once per period, not per move.
  void arm_by_ms(timer& t, uint64_t deadline_ms) {
    uint64_t ticks = deadline_ms * (1'000'000 / tick_ns);
    if (!t.armed() || t.deadline() > ticks) timers_.arm(t, ticks);
  }

  // Runs turns until stop(). Returns when the loop has stopped.
  void run();
  void stop() { stopping_ = true; }
  bool stopping() const { return stopping_; }

  // Runs `m` on shard `to` (on this shard, in a later turn, if `to` is this shard). Returns false
  // only when the mailbox and its backlog are both full; the message is then destroyed.
  bool post(unsigned to, message m);

  // Runs the messages this shard posted to itself and not yet ran (also those they post), for an
  // owner tearing down after run() returned.
  void run_local_messages();

  // Runs `fn` at the end of every turn, in registration order.
  void add_turn_hook(unique_function<void()> fn) { turn_hooks_.push_back(std::move(fn)); }
  // Asks for another turn without blocking (work was left for it).
  void request_turn() { busy_ = true; }

  // Keeps `o` until it deletes itself, or deletes it when the reactor is destroyed (see orphan).
  void adopt_orphan(orphan& o) { orphans_.list.push_back(o); }
  size_t orphans() const { return orphans_.list.size(); }

  // Runs one loop turn (blocks until a completion or the next timer when nothing is pending):
  // for tests that drive the loop step by step instead of run()/stop().
  void run_turn() { turn(); }

  // The reactor running on the calling thread, or nullptr.
  static reactor* current();

 private:
  // The first tick not before this turn's clock reading.
  uint64_t now_tick_ceil() const { return (now_ns_ + tick_ns - 1) / tick_ns; }
  void turn();
  void reap();
  void drain_mailboxes();
  void flush_backlogs();
  void ring_doorbell(unsigned to);
  bool inbound_pending();

  struct orphan_set {
    intrusive_list<orphan, orphan_tag> list;
  };
  // ~reactor: lets the orphans' completions arrive (bounded), then deletes or leaks the rest.
  void drain_orphans();
  bool is_orphan(io_handler* h);

  unsigned shard_id_;
  mailbox_hub& hub_;
  reactor_options opts_;
  orphan_set orphans_;
  uring ring_;
  buffer_ring buffers_;
  timer_wheel timers_;
  uint64_t now_ns_;
  bool stopping_ = false;
  bool busy_ = false;
  reactor_stats stats_;
  std::vector<unique_function<void()>> turn_hooks_;
  std::vector<message> local_;                  // posts to self, run next turn
  std::vector<std::vector<message>> backlogs_;  // per target shard, while its queue is full
  std::vector<size_t> backlog_heads_;
};

}  // namespace rc
