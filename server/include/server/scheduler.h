// engine_scheduler: how much engine work a shard runs at once, and what waits.
//
// At most concurrency_max generations run per shard (this shard's share of the process-wide
// --engine-concurrency-max). Others wait in a FIFO bounded by queue_max: a request that finds the
// queue full is refused at once (503 with Retry-After, or a WebSocket error with flow.pause),
// never left to wait without bound. When a slot frees, the oldest waiter that has not waited
// longer than shed_after_ms gets it; those that have are shed (503, or an error event), because a
// client that has waited that long has most likely given up, and running its work would only
// delay everyone behind it.
//
// Waiters are tickets (intrusive, allocation-free); a ticket leaves the queue when destroyed, so a
// client that disconnects while waiting simply disappears from it.
//
// Thread-safety: one scheduler per shard.
#pragma once

#include <cstdint>

#include "core/intrusive_list.h"

namespace rc::server {

class shard_server;
struct ticket_tag;

class engine_ticket : public list_node<ticket_tag> {
 public:
  // A slot is yours: start the work (and call engine_scheduler::release() when it ends).
  virtual void on_admitted() = 0;
  // You waited longer than the shed target and will not run.
  virtual void on_shed(uint64_t waited_ms) = 0;

 protected:
  // Virtual because the scheduler, a friend, could otherwise destroy through a base pointer.
  virtual ~engine_ticket() = default;

 private:
  friend class engine_scheduler;
  uint64_t enqueued_ms_ = 0;
};

class engine_scheduler {
 public:
  engine_scheduler(shard_server& shard, uint32_t concurrency_max, uint32_t queue_max,
                   uint32_t shed_after_ms);

  // Whether a new request would be accepted (run now or queued); false means answer 503.
  bool has_room() const { return running_ < concurrency_max_ || waiting_ < queue_max_; }

  enum class admit { now, queued };
  // Runs `t` now (a slot is taken) or queues it. `bypass_queue_limit` is for work that was
  // admitted by its own bounded queue already (broker messages).
  admit request(engine_ticket& t, bool bypass_queue_limit = false);
  // A running generation ended: free its slot and admit the next waiter.
  void release();
  // New limits (a reload). More room admits waiters at once; less lets running work finish and
  // refuses or queues what comes next.
  void set_limits(uint32_t concurrency_max, uint32_t queue_max, uint32_t shed_after_ms);
  // Leaves the queue (a waiter that gave up); nothing happens if `t` isn't waiting.
  void withdraw(engine_ticket& t);

  uint32_t running() const { return running_; }
  uint32_t waiting() const { return waiting_; }
  // Milliseconds a refused client should wait before retrying (Retry-After).
  uint64_t retry_after_ms() const;

 private:
  void admit_waiters();

  shard_server& shard_;
  uint32_t concurrency_max_, queue_max_, shed_after_ms_;
  uint32_t running_ = 0;
  uint32_t waiting_ = 0;
  intrusive_list<engine_ticket, ticket_tag> queue_;
};

}  // namespace rc::server
