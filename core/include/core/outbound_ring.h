// outbound_ring: the queue between whatever produces a connection's stream (a topic feed, an
// engine, a broker log) and the connection's send path, with backpressure.
//
// One producer thread pushes slices of shared buffers; the connection's owning shard pops them
// into its send queue. Producer and consumer may be on different shards (an engine on a home
// shard streaming to a connection accepted elsewhere) or the same one (topic fan-out, which
// crosses shards once per publication and then queues locally). Entries are references, never
// copies: a publication fanned out to ten thousand subscribers is ten thousand pointers to one
// buffer.
//
// Backpressure, by bytes queued (pushed and not yet popped):
// * at or above high_bytes the ring is "above high": push() reports it and the producer must stop
//   pulling from its source (an engine stream pauses; a topic can't, see below);
// * when the consumer pops it back to low_bytes or below, pop() reports that a paused producer
//   should resume, exactly once per pause;
// * above max_bytes (or with every entry slot used) push() refuses: the consumer is a slow
//   consumer, and the connection is closed by its owner. A topic, which must not slow down for
//   one subscriber, simply keeps pushing until that happens.
//
// Wake-ups: the consumer marks the ring idle when it has drained it; the first push after that
// reports `wake`, and the producer then tells the owner (directly on the same shard, by message
// otherwise). While the consumer is busy, pushes cost no notification at all.
//
// The ring is reference-counted: the owner and a remote producer may each hold it, and the last
// reference frees it (mimalloc returns memory to the allocating shard's heap). close() by the
// consumer makes later pushes fail with `closed`, so a producer learns that its client left.
//
// Thread-safety: push/producer_* on the producer thread only; pop/consumer_* and close on the
// owner thread only; counters readable anywhere (snapshots).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "base/assert.h"
#include "core/shared_buffer.h"
#include "core/spsc_queue.h"

namespace rc {

struct outbound_ring_options {
  uint32_t entries = 1024;           // slots (power of two)
  uint64_t high_bytes = 256 * 1024;  // producer pauses at or above this
  uint64_t low_bytes = 64 * 1024;    // producer resumes at or below this
  uint64_t max_bytes = 4 * 1024 * 1024;  // above this: slow consumer
};

struct outbound_slice {
  shared_buffer buf;
  uint32_t offset = 0;
  uint32_t len = 0;
};

// One whole message for the wire: one slice, or two that must leave back to back (a WebSocket
// message sent as a per-subscriber first fragment and a shared continuation, say). Entries from
// different sources never interleave inside an entry.
struct outbound_entry {
  outbound_slice first;
  outbound_slice second;  // len == 0: absent
  uint32_t bytes() const { return first.len + second.len; }
};

class outbound_ring {
 public:
  enum class push_status : uint8_t {
    ok,          // queued
    ok_pause,    // queued, and the ring is now at or above high: stop producing
    full,        // refused: over max_bytes or out of slots (slow consumer)
    closed,      // refused: the consumer is gone
  };
  struct push_result {
    push_status status;
    bool wake;  // the consumer was idle: notify its owner
  };

  static std::shared_ptr<outbound_ring> make(const outbound_ring_options& opts) {
    return std::make_shared<outbound_ring>(opts);
  }
  explicit outbound_ring(const outbound_ring_options& opts);
  outbound_ring(const outbound_ring&) = delete;
  outbound_ring& operator=(const outbound_ring&) = delete;

  // ---- producer ----
  push_result push(outbound_entry entry);
  push_result push(shared_buffer buf, uint32_t offset, uint32_t len) {
    return push(outbound_entry{{std::move(buf), offset, len}, {}});
  }
  // Whether the producer was told to pause and has not been resumed since.
  bool producer_paused() const { return paused_.load(std::memory_order_acquire); }

  // ---- consumer ----
  // Pops up to `max_bytes` worth of entries (at least one if any), calling fn(outbound_entry&&).
  // Returns true if a paused producer should now resume (the ring fell to low_bytes or below).
  template <class Fn>
  bool pop(uint64_t max_bytes, Fn&& fn);
  // Marks the consumer idle: the next push reports wake. Returns false (and stays busy) if
  // entries arrived meanwhile, in which case the consumer should pop again.
  bool consumer_idle();
  void close();
  bool closed() const { return closed_.load(std::memory_order_acquire); }

  // ---- both ----
  uint64_t queued_bytes() const { return bytes_.load(std::memory_order_acquire); }
  bool above_high() const { return queued_bytes() >= opts_.high_bytes; }
  const outbound_ring_options& options() const { return opts_; }

 private:
  outbound_ring_options opts_;
  spsc_queue<outbound_entry> queue_;
  std::atomic<uint64_t> bytes_{0};
  std::atomic<bool> paused_{false};
  std::atomic<bool> idle_{true};
  std::atomic<bool> closed_{false};
};

template <class Fn>
bool outbound_ring::pop(uint64_t max_bytes, Fn&& fn) {
  uint64_t taken = 0;
  while (taken < max_bytes || taken == 0) {
    outbound_entry* s = queue_.front();
    if (!s) break;
    uint32_t len = s->bytes();
    fn(std::move(*s));
    queue_.pop();
    taken += len;
    bytes_.fetch_sub(len, std::memory_order_seq_cst);
  }
  // See push(): the exchange makes resume happen exactly once per pause.
  if (bytes_.load(std::memory_order_seq_cst) <= opts_.low_bytes &&
      paused_.load(std::memory_order_seq_cst)) {
    return paused_.exchange(false, std::memory_order_seq_cst);
  }
  return false;
}

}  // namespace rc
