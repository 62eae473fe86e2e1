// One worker process: spawn, handshake, message routing, ping, stop, stderr (worker_process.h).
#include "worker_process.h"

#include <sys/wait.h>

#include <cstring>

#include "core/log.h"
#include "server/shard.h"
#include "server/worker_errors.h"

namespace rc::server {

// One call on this worker: the call_context its dialect call talks to.
class worker_process::call_entry final : public call_context {
 public:
  call_entry(worker_process& w, uint64_t handle, std::unique_ptr<worker_call> call,
             call_consumer* consumer, bool handshake)
      : w_(w), handle_(handle), call_(std::move(call)), consumer_(consumer), handshake_(handshake) {
    grace_.set_callback(
        [](timer&, void* ctx) {
          auto* self = static_cast<call_entry*>(ctx);
          self->w_.forget(*self);
        },
        this);
    started_ns_ = w_.shard_.loop().now_ns();
  }
  ~call_entry() { w_.shard_.loop().cancel_timer(grace_); }

  uint64_t next_id() override { return w_.next_rpc_id_++; }
  void expect_response(uint64_t id) override {
    if (over_) return;
    w_.by_id_[id] = handle_;
    ids_.push_back(id);
  }
  void route_key(std::string_view key) override {
    if (over_) return;
    w_.by_key_[std::string(key)] = handle_;
    keys_.emplace_back(key);
  }
  void send(std::string_view json) override { w_.send(json); }
  bool emit(const engine_event& e) override {
    if (over_ || terminal_) return true;
    emitted_ = true;
    // The first token: an error alone (a refusal) is no sample.
    if (!seen_event_ && !handshake_ && e.type != event_type::error && e.type != event_type::usage) {
      seen_event_ = true;
      w_.metrics().first_token.observe_us((w_.shard_.loop().now_ns() - started_ns_) / 1000);
    }
    if (e.type == event_type::usage || e.type == event_type::error) terminal_ = true;
    if (e.type == event_type::error) w_.metrics().count_error(e.error_code);
    if (!consumer_) return true;
    return consumer_->on_call_event(e);
  }
  void finish() override { w_.forget(*this); }
  void handshake_done(bool ok, std::string_view reason, std::vector<std::string> models) override {
    if (!handshake_ || over_) return;
    w_.handshake_done(ok, reason, std::move(models));
  }

  // The worker failed: the call ends with `f` (unless it already ended).
  void fail(const worker_failure& f) {
    if (!terminal_ && consumer_) {
      owned_event e = to_error_event(f);
      emit(e.view());
    }
    w_.forget(*this);
  }
  void cancel() {
    consumer_ = nullptr;
    if (over_) return;
    cancelled_ = true;
    if (!terminal_) call_->cancel(*this);
    if (!over_) w_.shard_.loop().arm_after_ms(grace_, cancel_grace_ms);
  }

  worker_process& w_;
  uint64_t handle_;
  std::unique_ptr<worker_call> call_;
  call_consumer* consumer_;
  bool handshake_;
  bool over_ = false, terminal_ = false, seen_event_ = false, cancelled_ = false;
  bool emitted_ = false;  // an event went to the consumer (it may have reached the client)
  slot_ticket ticket_;    // its board slot, released when the call is over on the worker
  uint64_t started_ns_ = 0;
  std::vector<uint64_t> ids_;
  std::vector<std::string> keys_;
  timer grace_;
};

worker_process::worker_process(shard_server& shard, std::shared_ptr<worker_board> board,
                               size_t index, std::shared_ptr<worker_dialect> dialect, owner* o)
    : shard_(shard),
      board_(std::move(board)),
      cfg_(board_->cfg),
      index_(index),
      dialect_(std::move(dialect)),
      owner_(o),
      framer_(dialect_->framing(), cfg_->max_line_bytes) {
  tag_ = "worker " + cfg_->name + "#" + std::to_string(index_);
  metrics_index_ = worker_metrics_index(shard_.metrics().workers, cfg_->name,
                                        static_cast<uint32_t>(index_));
  static thread_local uint64_t tokens = 0;
  metrics_token_ = ++tokens;
  metrics().state_owner = metrics_token_;
  ping_tick_.bind<worker_process, &worker_process::on_ping_tick>(this);
  ping_timeout_.bind<worker_process, &worker_process::on_ping_timeout>(this);
  init_timeout_.bind<worker_process, &worker_process::on_init_timeout>(this);
  sweep_.bind<worker_process, &worker_process::on_sweep>(this);
  err_flush_.bind<worker_process, &worker_process::flush_suppressed>(this);
}

worker_process::~worker_process() {
  reactor& r = shard_.loop();
  r.cancel_timer(ping_tick_);
  r.cancel_timer(ping_timeout_);
  r.cancel_timer(init_timeout_);
  r.cancel_timer(sweep_);
  r.cancel_timer(err_flush_);
  flush_suppressed();
  // Consumers are gone by now (the engine's runs hold the engine that holds us); drop the
  // calls without emitting.
  for (auto& [h, e] : calls_) {
    e->consumer_ = nullptr;
    e->over_ = true;
  }
  calls_.clear();
  finished_.clear();
  out_.reset();
  in_.reset();
  err_.reset();
  // A child still running is killed and reaped by child_process's destructor.
  child_.reset();
  if (!exited_) {
    set_state(worker_state::stopped);
    board_->slots[index_].pid.store(-1, std::memory_order_relaxed);
  }
}

worker_metrics& worker_process::metrics() { return shard_.metrics().workers[metrics_index_]; }

void worker_process::set_state(worker_state s) {
  state_ = s;
  board_->slots[index_].state.store(s, std::memory_order_release);
  // Under the same labels a newer process (a reload's replacement) may show its state: a
  // retired one no longer writes it.
  show_state(s);
}

void worker_process::show_state(worker_state s) {
  if (owns_metrics()) metrics().state = static_cast<int64_t>(s);
}

bool worker_process::start() {
  spawn_options o;
  o.argv = cfg_->command;
  o.env = cfg_->env;
  o.cwd = cfg_->cwd;
  spawned_process p;
  std::string error;
  set_state(worker_state::starting);
  if (!spawn_process(o, p, error)) {
    RC_ERROR("%s: cannot start %s: %s", tag_.c_str(),
             cfg_->command.empty() ? "(no command)" : cfg_->command[0].c_str(), error.c_str());
    stop_reason_ = worker_restart_reason::spawn_failed;
    stop_requested_ = true;
    exited_ = true;
    set_state(worker_state::stopped);
    // The owner hears of it on a later turn, never from inside its own call.
    shard_.loop().arm_after_ms(sweep_, 0);
    return false;
  }
  pid_ = p.pid;
  tag_ += " pid " + std::to_string(pid_);
  board_->slots[index_].pid.store(pid_, std::memory_order_relaxed);
  reactor& r = shard_.loop();
  child_ = child_process::create(r, p, [this](int status) { on_exit(status); });
  in_ = pipe_writer::create(r, p.stdin_fd, [this](int err) {
    if (!stop_requested_) RC_DEBUG("%s: stdin: %s", tag_.c_str(), std::strerror(err));
  });
  out_ = pipe_reader::create(
      r, p.stdout_fd, [this](std::string_view b) { on_stdout(b); },
      [this](int err) { on_stdout_end(err); });
  err_ = pipe_reader::create(
      r, p.stderr_fd, [this](std::string_view b) { on_stderr(b); }, [](int) {});
  RC_INFO("%s: started (%s)", tag_.c_str(), cfg_->command[0].c_str());
  // The handshake.
  std::unique_ptr<worker_call> hs = dialect_->make_handshake(cfg_->name, static_cast<uint32_t>(index_));
  handshake_ = next_handle_++;
  auto entry = std::make_unique<call_entry>(*this, handshake_, std::move(hs), nullptr, true);
  call_entry* e = entry.get();
  calls_.emplace(handshake_, std::move(entry));
  if (cfg_->init_timeout_ms > 0) r.arm_after_ms(init_timeout_, cfg_->init_timeout_ms);
  e->call_->start(*e);
  return true;
}

uint64_t worker_process::start_call(std::unique_ptr<worker_call> call, call_consumer* consumer,
                                    worker_method method, slot_ticket&& ticket) {
  if (state_ != worker_state::ready || !call) return 0;
  uint64_t h = next_handle_++;
  auto entry = std::make_unique<call_entry>(*this, h, std::move(call), consumer, false);
  call_entry* e = entry.get();
  e->ticket_ = std::move(ticket);
  calls_.emplace(h, std::move(entry));
  ++active_calls_;
  if (owns_metrics()) metrics().inflight = static_cast<int64_t>(active_calls_);
  ++metrics().requests[static_cast<size_t>(method)];
  e->call_->start(*e);
  // The call may have finished inside start() (its consumer heard on_call_finished): no handle.
  return calls_.count(h) != 0 ? h : 0;
}

void worker_process::cancel_call(uint64_t handle) {
  auto it = calls_.find(handle);
  if (it == calls_.end()) return;
  it->second->cancel();
}

void worker_process::forget(call_entry& e) {
  if (e.over_) return;
  e.over_ = true;
  shard_.loop().cancel_timer(e.grace_);
  for (uint64_t id : e.ids_) {
    auto it = by_id_.find(id);
    if (it != by_id_.end() && it->second == e.handle_) by_id_.erase(it);
  }
  for (const std::string& k : e.keys_) {
    auto it = by_key_.find(k);
    if (it != by_key_.end() && it->second == e.handle_) by_key_.erase(it);
  }
  auto it = calls_.find(e.handle_);
  if (it == calls_.end()) return;
  // Deleted on a later turn: we may be inside the call's own method.
  std::unique_ptr<call_entry> owned = std::move(it->second);
  calls_.erase(it);
  if (!owned->handshake_) {
    --active_calls_;
    if (owns_metrics()) metrics().inflight = static_cast<int64_t>(active_calls_);
  }
  if (owned->ticket_) {
    owned->ticket_.reset();
    if (owner_) owner_->on_slot_freed();
  }
  call_consumer* consumer = owned->consumer_;
  owned->consumer_ = nullptr;
  finished_.push_back(std::move(owned));
  shard_.loop().arm_after_ms(sweep_, 0);
  if (consumer) consumer->on_call_finished();
}

void worker_process::on_sweep() {
  finished_.clear();
  dead_readers_.clear();
  // A spawn that failed is reported here, outside the owner's call.
  if (exited_ && child_ == nullptr && owner_) {
    owner* o = owner_;
    owner_ = nullptr;
    o->on_worker_exit(*this, stop_reason_);
  }
}

void worker_process::send(std::string_view json) {
  if (!in_ || stop_requested_) return;
  frame_buf_.clear();
  jsonrpc::frame(dialect_->framing(), json, frame_buf_);
  in_->write(frame_buf_);
}

// ---- reading ----

void worker_process::on_stdout(std::string_view bytes) {
  if (stop_requested_) return;
  framer_.feed(bytes);
  while (!stop_requested_) {
    std::string_view text;
    jsonrpc::framer::status st = framer_.next(text);
    if (st == jsonrpc::framer::status::need_more) return;
    if (st == jsonrpc::framer::status::too_large) {
      return stop(worker_restart_reason::protocol_error,
                  "wrote a message longer than max_line_bytes (" +
                      std::to_string(cfg_->max_line_bytes) + ")");
    }
    if (st == jsonrpc::framer::status::bad_header) {
      return stop(worker_restart_reason::protocol_error, "wrote a malformed Content-Length header");
    }
    jsonrpc::message m;
    std::string error;
    if (!parser_.parse(text, m, error)) {
      std::string shown(text.substr(0, 200));
      return stop(worker_restart_reason::protocol_error,
                  "wrote something that is not a JSON-RPC message (" + error + "): " + shown);
    }
    dispatch(m);
  }
}

void worker_process::dispatch(const jsonrpc::message& m) {
  if (m.type == jsonrpc::kind::response || m.type == jsonrpc::kind::error) {
    if (!m.id_number) {
      RC_WARN("%s: error answer without a usable id: %.*s", tag_.c_str(),
              static_cast<int>(m.error_message.size()), m.error_message.data());
      return;
    }
    uint64_t id = *m.id_number;
    if (id == ping_id_ && ping_id_ != 0) {
      ping_id_ = 0;
      shard_.loop().cancel_timer(ping_timeout_);
      return;
    }
    auto it = by_id_.find(id);
    if (it == by_id_.end()) {
      RC_DEBUG("%s: answer to unknown id %llu dropped", tag_.c_str(), static_cast<unsigned long long>(id));
      return;
    }
    auto c = calls_.find(it->second);
    if (c == calls_.end()) return;
    call_entry& e = *c->second;
    e.call_->on_message(e, m);
    return;
  }
  std::string_view key = dialect_->routing_key(m, scratch_);
  if (!key.empty()) {
    auto it = by_key_.find(key);
    if (it != by_key_.end()) {
      auto c = calls_.find(it->second);
      if (c != calls_.end()) {
        call_entry& e = *c->second;
        e.call_->on_message(e, m);
        return;
      }
    }
  }
  if (m.type == jsonrpc::kind::request) {
    std::string answer;
    dialect_->answer_unrouted_request(m, answer);
    if (!answer.empty()) send(answer);
    return;
  }
  RC_DEBUG("%s: notification %.*s for no call dropped", tag_.c_str(),
           static_cast<int>(m.method.size()), m.method.data());
}

void worker_process::on_stdout_end(int err) {
  if (stop_requested_) return;
  stop(worker_restart_reason::exited,
       err == 0 ? "closed its stdout" : std::string("stdout: ") + std::strerror(err));
}

// ---- liveness ----

void worker_process::handshake_done(bool ok, std::string_view reason,
                                    std::vector<std::string> models) {
  shard_.loop().cancel_timer(init_timeout_);
  if (auto it = calls_.find(handshake_); it != calls_.end()) forget(*it->second);
  if (!ok) {
    return stop(worker_restart_reason::init_failed,
                "initialize failed: " + std::string(reason.empty() ? "no reason given" : reason));
  }
  if (stop_requested_) return;
  board_->set_models(index_, std::move(models));
  set_state(worker_state::ready);
  RC_INFO("%s: ready", tag_.c_str());
  if (cfg_->ping_interval_ms > 0) shard_.loop().arm_after_ms(ping_tick_, cfg_->ping_interval_ms);
  if (owner_) owner_->on_worker_ready(*this);
}

void worker_process::on_init_timeout() {
  if (state_ != worker_state::starting || stop_requested_) return;
  stop(worker_restart_reason::init_failed,
       "did not answer initialize within " + std::to_string(cfg_->init_timeout_ms) + " ms");
}

void worker_process::on_ping_tick() {
  if (state_ != worker_state::ready || stop_requested_) return;
  if (ping_id_ == 0) {
    ping_id_ = next_rpc_id_++;
    std::string json;
    dialect_->write_ping(json, ping_id_);
    send(json);
    if (cfg_->ping_timeout_ms > 0) shard_.loop().arm_after_ms(ping_timeout_, cfg_->ping_timeout_ms);
  }
  shard_.loop().arm_after_ms(ping_tick_, cfg_->ping_interval_ms);
}

void worker_process::on_ping_timeout() {
  if (stop_requested_ || ping_id_ == 0) return;
  stop(worker_restart_reason::ping_timeout,
       "did not answer ping within " + std::to_string(cfg_->ping_timeout_ms) + " ms");
}

// ---- stopping ----

void worker_process::fail_calls(std::string_view message) {
  std::vector<uint64_t> handles;
  for (auto& [h, e] : calls_)
    if (!e->handshake_) handles.push_back(h);
  // What the worker wrote was not JSON-RPC: worker_protocol_error; it died or stopped
  // answering: worker_crashed (the one an engine retries). A call that has emitted nothing yet
  // is retryable either way: like after a crash, it is tried once more on another worker.
  bool protocol = stop_reason_ == worker_restart_reason::protocol_error;
  worker_failure f = worker_failure_of(protocol ? "worker_protocol_error" : "worker_crashed",
                                       std::string(message));
  worker_failure untouched = f;
  untouched.retryable = true;
  for (uint64_t h : handles) {
    auto it = calls_.find(h);
    if (it != calls_.end()) it->second->fail(it->second->emitted_ ? f : untouched);
  }
  if (auto it = calls_.find(handshake_); it != calls_.end()) forget(*it->second);
}

void worker_process::stop(worker_restart_reason reason, std::string_view why) {
  if (stop_requested_) return;
  stop_requested_ = true;
  stop_reason_ = reason;
  reactor& r = shard_.loop();
  r.cancel_timer(ping_tick_);
  r.cancel_timer(ping_timeout_);
  r.cancel_timer(init_timeout_);
  if (!exited_) set_state(worker_state::stopping);
  if (!why.empty()) RC_WARN("%s: %.*s; stopping it", tag_.c_str(), static_cast<int>(why.size()), why.data());
  // No more reading of its stdout (we may be inside the reader's callback: destroyed later).
  if (out_) {
    out_->pause();
    dead_readers_.push_back(std::move(out_));
    r.arm_after_ms(sweep_, 0);
  }
  if (in_) in_->close_after_flush();
  if (child_ && !exited_) child_->terminate(cfg_->stop_grace_ms);
  fail_calls(why.empty() ? std::string_view("the worker was stopped") : why);
}

void worker_process::on_exit(int status) {
  exited_ = true;
  std::string how;
  worker_restart_reason reason = worker_restart_reason::exited;
  if (WIFSIGNALED(status)) {
    how = "killed by signal " + std::to_string(WTERMSIG(status));
    reason = worker_restart_reason::killed;
  } else {
    how = "exited with status " + std::to_string(WEXITSTATUS(status));
  }
  if (stop_requested_) {
    reason = stop_reason_;
    RC_INFO("%s: %s", tag_.c_str(), how.c_str());
  } else {
    RC_WARN("%s: %s", tag_.c_str(), how.c_str());
    stop_requested_ = true;
    stop_reason_ = reason;
    if (out_) {
      out_->pause();
      dead_readers_.push_back(std::move(out_));
      shard_.loop().arm_after_ms(sweep_, 0);
    }
    fail_calls("the worker " + how);
  }
  reactor& r = shard_.loop();
  r.cancel_timer(ping_tick_);
  r.cancel_timer(ping_timeout_);
  r.cancel_timer(init_timeout_);
  set_state(worker_state::stopped);
  board_->slots[index_].pid.store(-1, std::memory_order_relaxed);
  if (owner_) {
    owner* o = owner_;
    owner_ = nullptr;
    o->on_worker_exit(*this, reason);
  }
}

}  // namespace rc::server
