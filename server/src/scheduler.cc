#include "server/scheduler.h"

#include "base/assert.h"
#include "server/shard.h"

namespace rc::server {

engine_scheduler::engine_scheduler(shard_server& shard, uint32_t concurrency_max,
                                   uint32_t queue_max, uint32_t shed_after_ms)
    : shard_(shard),
      concurrency_max_(concurrency_max == 0 ? 1 : concurrency_max),
      queue_max_(queue_max),
      shed_after_ms_(shed_after_ms) {}

engine_scheduler::admit engine_scheduler::request(engine_ticket& t, bool bypass_queue_limit) {
  if (running_ < concurrency_max_ && queue_.empty()) {
    ++running_;
    return admit::now;
  }
  RC_ASSERT(bypass_queue_limit || waiting_ < queue_max_);  // REQUIRES: has_room()
  t.enqueued_ms_ = shard_.loop().now_ms();
  queue_.push_back(t);
  ++waiting_;
  return admit::queued;
}

void engine_scheduler::withdraw(engine_ticket& t) {
  if (!t.list_node<ticket_tag>::linked()) return;
  t.list_node<ticket_tag>::unlink();
  --waiting_;
}

void engine_scheduler::set_limits(uint32_t concurrency_max, uint32_t queue_max,
                                  uint32_t shed_after_ms) {
  concurrency_max_ = concurrency_max == 0 ? 1 : concurrency_max;
  queue_max_ = queue_max;
  shed_after_ms_ = shed_after_ms;
  admit_waiters();
}

void engine_scheduler::release() {
  RC_ASSERT(running_ > 0);
  --running_;
  admit_waiters();
}

void engine_scheduler::admit_waiters() {
  uint64_t now = shard_.loop().now_ms();
  while (running_ < concurrency_max_) {
    engine_ticket* t = queue_.pop_front();
    if (!t) break;
    --waiting_;
    uint64_t waited = now - t->enqueued_ms_;
    shard_.metrics().queue_wait.observe_us(waited * 1000);
    if (shed_after_ms_ > 0 && waited > shed_after_ms_) {
      ++shard_.metrics().rejected[static_cast<size_t>(reject_reason::shed)];
      t->on_shed(waited);  // may destroy t
      continue;
    }
    ++running_;
    t->on_admitted();  // may start, or finish at once and call release() again
  }
}

uint64_t engine_scheduler::retry_after_ms() const {
  // A rough but honest hint: a queue this long drains in about one shed period at most.
  return shed_after_ms_ > 0 ? std::min<uint64_t>(shed_after_ms_, 5000) : 1000;
}

}  // namespace rc::server
