// inbound_budget: the bytes a shard holds for clients' partial input — WebSocket messages being
// reassembled (fragments, frames spanning reads) and HTTP requests accumulated across reads — and
// the per-shard limit on them (--inbound-buffer-budget-bytes).
//
// Per-connection limits (ws_message_bytes_max, body_bytes_max) bound one client; this bounds all
// of them together: a thousand WebSockets each holding an unfinished 1 MiB message would pin a
// gigabyte otherwise. A connection reports what it holds after each read (update); when its share
// grew and the shard is over budget, the caller refuses the new partial data (WebSocket close
// 1009, HTTP 503) and releases it. Connections that hold nothing are unaffected, and what a
// connection holds goes back to the budget when it closes.
//
// Giving memory back: when the bytes held fall far below their recent peak (the connections of a
// spike closed), the shard asks the allocator to return its free pages to the system, once, in a
// later loop turn (release_free_memory).
//
// Thread-safety: one per shard, used on its thread only.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rc {
class reactor;
}

namespace rc::server {

struct shard_metrics;

class inbound_budget {
 public:
  // A drop of at least this many bytes from the peak, to under a quarter of it, triggers a
  // collection: small fluctuations never do (a collection costs milliseconds).
  static constexpr uint64_t collect_drop_bytes_min = 16 * 1024 * 1024;

  inbound_budget(reactor& loop, shard_metrics& metrics, uint64_t budget_bytes)
      : loop_(loop), metrics_(metrics), budget_bytes_(budget_bytes) {}

  // A connection now holds `now` bytes instead of `held` (updated). Returns false when it grew
  // and the shard is over budget: refuse the data, release it, and update again.
  bool update(size_t& held, size_t now);

  // A reload (SIGHUP) may change the budget: a lower one applies to growth from now on.
  void set_budget_bytes(uint64_t bytes) { budget_bytes_ = bytes; }
  uint64_t held_bytes() const { return held_bytes_; }
  uint64_t budget_bytes() const { return budget_bytes_; }

 private:
  void maybe_collect();

  reactor& loop_;
  shard_metrics& metrics_;
  uint64_t budget_bytes_;
  uint64_t held_bytes_ = 0;
  uint64_t peak_bytes_ = 0;  // since the last collection
  bool collect_posted_ = false;
};

}  // namespace rc::server
