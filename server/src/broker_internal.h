// The broker's private types (broker.h), shared by broker*.cc: a message, its worker, a user's
// queue. Cluster mode adds where a message's work item and log live (broker_cluster.h).
//
// Thread-safety: owned by the message's home shard.
#pragma once

#include <optional>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/timer_wheel.h"
#include "server/broker.h"
#include "server/engine.h"
#include "server/scheduler.h"

namespace rc::server {

// The engine side of a message being processed. It never pauses the engine (the log takes
// everything; slow watchers are dropped, not waited for).
struct broker::worker final : public engine_sink, public engine_ticket {
  worker(broker& b, message& m) : broker_(b), message_(m) {}
  bool on_event(const engine_event& e) override;
  void on_admitted() override;
  void on_shed(uint64_t waited_ms) override;

  broker& broker_;
  message& message_;
  // Before `stream`: a reload must not free the engine under the stream.
  std::shared_ptr<engine> engine_ref;
  std::unique_ptr<engine_stream> stream;
  bool holds_slot = false;
  bool in_callback = false;
};

struct broker::message {
  std::string id;
  std::string user_id;
  generation_request generation;
  // finishing (cluster mode): its terminal event is being stored (held); it still
  // blocks its user's queue and its partition, and nobody has seen it end.
  enum class state : uint8_t { queued, processing, finishing, finished } st = state::queued;
  std::vector<broker_event> log;
  uint64_t log_bytes = 0;
  uint64_t first_seq = 1;  // seq of log[0] (after trimming)
  uint64_t next_seq = 1;
  std::vector<bool> watcher_shards;
  uint64_t enqueued_ms = 0;
  uint64_t position = 0;  // last position reported in a queued event
  std::string text;
  std::unique_ptr<worker> work;
  timer deadline;
  timer retention;
  // Cluster mode: the partition (-1: single node), the work item's sequence in RC_BROKER, the
  // first seq this node holds (earlier events were written by a previous owner: watchers that
  // need them read the stored log), and how many times processing started (on any node).
  int32_t partition = -1;
  uint64_t work_seq = 0;
  uint64_t held_from_seq = 1;
  uint32_t attempts = 0;
  uint64_t log_stream_seq = 0;  // its last stored event's sequence in RC_BROKER_LOG (0: none)
  std::deque<broker_event> held;  // cluster mode: appended, not stored yet (broker_log.cc)
  bool terminal_held() const { return !held.empty() && held.back().terminal; }
};

struct broker::user_queue {
  std::deque<message*> waiting;
  message* active = nullptr;
  bool in_ready_list = false;
};

// One lifecycle event, encoded for every watcher (broker.h).
broker_event make_broker_event(uint64_t seq, std::string_view type, std::string_view json,
                               bool terminal);

inline uint64_t broker_fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace rc::server
