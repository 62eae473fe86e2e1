// The jsonrpc engine's streams (jsonrpc_engine.h):
//   jsonrpc_stream  on the client's shard: chooses a worker, waits for one, retries once, ends
//                   at the deadline; its inner stream is a worker_run here or, for a worker
//                   another shard owns, a generate_on_shard stream whose far end is a worker_run
//                   there;
//   worker_run      on the worker's shard: one call on one worker, buffering while its sink is
//                   paused.
// And embeddings, which take the same path without a stream.
#include <time.h>

#include <deque>
#include <optional>

#include "core/clock.h"
#include "core/log.h"
#include "jsonrpc_engine_impl.h"
#include "server/remote_generation.h"
#include "server/shard.h"

namespace rc::server {
namespace {

bool is_terminal(const engine_event& e) {
  return e.type == event_type::usage || e.type == event_type::error;
}

uint64_t unix_ms_of(uint64_t monotonic_deadline_ms) {
  if (monotonic_deadline_ms == 0) return 0;
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t wall_ms = int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
  int64_t offset = wall_ms - static_cast<int64_t>(monotonic_ms());
  return static_cast<uint64_t>(static_cast<int64_t>(monotonic_deadline_ms) + offset);
}

// One call on one worker of this shard, for `sink` (a jsonrpc_stream here, or the forwarder of
// a remote one).
class worker_run final : public engine_stream, public call_consumer {
 public:
  worker_run(std::shared_ptr<jsonrpc_engine> e, size_t index, slot_ticket ticket, engine_sink& sink)
      : engine_(std::move(e)), index_(index), ticket_(std::move(ticket)), sink_(sink) {
    kick_.bind<worker_run, &worker_run::drain>(this);
  }
  ~worker_run() override {
    engine_->shard().loop().cancel_timer(kick_);
    if (handle_ != 0 && worker_) worker_->cancel_call(handle_);
    release();
  }

  void begin(const generation_request& req) {
    starting_ = true;
    worker_ = engine_->ready_worker(index_);
    if (worker_) {
      std::string model = engine_->upstream_model(req.model);
      std::string request_id = req.original.request_id;
      if (request_id.empty()) {
        char id[32];
        request_id.assign(id, engine_->shard().make_request_id(id));
      }
      call_params p;
      p.request = &req;
      p.upstream_model = model;
      p.deadline_unix_ms = unix_ms_of(req.deadline_ms);
      p.request_id = request_id;
      std::unique_ptr<worker_call> call = engine_->dialect().make_call(p);
      // The slot goes with the call: it is freed when the worker is done with it.
      if (call) handle_ = worker_->start_call(std::move(call), this, worker_method::generate, std::move(ticket_));
    }
    starting_ = false;
    if (handle_ == 0) worker_ = nullptr;
    if (handle_ == 0 && !done_) {
      release();
      push(to_error_event(worker_failure_of("worker_crashed", "the worker is not running")));
    }
    if (!queue_.empty()) engine_->shard().loop().arm_after_ms(kick_, 0);
  }

  void resume() override {
    paused_ = false;
    drain();
  }

  bool on_call_event(const engine_event& e) override {
    if (done_) return false;
    if (starting_ || paused_ || !queue_.empty()) {
      push(owned_event(e));
      if (queued_bytes_ > jsonrpc_engine::buffer_bytes_max && !done_) {
        // The client does not read: stop the worker's call rather than buffer without end.
        if (handle_ != 0 && worker_) worker_->cancel_call(handle_);
        handle_ = 0;
        worker_ = nullptr;
        release();
        push(error_event("slow_consumer",
                         "the client read too slowly; the worker's output exceeded the buffer",
                         503, "server_error"));
      }
      return !paused_;
    }
    if (is_terminal(e)) done_ = true;
    bool more = sink_.on_event(e);
    if (!more) paused_ = true;
    return more;
  }

  void on_call_finished() override {
    handle_ = 0;
    worker_ = nullptr;  // it may be destroyed from now on
    release();
  }

 private:
  void push(owned_event e) {
    if (is_terminal(e.base)) done_ = true;
    queued_bytes_ += e.text.size() + e.error_message.size() + 64;
    queue_.push_back(std::move(e));
  }
  void drain() {
    while (!paused_ && !queue_.empty()) {
      owned_event e = std::move(queue_.front());
      queue_.pop_front();
      queued_bytes_ -= e.text.size() + e.error_message.size() + 64;
      bool terminal = is_terminal(e.base);
      bool more = sink_.on_event(e.view());
      if (terminal) return;  // the sink may destroy us from now on
      if (!more) paused_ = true;
    }
  }
  void release() {
    if (!ticket_) return;
    ticket_.reset();
    engine_->capacity_changed();
  }

  std::shared_ptr<jsonrpc_engine> engine_;
  size_t index_;
  slot_ticket ticket_;
  engine_sink& sink_;
  worker_process* worker_ = nullptr;  // set (and valid) while handle_ != 0
  uint64_t handle_ = 0;
  std::deque<owned_event> queue_;
  size_t queued_bytes_ = 0;
  bool starting_ = false, paused_ = false, done_ = false;
  timer kick_;
};

// Whether an error that arrives before anything reached the client is worth one more try: the
// error table marks worker_crashed and worker_overloaded, and a worker's data.retryable may
// override the mark either way (worker_errors.h).
bool retryable(const engine_event& e) { return e.raw_name == "retryable"; }

}  // namespace

class jsonrpc_stream final : public engine_stream, public engine_sink, public jsonrpc_waiter {
 public:
  jsonrpc_stream(std::shared_ptr<jsonrpc_engine> e, const generation_request& req, engine_sink& sink)
      : engine_(std::move(e)), req_(req), sink_(sink) {
    kick_.bind<jsonrpc_stream, &jsonrpc_stream::try_start>(this);
    deadline_.bind<jsonrpc_stream, &jsonrpc_stream::on_deadline>(this);
    retry_.bind<jsonrpc_stream, &jsonrpc_stream::on_retry>(this);
  }
  ~jsonrpc_stream() override {
    reactor& r = engine_->shard().loop();
    r.cancel_timer(kick_);
    r.cancel_timer(deadline_);
    r.cancel_timer(retry_);
    if (waiting_) engine_->dequeue(this);
    inner_.reset();
  }

  // Never delivers from inside generate(): the first attempt runs on a later turn.
  void begin() {
    reactor& r = engine_->shard().loop();
    r.arm_after_ms(kick_, 0);
    // A millisecond before the front's own deadline, so that the client sees worker_timeout
    // and the worker gets its cancel.
    if (req_.deadline_ms != 0) r.arm_at_ms(deadline_, req_.deadline_ms > 1 ? req_.deadline_ms - 1 : 0);
  }

  void resume() override {
    paused_ = false;
    if (pending_) {
      owned_event e = std::move(*pending_);
      pending_.reset();
      deliver_own(std::move(e));
      return;
    }
    if (inner_ && !retrying_) inner_->resume();
  }

  // From the inner stream.
  bool on_event(const engine_event& e) override {
    if (over_ || retrying_) return false;
    if (!delivered_ && e.type == event_type::error && !retried_ && retryable(e)) {
      // Nothing reached the client: once more, on another worker if there is one.
      retrying_ = true;
      // A worker that failed (died, was stopped) is gone: the retry may wait for any worker. One
      // that refused (overloaded, a retryable error) is avoided.
      retry_crashed_ = e.error_code == "worker_crashed" || e.error_code == "worker_protocol_error";
      first_failure_ = owned_event(e);
      first_failure_->raw_name.clear();
      engine_->shard().loop().arm_after_ms(retry_, 0);
      return false;
    }
    delivered_ = true;
    if (is_terminal(e)) over_ = true;
    bool more;
    if (!e.raw_name.empty() && e.type == event_type::error) {
      engine_event copy = e;
      copy.raw_name = {};
      more = sink_.on_event(copy);
    } else {
      more = sink_.on_event(e);
    }
    if (!more) paused_ = true;
    return more;
  }

  // A slot may be free: the engine's wait queue calls this for its first waiter.
  void wake() override {
    if (!waiting_) return;
    int w = engine_->reserve(-1);
    if (w < 0) return;
    engine_->dequeue(this);
    waiting_ = false;
    run_on(w);
  }

  void fail_waiting(owned_event e) override {
    waiting_ = false;
    deliver_own(std::move(e));
  }

 private:
  void try_start() {
    if (over_ || inner_) return;
    uint64_t now = engine_->shard().loop().now_ms();
    if (engine_->board()->paused(now)) return deliver_own(engine_->unavailable_event(false));
    int w = engine_->reserve(retried_ && !retry_crashed_ ? failed_worker_ : -1);
    if (w >= 0) return run_on(w);
    if (retried_ && !retry_crashed_) {
      // The worker refused (overloaded) and no other has room: its answer stands.
      return deliver_own(std::move(*first_failure_));
    }
    if (!engine_->enqueue(this)) return deliver_own(engine_->unavailable_event(engine_->board()->any_ready()));
    waiting_ = true;
    // A slot may have freed up between the look and the enqueue (another shard saw no waiter).
    wake();
  }

  void run_on(int w) {
    size_t index = static_cast<size_t>(w);
    current_worker_ = w;
    slot_ticket ticket(engine_->board(), index);
    shard_server& shard = engine_->shard();
    unsigned owner = engine_->board()->owner(index);
    if (owner == shard.id()) {
      inner_ = engine_->run_local(index, std::move(ticket), req_, *this);
      return;
    }
    std::shared_ptr<worker_board> board = engine_->board();
    inner_ = generate_on_shard(
        shard, owner,
        [board, index, ticket = std::move(ticket), req = req_](
            shard_server&, engine_sink& sink) mutable -> std::unique_ptr<engine_stream> {
          jsonrpc_engine* e = jsonrpc_engine::on_this_shard(board.get());
          if (!e) {
            owned_event err = to_error_event(
                worker_failure_of("worker_crashed", "the worker's shard no longer runs it"));
            sink.on_event(err.view());
            return nullptr;
          }
          return e->run_local(index, std::move(ticket), req, sink);
        },
        *this);
  }

  void on_retry() {
    retrying_ = false;
    retried_ = true;
    failed_worker_ = current_worker_;
    inner_.reset();
    try_start();
  }

  void on_deadline() {
    if (over_) return;
    bool was_waiting = waiting_;
    if (waiting_) {
      engine_->dequeue(this);
      waiting_ = false;
    }
    inner_.reset();  // the worker gets its cancel
    retrying_ = false;
    if (was_waiting && !engine_->board()->any_ready()) {
      return deliver_own(engine_->unavailable_event(false));
    }
    deliver_own(to_error_event(worker_failure_of(
        "worker_timeout", "the worker did not finish before the request's deadline")));
  }

  // An error of our own: the stream's last event.
  void deliver_own(owned_event e) {
    if (over_) return;
    if (paused_) {
      pending_ = std::move(e);
      return;
    }
    over_ = true;
    engine_->shard().loop().cancel_timer(deadline_);
    sink_.on_event(e.view());
  }

  std::shared_ptr<jsonrpc_engine> engine_;
  generation_request req_;
  engine_sink& sink_;
  std::unique_ptr<engine_stream> inner_;
  std::optional<owned_event> pending_, first_failure_;
  int current_worker_ = -1, failed_worker_ = -1;
  bool waiting_ = false, paused_ = false, over_ = false, delivered_ = false;
  bool retried_ = false, retrying_ = false, retry_crashed_ = false;
  timer kick_, deadline_, retry_;
};


std::unique_ptr<engine_stream> jsonrpc_engine::generate(const generation_request& req,
                                                       engine_sink& sink) {
  auto s = std::make_unique<jsonrpc_stream>(shared_from_this(), req, sink);
  s->begin();
  return s;
}

std::unique_ptr<engine_stream> jsonrpc_engine::run_local(size_t index, slot_ticket ticket,
                                                        const generation_request& req,
                                                        engine_sink& sink) {
  auto run = std::make_unique<worker_run>(shared_from_this(), index, std::move(ticket), sink);
  run->begin(req);
  return run;
}

}  // namespace rc::server
