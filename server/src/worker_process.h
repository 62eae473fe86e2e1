// worker_process: one jsonrpc worker process, on the shard that owns it (jsonrpc_engine.h).
//
// It spawns the command (core/process.h: own process group, pipes, pidfd watched on the ring),
// shakes hands through the dialect's handshake call (init_timeout_ms), and then runs calls: each
// call (worker_dialect.h) writes its requests through this worker, which frames them, reads the
// worker's stdout through a jsonrpc::framer and parser, and routes every message: a response by
// its id (call_context::expect_response), a notification or a worker→ringcast request by the
// dialect's routing key; a request nobody claims is answered by the dialect
// (answer_unrouted_request); anything else is dropped (debug log). A ping (the dialect's) goes
// every ping_interval_ms; any answer to it within ping_timeout_ms proves life.
//
// Stopping. The worker is stopped — stdin closed, SIGTERM to its process group, SIGKILL after
// stop_grace_ms — when it fails: its stdout ends, a message is longer than max_line_bytes, it
// writes something that is not JSON-RPC, the handshake fails or times out, a ping goes
// unanswered. Its calls in progress then end with `worker_protocol_error` (what it wrote was not
// JSON-RPC or too long) or `worker_crashed` (anything else; the consumer decides whether to
// retry). When the process has exited (reaped) the owner hears why (on_worker_exit) and the
// object may be destroyed (not from inside that callback: the owner defers it).
//
// stderr. Every line goes to ringcast's log as `worker <upstream>#<i> pid N: <line>` (warn
// level; lines longer than 4 KiB are cut), at most stderr_lines_per_s a second; the lines
// dropped are counted and logged as one "N lines suppressed" line when that second is over.
//
// Calls. A call's consumer (call_consumer) gets its events as the dialect emits them (it
// buffers while its client is paused) and hears when the call is over. cancel_call() is for a
// consumer that goes away first: the dialect sends its cancel and the call is forgotten when it
// answers, or after cancel_grace_ms.
//
// Thread-safety: everything on the owning shard's thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/process.h"
#include "core/timer_wheel.h"
#include "proto/jsonrpc.h"
#include "server/worker_dialect.h"
#include "server/worker_metrics.h"
#include "worker_board.h"

namespace rc::server {

class shard_server;

class call_consumer {
 public:
  // One event of the call; false: the consumer is paused (it buffers what follows itself).
  virtual bool on_call_event(const engine_event& e) = 0;
  // The call is over (after its terminal event); the handle is no longer valid.
  virtual void on_call_finished() = 0;

 protected:
  ~call_consumer() = default;
};

class worker_process {
 public:
  class owner {
   public:
    virtual void on_worker_ready(worker_process& w) = 0;
    // The process is gone (reaped). `reason`: why it ended (a stop's reason, or exited/killed).
    virtual void on_worker_exit(worker_process& w, worker_restart_reason reason) = 0;
    // A call that held a board slot (start_call's ticket) is over on the worker: the slot is free.
    virtual void on_slot_freed() {}

   protected:
    ~owner() = default;
  };

  static constexpr uint64_t cancel_grace_ms = 5000;
  static constexpr size_t stderr_line_max = 4096;

  worker_process(shard_server& shard, std::shared_ptr<worker_board> board, size_t index,
                 std::shared_ptr<worker_dialect> dialect, owner* o);
  ~worker_process();
  worker_process(const worker_process&) = delete;
  worker_process& operator=(const worker_process&) = delete;

  // Spawns the process and starts the handshake. False: the spawn failed (logged); the owner
  // is told on a later turn (spawn_failed).
  bool start();

  worker_state state() const { return state_; }
  size_t index() const { return index_; }
  int pid() const { return pid_; }
  bool exited() const { return exited_; }
  size_t calls_in_flight() const { return active_calls_; }
  // Whether this process still owns its rows of the worker metrics (a newer process under the
  // same labels, a reload's replacement, takes them over), and a state shown there if so.
  bool owns_metrics() { return metrics().state_owner == metrics_token_; }
  void show_state(worker_state s);
  // Who hears of readiness and exit from now on (the graveyard takes retired workers).
  void set_owner(owner* o) { owner_ = o; }


  // Starts `call` (its start() writes its request); its events go to `consumer`, which also
  // hears when it is over. Returns the call's handle, 0 when the worker is not ready (nothing
  // started) or when the call already finished inside its start() (the consumer heard it).
  // `ticket` (the call's board slot; taken only when the call starts) is released when the
  // worker is done with the call — it answered, failed, or after a cancel answered it or the
  // cancel grace passed — not when the consumer goes away.
  uint64_t start_call(std::unique_ptr<worker_call> call, call_consumer* consumer,
                      worker_method method = worker_method::generate, slot_ticket&& ticket = {});
  // The consumer is gone: the call is cancelled (dialect cancel) and forgotten when it answers.
  void cancel_call(uint64_t handle);

  // Stops the worker (see above); in-flight calls end with worker_crashed.
  void stop(worker_restart_reason reason, std::string_view why);

 private:
  class call_entry;
  friend class call_entry;

  void on_stdout(std::string_view bytes);
  void on_stdout_end(int err);
  void on_stderr(std::string_view bytes);
  void on_exit(int wait_status);
  void dispatch(const jsonrpc::message& m);
  void send(std::string_view json);
  void on_ping_tick();
  void on_ping_timeout();
  void on_init_timeout();
  void on_sweep();
  void log_stderr_line(std::string_view line);
  void flush_suppressed();
  void fail_calls(std::string_view message);
  void forget(call_entry& e);
  void set_state(worker_state s);
  worker_metrics& metrics();
  void handshake_done(bool ok, std::string_view reason, std::vector<std::string> models);

  shard_server& shard_;
  std::shared_ptr<worker_board> board_;
  std::shared_ptr<const upstream_config> cfg_;
  size_t index_;
  std::shared_ptr<worker_dialect> dialect_;
  owner* owner_;
  std::string tag_;  // "worker <upstream>#<i> pid N"
  size_t metrics_index_;

  worker_state state_ = worker_state::stopped;
  worker_restart_reason stop_reason_ = worker_restart_reason::exited;
  bool stop_requested_ = false;
  uint64_t metrics_token_ = 0;  // the state metric is ours while it holds this
  bool exited_ = false;
  int pid_ = -1;
  std::unique_ptr<child_process> child_;
  std::unique_ptr<pipe_reader> out_, err_;
  std::unique_ptr<pipe_writer> in_;
  std::vector<std::unique_ptr<pipe_reader>> dead_readers_;  // destroyed on a later turn

  jsonrpc::framer framer_;
  jsonrpc::parser parser_;
  std::string scratch_, frame_buf_;

  uint64_t next_rpc_id_ = 1;
  uint64_t next_handle_ = 1;
  size_t active_calls_ = 0;
  std::unordered_map<uint64_t, std::unique_ptr<call_entry>> calls_;  // by handle
  std::unordered_map<uint64_t, uint64_t> by_id_;                     // rpc id -> handle
  std::unordered_map<std::string, uint64_t, routing_table::name_hash, std::equal_to<>>
      by_key_;  // routing key -> handle
  std::vector<std::unique_ptr<call_entry>> finished_;                // deleted on a later turn
  uint64_t handshake_ = 0;

  uint64_t ping_id_ = 0;
  timer ping_tick_, ping_timeout_, init_timeout_, sweep_, err_flush_;

  std::string err_line_;
  bool err_line_cut_ = false;
  uint64_t err_second_ = 0;
  uint32_t err_lines_this_second_ = 0;
  uint64_t err_suppressed_ = 0;
};

// Workers whose engine is gone (a reload replaced it, the shard stops): they are stopped and
// kept here until their process has exited. Per shard thread.
void retire_worker(std::unique_ptr<worker_process> w);
size_t retiring_workers();
// Kills and reaps whatever is still retiring (the shard is going away).
void kill_retiring_workers();

}  // namespace rc::server
