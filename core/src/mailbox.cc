#include "core/mailbox.h"

namespace rc {

mailbox_hub::mailbox_hub(unsigned shards, size_t queue_capacity)
    : shards_(shards), endpoints_(new endpoint[shards]) {
  queues_.reserve(static_cast<size_t>(shards) * shards);
  for (unsigned from = 0; from < shards; ++from)
    for (unsigned to = 0; to < shards; ++to)
      // The diagonal is unused (a shard posts to itself through its local queue) but keeps the
      // indexing simple; an unused queue costs one small allocation.
      queues_.push_back(std::make_unique<spsc_queue<message>>(from == to ? 2 : queue_capacity));
}

}  // namespace rc
