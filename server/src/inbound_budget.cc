#include "server/inbound_budget.h"

#include "base/assert.h"
#include "core/memory.h"
#include "core/reactor.h"
#include "server/metrics.h"

namespace rc::server {

bool inbound_budget::update(size_t& held, size_t now) {
  RC_ASSERT(held <= held_bytes_);
  held_bytes_ = held_bytes_ - held + now;
  const bool grew = now > held;
  held = now;
  metrics_.inbound_held_bytes = static_cast<int64_t>(held_bytes_);
  if (held_bytes_ > peak_bytes_) peak_bytes_ = held_bytes_;
  if (grew) {
    if (held_bytes_ <= budget_bytes_) return true;
    ++metrics_.inbound_budget_refusals;
    return false;
  }
  maybe_collect();
  return true;
}

void inbound_budget::maybe_collect() {
  if (collect_posted_ || peak_bytes_ - held_bytes_ < collect_drop_bytes_min ||
      held_bytes_ > peak_bytes_ / 4) {
    return;
  }
  // In a later turn: the connections closing now free their buffers after this call returns,
  // and a burst of closes is collected once.
  collect_posted_ = true;
  loop_.post(loop_.shard_id(), [this] {
    collect_posted_ = false;
    peak_bytes_ = held_bytes_;
    ++metrics_.memory_collections;
    release_free_memory();
  });
}

}  // namespace rc::server
