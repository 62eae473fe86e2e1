// session_store: the upstream sessions (WebSocket connections) a stateful `responses-ws` engine
// keeps on one shard between the responses of a conversation, keyed by response id.
//
// A key is a response id minted on this shard ("resp_<shard>_<hex>", generation.h), so a follow-up
// naming it as previous_response_id is routed here by message, without a lookup. A key is in one
// of two states:
//   busy  a response is being generated on the session. A new response holds its own id from the
//         start (begin); a follow-up holds the id it continues (take). The running stream owns the
//         session meanwhile; a second follow-up naming a busy key is refused (409
//         previous_response_in_progress).
//   idle  the response ended well and its session waits for a follow-up; the store owns it.
// When a response ends, its stream gives the session back under the new response's id (put: the
// key it held is released, the session is retained idle under the new id), or drops the key on
// any failure (drop: a session in an unknown state is never reused).
//
// Bounds: at most sessions_max keys, busy and idle together. A new response (begin) that finds the
// store full evicts the least recently used idle session; when every key is busy there is no
// capacity (503 + Retry-After). An idle session expires idle_ms after it became idle (a timer on
// the shard's wheel): upstreams close idle sockets anyway, and a socket found dead is a failure.
// An evicted or expired session is destroyed at once (its destructor closes the connection), and
// a follow-up naming it gets previous_response_not_found.
//
// Thread-safety: one store per engine per shard, touched only by its shard; the timers run on that
// shard's wheel. Callers arm nothing themselves; the store's timers are cancelled when it dies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/timer_wheel.h"

namespace rc::server {

// What the store keeps for an idle key: the engine's session (its socket and what it knows of
// the upstream's conversation). Destroying it closes the upstream connection.
class retained_session {
 public:
  virtual ~retained_session() = default;
};

struct session_store_options {
  uint32_t sessions_max = 64;  // keys, busy and idle together (0: nothing is retained)
  uint64_t idle_ms = 300000;   // an idle session expires after this long
  uint64_t ticks_per_ms = 10;  // of the wheel the store arms its timers on (reactor: 10)
};

struct session_store_stats {
  uint64_t retained = 0;         // sessions put back idle
  uint64_t reused = 0;           // follow-ups that took an idle session
  uint64_t evicted_lru = 0;      // idle sessions evicted to make room
  uint64_t expired = 0;          // idle sessions that reached idle_ms
  uint64_t dropped = 0;          // keys dropped on a failure (or a cancel)
  uint64_t conflicts = 0;        // follow-ups refused: busy
  uint64_t not_found = 0;        // follow-ups refused: unknown, evicted, expired or failed
  uint64_t no_capacity = 0;      // new responses refused: every key busy
};

class session_store {
 public:
  session_store(timer_wheel& wheel, session_store_options options);
  ~session_store();
  session_store(const session_store&) = delete;
  session_store& operator=(const session_store&) = delete;

  enum class begin_status : uint8_t { ok, no_capacity, duplicate };
  // A new response: holds `id` busy, evicting the least recently used idle session if the store
  // is full. no_capacity: every key is busy (or sessions_max is 0); duplicate: `id` is known.
  begin_status begin(const std::string& id);

  enum class take_status : uint8_t { ok, not_found, busy };
  // A follow-up: moves `id`'s idle session into `out` and holds `id` busy.
  take_status take(const std::string& id, std::unique_ptr<retained_session>& out);

  // The response that held `held` ended well: `held` is released and `session` retained idle
  // under `id` (which may equal `held`). If `held` was not held (the store was cleared
  // meanwhile) the session needs room like begin(); without room it is destroyed.
  void put(const std::string& held, const std::string& id,
           std::unique_ptr<retained_session> session);
  // The response that held `held` failed or was cancelled: the key is forgotten (the caller
  // destroys its session). Nothing happens if it was not held.
  void drop(const std::string& held);

  // An idle session failed (its socket closed while it waited): it is destroyed and its key
  // forgotten. Nothing happens if `id` is not idle. The session may call this from its own
  // failure callback as its last act.
  void evict(const std::string& id);

  // Destroys every idle session and forgets every key (engine shutdown).
  void clear();

  size_t size() const { return entries_.size(); }
  size_t idle() const { return lru_.size(); }
  size_t busy() const { return entries_.size() - lru_.size(); }
  bool has_room() const { return entries_.size() < options_.sessions_max || !lru_.empty(); }
  const session_store_stats& stats() const { return stats_; }
  // Also counts into `totals` (the shard's metrics, summed over its engines) and keeps
  // `idle_gauge` at the number of idle sessions (added to, not set). Either may be null.
  void count_into(session_store_stats* totals, int64_t* idle_gauge);
  const session_store_options& options() const { return options_; }

  // Checks the invariants (every idle entry owns a session, is in the LRU list and has its timer
  // armed; busy ones none of these; size within sessions_max). For tests.
  bool validate() const;

 private:
  struct entry {
    session_store* owner = nullptr;
    const std::string* key = nullptr;  // the map's own key
    std::unique_ptr<retained_session> session;  // idle only
    bool busy = true;
    std::list<entry*>::iterator lru;  // idle only
    timer expiry;                     // idle only
  };
  using map = std::unordered_map<std::string, entry>;

  entry& insert(const std::string& id);
  void make_idle(entry& e, std::unique_ptr<retained_session> session);
  // Erases an entry (idle or busy); destroys its session after the store is consistent again,
  // since a session's destructor may call back into the engine.
  void erase(map::iterator it);
  bool make_room();
  static void on_expiry(timer& t, void* ctx);
  void bump(uint64_t session_store_stats::*field);

  timer_wheel& wheel_;
  session_store_options options_;
  map entries_;
  std::list<entry*> lru_;  // idle entries, most recently used first
  session_store_stats stats_;
  session_store_stats* totals_ = nullptr;
  int64_t* idle_gauge_ = nullptr;
};

}  // namespace rc::server
