#include "core/reactor.h"

#include <atomic>

#include "base/assert.h"
#include "core/clock.h"
#include "core/log.h"

namespace rc {
namespace {
thread_local reactor* t_current = nullptr;
}  // namespace

reactor::reactor(unsigned shard_id, mailbox_hub& hub, const reactor_options& opts)
    : shard_id_(shard_id),
      hub_(hub),
      opts_(opts),
      timers_(monotonic_ns() / tick_ns),
      now_ns_(monotonic_ns()),
      backlogs_(hub.shards()),
      backlog_heads_(hub.shards(), 0) {
  RC_ASSERT(shard_id < hub.shards());
  RC_ASSERT(t_current == nullptr);
  t_current = this;
}

reactor::~reactor() {
  drain_orphans();
  hub_.at(shard_id_).ring_fd.store(-1, std::memory_order_release);
  t_current = nullptr;
}

bool reactor::is_orphan(io_handler* h) {
  bool found = false;
  orphans_.list.for_each([&](orphan& o) { found = found || dynamic_cast<io_handler*>(&o) == h; });
  return found;
}

void reactor::drain_orphans() {
  // Bounded: a request the kernel does not let go of (a cancel that cannot interrupt it) must
  // not hang the shard's teardown.
  constexpr int64_t budget_ns = 100'000'000;
  uint64_t deadline = monotonic_ns() + budget_ns;
  if (ring_.initialised()) {
    while (!orphans_.list.empty()) {
      uint64_t now = monotonic_ns();
      if (now >= deadline) break;
      // Submits what is queued (cancels queued by destructors after run() returned) and waits.
      ring_.submit_and_wait(static_cast<int64_t>(deadline - now));
      io_uring* r = ring_.raw();
      unsigned head;
      unsigned seen = 0;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(r, head, cqe) {
        ++seen;
        uint64_t ud = cqe->user_data;
        if (ud == ignored_user_data || ud == doorbell_user_data) continue;
        auto* h = reinterpret_cast<io_handler*>(ud & ~uint64_t{15});
        // Only orphans: every other handler's owner is gone by now. An orphan may free itself
        // here (and its address be reused), so membership is checked per completion.
        if (is_orphan(h)) h->on_completion(static_cast<uint8_t>(ud & 15), cqe->res, cqe->flags);
      }
      io_uring_cq_advance(r, seen);
    }
  }
  while (orphan* o = orphans_.list.pop_front()) {
    if (o->free_at_teardown()) {
      delete o;
      continue;
    }
    // Deliberately leaked: its operation may still be in flight after the ring is closed (the
    // kernel cancels it asynchronously) and would write into freed memory. A leak at exit is
    // harmless; a use after free is not.
    RC_WARN("reactor %u: leaking an orphan whose operation did not complete at teardown",
                shard_id_);
  }
}

reactor* reactor::current() {
  return t_current;
}

std::string reactor::init() {
  if (std::string err = ring_.init(opts_.ring); !err.empty()) return err;
  if (std::string err = buffers_.init(ring_, 0, opts_.buffers); !err.empty()) return err;
  hub_.at(shard_id_).ring_fd.store(ring_.fd(), std::memory_order_release);
  return {};
}

uint64_t reactor::now_ns() const {
  return monotonic_ns();
}

void reactor::run() {
  while (!stopping_) turn();
  // Whatever the last turn queued (doorbells, closes) still leaves.
  ring_.submit_nowait();
}

void reactor::turn() {
  ++stats_.loop_turns;
  // 1. Submit and wait. Before blocking, announce it (see mailbox.h for the handshake).
  bool work_pending = busy_ || !local_.empty() || stats_.mailbox_backlog > 0;
  busy_ = false;
  if (work_pending) {
    ring_.submit_nowait();
  } else {
    auto& self = hub_.at(shard_id_);
    // See mailbox.h: an exchange, so a sender's exchange either precedes ours (and we see its
    // message below) or follows it (and it sees `true` and rings).
    self.sleeping.exchange(true, std::memory_order_acq_rel);
    if (inbound_pending()) {
      self.sleeping.store(false, std::memory_order_relaxed);
      ring_.submit_nowait();
    } else {
      int64_t ticks = timers_.ticks_until_next();
      int64_t wait_ns = -1;
      if (ticks >= 0) {
        uint64_t deadline_ns = (timers_.now() + static_cast<uint64_t>(ticks)) * tick_ns;
        uint64_t now = monotonic_ns();
        wait_ns = deadline_ns > now ? static_cast<int64_t>(deadline_ns - now) : 0;
      }
      ring_.submit_and_wait(wait_ns);
      self.sleeping.store(false, std::memory_order_relaxed);
    }
  }
  // 2. Completions, with the clock read after the wait: what they arm or time-stamp is
  // relative to now, not to before the sleep.
  now_ns_ = monotonic_ns();
  reap();
  // 3. Timers.
  timers_.advance(now_ns_ / tick_ns);
  // 4. Messages.
  drain_mailboxes();
  flush_backlogs();
  // 5. End-of-turn hooks (connections flush their output here).
  for (auto& hook : turn_hooks_) hook();
  // 6. Receive buffers recycled this turn become visible to the kernel.
  buffers_.publish();
}

void reactor::reap() {
  io_uring* r = ring_.raw();
  unsigned head;
  unsigned seen = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(r, head, cqe) {
    ++seen;
    uint64_t ud = cqe->user_data;
    if (ud == ignored_user_data || ud == doorbell_user_data) continue;
    auto* h = reinterpret_cast<io_handler*>(ud & ~uint64_t{15});
    h->on_completion(static_cast<uint8_t>(ud & 15), cqe->res, cqe->flags);
  }
  io_uring_cq_advance(r, seen);
  stats_.completions += seen;
}

bool reactor::inbound_pending() {
  for (unsigned from = 0; from < hub_.shards(); ++from)
    if (from != shard_id_ && !hub_.queue(from, shard_id_).empty_approx()) return true;
  return false;
}

void reactor::drain_mailboxes() {
  // Posts to self first: they were queued in an earlier turn.
  if (!local_.empty()) {
    std::vector<message> batch;
    batch.swap(local_);
    for (auto& m : batch) m();
  }
  for (unsigned from = 0; from < hub_.shards(); ++from) {
    if (from == shard_id_) continue;
    auto& q = hub_.queue(from, shard_id_);
    uint32_t n = 0;
    for (; n < opts_.mailbox_batch; ++n) {
      message* m = q.front();
      if (!m) break;
      // Move out before running: the message may post more messages or stop the loop.
      message run = std::move(*m);
      q.pop();
      run();
    }
    stats_.messages_received += n;
    if (n == opts_.mailbox_batch) busy_ = true;  // more may be waiting: don't block next turn
  }
}

void reactor::run_local_messages() {
  // Bounded: cleanup that keeps posting more cleanup would be a bug, not a reason to spin.
  for (int round = 0; round < 64 && !local_.empty(); ++round) {
    std::vector<message> batch;
    batch.swap(local_);
    for (auto& m : batch) m();
  }
}

bool reactor::post(unsigned to, message m) {
  RC_ASSERT(to < hub_.shards());
  if (to == shard_id_) {
    local_.push_back(std::move(m));
    return true;
  }
  ++stats_.messages_sent;
  auto& backlog = backlogs_[to];
  // Order matters: anything already in the backlog goes before this message.
  if (backlog.size() == backlog_heads_[to] && hub_.queue(shard_id_, to).try_push(std::move(m))) {
    ring_doorbell(to);
    return true;
  }
  ++stats_.mailbox_full;
  if (stats_.mailbox_backlog >= opts_.mailbox_backlog_max) {
    ++stats_.mailbox_dropped;
    return false;
  }
  backlog.push_back(std::move(m));
  ++stats_.mailbox_backlog;
  return true;
}

void reactor::flush_backlogs() {
  if (stats_.mailbox_backlog == 0) return;
  for (unsigned to = 0; to < hub_.shards(); ++to) {
    auto& backlog = backlogs_[to];
    size_t& head = backlog_heads_[to];
    auto& q = hub_.queue(shard_id_, to);
    bool pushed = false;
    while (head < backlog.size() && q.try_push(std::move(backlog[head]))) {
      ++head;
      --stats_.mailbox_backlog;
      pushed = true;
    }
    if (head == backlog.size()) {
      backlog.clear();
      head = 0;
    }
    if (pushed) ring_doorbell(to);
  }
}

void reactor::ring_doorbell(unsigned to) {
  auto& target = hub_.at(to);
  // Always the exchange (no load first): it is what orders our push before the target's check.
  // One atomic per cross-shard message, not per byte or per delivery.
  if (!target.sleeping.exchange(false, std::memory_order_acq_rel)) return;
  int fd = target.ring_fd.load(std::memory_order_acquire);
  if (fd < 0) return;
  ++stats_.doorbells_sent;
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_msg_ring(sqe, fd, 0, doorbell_user_data, 0);
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  io_uring_sqe_set_data64(sqe, ignored_user_data);
  // The doorbell leaves at this shard's next submit, at the end of the current turn at latest;
  // ask for that turn not to block first.
  busy_ = true;
}

}  // namespace rc
