#include "core/outbound_ring.h"

namespace rc {

outbound_ring::outbound_ring(const outbound_ring_options& opts)
    : opts_(opts), queue_(opts.entries) {
  RC_ASSERT(opts.low_bytes < opts.high_bytes && opts.high_bytes <= opts.max_bytes);
}

outbound_ring::push_result outbound_ring::push(outbound_entry entry) {
  if (closed_.load(std::memory_order_acquire)) return {push_status::closed, false};
  uint32_t len = entry.bytes();
  if (queued_bytes() + len > opts_.max_bytes) return {push_status::full, false};
  if (!queue_.try_push(std::move(entry))) return {push_status::full, false};
  uint64_t now = bytes_.fetch_add(len, std::memory_order_acq_rel) + len;

  // Wake-up handshake with consumer_idle(), by exchanges on idle_ only (as in mailbox.h): either
  // we read the consumer's `true` and wake it, or it reads our `false` after our push and sees
  // the entry.
  bool wake = idle_.exchange(false, std::memory_order_acq_rel);

  if (now < opts_.high_bytes) return {push_status::ok, wake};
  // Pause handshake with pop(): set paused_, then look at the bytes again. If the consumer
  // drained below low meanwhile it may have missed our flag, so take the pause back ourselves;
  // exactly one side wins the exchange.
  paused_.store(true, std::memory_order_seq_cst);
  if (bytes_.load(std::memory_order_seq_cst) <= opts_.low_bytes &&
      paused_.exchange(false, std::memory_order_seq_cst)) {
    return {push_status::ok, wake};
  }
  return {push_status::ok_pause, wake};
}

bool outbound_ring::consumer_idle() {
  idle_.exchange(true, std::memory_order_acq_rel);
  if (queue_.front() == nullptr) return true;
  // Something arrived: stay busy. If the producer already claimed the wake-up, it will notify
  // us anyway; an extra notification only costs an empty pop.
  idle_.store(false, std::memory_order_release);
  return false;
}

void outbound_ring::close() {
  closed_.store(true, std::memory_order_release);
  // Drop queued references now: the buffers may be large and the producer may hold the ring
  // for a while longer.
  while (outbound_entry* s = queue_.front()) {
    bytes_.fetch_sub(s->bytes(), std::memory_order_acq_rel);
    queue_.pop();
  }
}

}  // namespace rc
