// Mailboxes: how shards talk. Shards share nothing mutable; they pass messages.
//
// The hub holds one bounded lock-free SPSC queue per ordered pair of shards (from, to), so a
// queue has exactly one producer thread and one consumer thread. A message is a move-only closure
// that runs on the receiving shard and owns whatever it carries (moved, never shared mutably).
//
// Doorbells: a shard about to block in io_uring_enter sets its `sleeping` flag, then looks at its
// queues once more (so a message pushed meanwhile is not missed); a sender that finds the flag set
// clears it and rings with IORING_OP_MSG_RING from its own ring, which posts a CQE to the
// sleeper's ring and wakes it. A shard that is awake gets no doorbell: no syscall, no CQE. Both
// sides touch the flag only with exchanges (acq_rel): whichever exchange comes second in the
// flag's order reads the first one's value and synchronizes with it, so either the sender sees
// `true` and rings, or the sleeper sees the message. No fences (which TSan cannot check).
//
// Full queues: a sender whose queue to a shard is full keeps the overflow in an ordered local
// backlog (bounded by backlog_max) and retries it every turn before anything newer; past that
// bound post() fails and the caller decides (every queue is bounded). Both events are counted.
//
// Thread-safety: queue(from, to) is produced only by shard `from` and consumed only by `to`;
// endpoint flags are atomics.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/spsc_queue.h"
#include "core/unique_function.h"

namespace rc {

using message = unique_function<void()>;

class mailbox_hub {
 public:
  struct alignas(cache_line_bytes) endpoint {
    std::atomic<bool> sleeping{false};
    std::atomic<int> ring_fd{-1};
  };

  // REQUIRES: queue_capacity is a power of two.
  mailbox_hub(unsigned shards, size_t queue_capacity);

  unsigned shards() const { return shards_; }
  spsc_queue<message>& queue(unsigned from, unsigned to) { return *queues_[from * shards_ + to]; }
  endpoint& at(unsigned shard) { return endpoints_[shard]; }

 private:
  unsigned shards_;
  std::vector<std::unique_ptr<spsc_queue<message>>> queues_;
  std::unique_ptr<endpoint[]> endpoints_;
};

}  // namespace rc
