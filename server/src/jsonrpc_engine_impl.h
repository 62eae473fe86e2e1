// Private to the jsonrpc engine (jsonrpc_engine*.cc): the engine class, its worker pool, and
// what its streams need from it. The contract is jsonrpc_engine.h.
//
// Thread-safety: an engine, its workers and its streams belong to one shard; the board
// (worker_board.h) is what the shards of one upstream share.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/timer_wheel.h"
#include "server/engine.h"
#include "server/upstreams.h"
#include "server/worker_dialect.h"
#include "server/worker_errors.h"
#include "worker_board.h"
#include "worker_process.h"

namespace rc::server {

class shard_server;

// A request in an engine's wait queue (a stream, an embedding).
class jsonrpc_waiter {
 public:
  // A slot may be free: take it (and leave the queue) or stay.
  virtual void wake() = 0;
  // The wait is over without a worker (it has left the queue): answer `e`.
  virtual void fail_waiting(owned_event e) = 0;

 protected:
  ~jsonrpc_waiter() = default;
};

class jsonrpc_engine final : public engine,
                             public worker_process::owner,
                             public std::enable_shared_from_this<jsonrpc_engine> {
 public:
  // A run's events are buffered up to this many bytes while its client is paused.
  static constexpr size_t buffer_bytes_max = 4u << 20;

  jsonrpc_engine(shard_server& shard, std::shared_ptr<const upstream_config> cfg,
                 std::shared_ptr<worker_dialect> dialect);
  ~jsonrpc_engine() override;

  std::string_view name() const override { return cfg_->name; }
  const std::vector<std::string>& models() const override;
  uint64_t completion_tokens_max(std::string_view model) const override;
  uint32_t embedding_dimensions(std::string_view) const override { return 1u << 16; }
  bool ready() const override { return board_->any_ready(); }
  bool starts_lazily() const override { return true; }
  std::unique_ptr<engine_stream> generate(const generation_request& req,
                                          engine_sink& sink) override;
  void embed(const embedding_request& req,
             unique_function<void(embedding_result&&)> done) override;
  void invoke_tool(std::string_view name, std::string_view arguments_json,
                   unique_function<void(tool_result&&)> done) override;

  // ---- for the streams ----
  shard_server& shard() { return shard_; }
  const upstream_config& config() const { return *cfg_; }
  const std::shared_ptr<worker_board>& board() const { return board_; }
  worker_dialect& dialect() { return *dialect_; }
  std::string upstream_model(std::string_view model) const;

  // Reserves a call slot on the least-loaded ready worker with room (this shard's first on
  // ties), avoiding `avoid` (-1: none). -1 when none has room.
  int reserve(int avoid);
  // The owned worker with this index, when it is ready.
  worker_process* ready_worker(size_t index);
  // Runs a generation on worker `index` (owned by this shard) for `sink` on this shard.
  std::unique_ptr<engine_stream> run_local(size_t index, slot_ticket ticket,
                                           const generation_request& req, engine_sink& sink);
  // Runs an embedding on worker w (a slot already reserved).
  void embed_on(int w, const embedding_request& req,
                unique_function<void(embedding_result&&)> done);
  void embed_local(size_t index, slot_ticket ticket, const embedding_request& req,
                   std::string upstream_model, unique_function<void(embedding_result&&)> done);

  // The wait queue of this shard (requests waiting for a slot).
  bool enqueue(jsonrpc_waiter* s);  // false: full
  void dequeue(jsonrpc_waiter* s);
  size_t waiting() const { return queue_.size(); }
  // A slot may have freed up or a worker become ready: waiters are served on a later turn, here
  // and (by message) on the other shards that have waiters.
  void capacity_changed();
  // The 503 for "no worker can take this now", with Retry-After.
  owned_event unavailable_event(bool busy) const;

  // The engine of `board` on the calling shard (nullptr: none any more).
  static jsonrpc_engine* on_this_shard(const worker_board* board);

  // worker_process::owner
  void on_worker_ready(worker_process& w) override;
  void on_worker_exit(worker_process& w, worker_restart_reason reason) override;
  void on_slot_freed() override { capacity_changed(); }

 private:
  struct owned_worker {
    size_t index = 0;
    std::unique_ptr<worker_process> proc;
    uint32_t attempt = 0;        // restarts since it was last stable
    uint64_t ready_since_ms = 0; // 0: not ready
    timer restart;
    jsonrpc_engine* engine = nullptr;
  };
  void spawn(owned_worker& w);
  void on_restart_due(owned_worker& w);
  owned_worker* find(worker_process& p);
  void serve_waiters();
  uint64_t backoff_ms(uint32_t attempt);

  shard_server& shard_;
  std::shared_ptr<const upstream_config> cfg_;
  std::shared_ptr<worker_dialect> dialect_;
  std::shared_ptr<worker_board> board_;
  std::vector<std::unique_ptr<owned_worker>> workers_;
  std::vector<std::unique_ptr<worker_process>> dead_;  // exited, destroyed on a later turn
  std::deque<jsonrpc_waiter*> queue_;
  timer serve_, start_, poll_, sweep_;
  uint64_t rng_;
  mutable std::vector<std::string> models_;
  mutable uint64_t models_version_ = ~uint64_t{0};
};

}  // namespace rc::server
