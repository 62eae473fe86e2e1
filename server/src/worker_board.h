// worker_board: what every shard's jsonrpc engine of one upstream knows about that upstream's
// workers (jsonrpc_engine.h, "Architecture" of the issue-10 plan).
//
// Worker i is owned (spawned, read, written, pinged, restarted) by shard i % shards; the other
// shards only read its slot here to choose a worker: its state, the calls it has in flight and
// its capacity. A request reserves a slot (try_reserve, a CAS on `inflight`) before it goes to
// the owner, and the owner releases it when the call ends (slot_ticket), so no worker is given
// more than max_concurrency_per_worker calls whatever shard they come from.
//
// Upstream-wide: `unavailable_until_ms` (a crash loop, monotonic ms; restarts wait until then,
// and requests answer 503 while no worker is ready), the models the workers announced, the crash history (under a mutex: exits are rare),
// and per shard the number of requests waiting for a slot, so that the owner of a slot that
// frees up (or of a worker that became ready) wakes the shards that wait.
//
// Boards are found through a process-wide map keyed by the upstream_config (board_for), created
// by the first shard that asks; the map's mutex is taken only there. A reload that changes the
// upstream gives its new config, so the new engines get a new board and the old workers finish
// on the old one.
//
// Thread-safety: slots and counters are relaxed/acq-rel atomics read by every shard and written
// by the owner (state, pid) or any shard (inflight, waiting); the mutex guards models and crashes.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "server/upstreams.h"

namespace rc::server {

enum class worker_state : uint8_t { stopped, starting, ready, stopping, backoff, count };
std::string_view to_string(worker_state s);

struct worker_board {
  struct slot {
    std::atomic<worker_state> state{worker_state::stopped};
    std::atomic<uint32_t> inflight{0};
    std::atomic<int> pid{-1};
  };

  worker_board(std::shared_ptr<const upstream_config> c, unsigned shard_count);

  std::shared_ptr<const upstream_config> cfg;
  unsigned shards;
  uint32_t capacity;  // max_concurrency_per_worker
  std::unique_ptr<slot[]> slots;
  size_t size;
  std::unique_ptr<std::atomic<uint32_t>[]> waiting;    // per shard: requests in its wait queue
  std::unique_ptr<std::atomic<bool>[]> wake_posted;    // per shard: a wake message is on its way
  std::atomic<uint64_t> unavailable_until_ms{0};

  unsigned owner(size_t i) const { return static_cast<unsigned>(i % shards); }
  bool any_ready() const;
  // Takes one call slot of worker i if it is ready and below capacity.
  bool try_reserve(size_t i);
  void release(size_t i) { slots[i].inflight.fetch_sub(1, std::memory_order_acq_rel); }

  // An abnormal exit at `now_ms`: true when it makes a crash loop (crash_loop_restarts exits
  // within crash_loop_window_ms); the caller then sets unavailable_until_ms.
  bool note_crash(uint64_t now_ms);  // a trip clears the history
  void clear_crashes();
  // Requests are refused (503 worker_unavailable): a crash loop's pause runs and no worker is
  // ready (ready workers keep serving while the crashed ones wait).
  bool paused(uint64_t now_ms) const;
  void set_models(size_t worker, std::vector<std::string> models);
  // The union of the announced models, and a version that changes when it does.
  std::vector<std::string> models() const;
  uint64_t models_version() const { return models_version_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mu_;
  std::deque<uint64_t> crashes_;
  std::vector<std::vector<std::string>> models_;  // per worker
  std::atomic<uint64_t> models_version_{0};
};

std::shared_ptr<worker_board> board_for(const std::shared_ptr<const upstream_config>& cfg,
                                        unsigned shard_count);

// Releases a reserved slot when destroyed (on whichever shard that happens).
class slot_ticket {
 public:
  slot_ticket() = default;
  slot_ticket(std::shared_ptr<worker_board> b, size_t i) : board_(std::move(b)), index_(i) {}
  slot_ticket(slot_ticket&& o) noexcept : board_(std::move(o.board_)), index_(o.index_) {}
  slot_ticket& operator=(slot_ticket&& o) noexcept {
    reset();
    board_ = std::move(o.board_);
    index_ = o.index_;
    return *this;
  }
  ~slot_ticket() { reset(); }
  void reset() {
    if (board_) board_->release(index_);
    board_.reset();
  }
  explicit operator bool() const { return board_ != nullptr; }
  size_t index() const { return index_; }

 private:
  std::shared_ptr<worker_board> board_;
  size_t index_ = 0;
};

}  // namespace rc::server
