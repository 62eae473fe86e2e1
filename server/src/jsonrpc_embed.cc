// The jsonrpc engine's embeddings (jsonrpc_engine.h): a slot taken like a stream's (waiting in
// the same queue), the call run on the worker's shard (embed_on_shard for another shard's).
#include "core/log.h"
#include "jsonrpc_engine_impl.h"
#include "server/remote_generation.h"
#include "server/shard.h"

namespace rc::server {
namespace {

// Waits for an embedding call's answer; answers worker_crashed if the call ends without one.
// It is owned by the call (its callback holds it), so it must not own the engine: that would make
// a cycle (engine → worker → call → waiter → engine) through which a replaced engine could be
// destroyed from inside its own sweep. It finds the engine through the board instead.
// The request's deadline: 504 worker_timeout, and the worker gets a cancel for the call.
struct embed_waiter final : call_consumer {
  unique_function<void(embedding_result&&)> done;
  slot_ticket ticket;
  std::shared_ptr<worker_board> board;
  bool answered = false;
  reactor* loop = nullptr;
  timer deadline;
  worker_process* worker = nullptr;  // set (and valid) while handle != 0
  uint64_t handle = 0;

  ~embed_waiter() {
    if (loop) loop->cancel_timer(deadline);
  }
  void arm(reactor& r, uint64_t deadline_ms) {
    loop = &r;
    deadline.set_callback(
        [](timer&, void* ctx) { static_cast<embed_waiter*>(ctx)->on_deadline(); }, this);
    // A millisecond before the front's own deadline, as a generation's.
    r.arm_at_ms(deadline, deadline_ms > 1 ? deadline_ms - 1 : 0);
  }
  void on_deadline() {
    worker_failure f = worker_failure_of("worker_timeout", "the worker did not answer before the request's deadline");
    embedding_result r;
    r.error_code = f.code;
    r.error_message = f.message;
    r.http_status = f.http_status;
    r.error_type = f.type;
    answer(std::move(r));
    // The call goes on until the worker answers the cancel (or its grace is over).
    if (handle != 0 && worker) worker->cancel_call(handle);
  }

  void answer(embedding_result&& r) {
    if (answered) return;
    answered = true;
    if (ticket) {
      ticket.reset();
      if (jsonrpc_engine* e = jsonrpc_engine::on_this_shard(board.get())) e->capacity_changed();
    }
    auto fn = std::move(done);
    fn(std::move(r));
  }
  bool on_call_event(const engine_event& e) override {
    if (e.type == event_type::error) {
      embedding_result r;
      r.error_code = std::string(e.error_code);
      r.error_message = std::string(e.error_message);
      r.http_status = e.http_status;
      r.error_type = std::string(e.error_type);
      r.error_param = std::string(e.error_param);
      r.retry_after_ms = e.retry_after_ms;
      answer(std::move(r));
    }
    return true;
  }
  void on_call_finished() override {
    handle = 0;
    worker = nullptr;
    if (loop) loop->cancel_timer(deadline);
    if (!answered) {
      worker_failure f = worker_failure_of("worker_crashed", "the worker ended the call without an answer");
      embedding_result r;
      r.error_code = f.code;
      r.error_message = f.message;
      r.http_status = f.http_status;
      r.error_type = f.type;
      answer(std::move(r));
    }
  }
};

embedding_result result_of(const owned_event& e) {
  embedding_result r;
  r.error_code = e.error_code;
  r.error_message = e.error_message;
  r.http_status = e.base.http_status;
  r.error_type = e.error_type;
  r.retry_after_ms = e.base.retry_after_ms;
  return r;
}

// Answers `done` on a later turn.
void answer_later(reactor& r, embedding_result result, unique_function<void(embedding_result&&)> done) {
  struct later {
    timer t;
    embedding_result result;
    unique_function<void(embedding_result&&)> done;
  };
  auto* l = new later{{}, std::move(result), std::move(done)};
  l->t.set_callback(
      [](timer&, void* ctx) {
        auto* self = static_cast<later*>(ctx);
        self->done(std::move(self->result));
        delete self;
      },
      l);
  r.arm_after_ms(l->t, 0);
}

}  // namespace

void jsonrpc_engine::embed_local(size_t index, slot_ticket ticket, const embedding_request& req,
                                 std::string model, unique_function<void(embedding_result&&)> done) {
  worker_process* w = ready_worker(index);
  if (!w) {
    return answer_later(shard_.loop(),
                        result_of(to_error_event(worker_failure_of("worker_crashed", "the worker is not running"))),
                        std::move(done));
  }
  auto waiter = std::make_shared<embed_waiter>();
  waiter->done = std::move(done);
  waiter->ticket = std::move(ticket);
  waiter->board = board_;
  std::unique_ptr<worker_call> call =
      dialect_->make_embed_call(req, model, [waiter](embedding_result&& r) { waiter->answer(std::move(r)); });
  if (!call) {
    embedding_result r;
    r.error_code = "unsupported";
    r.error_message = "upstream '" + cfg_->name + "': its workers do not do embeddings";
    r.http_status = 400;
    r.error_type = "invalid_request_error";
    waiter->answered = true;
    waiter->ticket.reset();
    return answer_later(shard_.loop(), std::move(r), std::move(waiter->done));
  }
  // The waiter lives as long as the call (its callback holds it).
  // The slot goes with the call: it is freed when the worker is done with it.
  uint64_t h = w->start_call(std::move(call), waiter.get(), worker_method::embed, std::move(waiter->ticket));
  if (h == 0) return waiter->on_call_finished();
  waiter->worker = w;
  waiter->handle = h;
  if (req.deadline_ms != 0) waiter->arm(shard_.loop(), req.deadline_ms);
}

namespace {

// An embedding waiting in the queue for a slot (until the request's deadline, else the server's
// request timeout, else init_timeout_ms).
class embed_wait final : public jsonrpc_waiter {
 public:
  embed_wait(std::shared_ptr<jsonrpc_engine> e, const embedding_request& req,
             unique_function<void(embedding_result&&)> done)
      : engine_(std::move(e)), req_(req), done_(std::move(done)) {
    timeout_.bind<embed_wait, &embed_wait::on_timeout>(this);
  }
  ~embed_wait() { engine_->shard().loop().cancel_timer(timeout_); }

  void wait(uint64_t ms) { engine_->shard().loop().arm_after_ms(timeout_, ms); }
  void wake() override {
    int w = engine_->reserve(-1);
    if (w < 0) return;
    engine_->dequeue(this);
    engine_->embed_on(w, req_, std::move(done_));
    finish();
  }
  void fail_waiting(owned_event e) override {
    answer_later(engine_->shard().loop(), result_of(e), std::move(done_));
    finish();
  }

 private:
  void on_timeout() {
    engine_->dequeue(this);
    if (engine_->board()->any_ready()) {
      return fail_waiting(to_error_event(worker_failure_of(
          "worker_timeout", "no worker had room for the embedding before the request's deadline")));
    }
    fail_waiting(engine_->unavailable_event(false));
  }
  // Deleted on a later turn: it may hold the last reference to the engine that called it.
  void finish() {
    engine_->shard().loop().cancel_timer(timeout_);
    embed_wait* self = this;
    shard_server& shard = engine_->shard();
    shard.loop().post(shard.id(), [self] { delete self; });
  }
  std::shared_ptr<jsonrpc_engine> engine_;
  embedding_request req_;
  unique_function<void(embedding_result&&)> done_;
  timer timeout_;
};

}  // namespace

void jsonrpc_engine::embed(const embedding_request& req,
                           unique_function<void(embedding_result&&)> done) {
  uint64_t now = shard_.loop().now_ms();
  if (board_->paused(now))
    return answer_later(shard_.loop(), result_of(unavailable_event(false)), std::move(done));
  int w = reserve(-1);
  if (w >= 0) return embed_on(w, req, std::move(done));
  auto* waiter = new embed_wait(shared_from_this(), req, std::move(done));
  if (!enqueue(waiter)) return waiter->fail_waiting(unavailable_event(board_->any_ready()));
  if (req.deadline_ms != 0) return waiter->wait(req.deadline_ms > now + 1 ? req.deadline_ms - 1 - now : 0);
  uint32_t ms = shard_.config().request_timeout_ms;
  waiter->wait(ms != 0 ? ms : std::max<uint32_t>(cfg_->init_timeout_ms, 1000));
}

void jsonrpc_engine::embed_on(int w, const embedding_request& req,
                              unique_function<void(embedding_result&&)> done) {
  size_t index = static_cast<size_t>(w);
  slot_ticket ticket(board_, index);
  std::string model = upstream_model(req.model);
  unsigned home = board_->owner(index);
  if (home == shard_.id()) return embed_local(index, std::move(ticket), req, std::move(model), std::move(done));
  std::shared_ptr<worker_board> board = board_;
  embed_on_shard(
      shard_, home,
      [board, index, ticket = std::move(ticket), req, model = std::move(model)](
          shard_server& there, unique_function<void(embedding_result&&)> d) mutable {
        jsonrpc_engine* e = on_this_shard(board.get());
        if (!e) {
          return answer_later(there.loop(),
                              result_of(to_error_event(worker_failure_of(
                                  "worker_crashed", "the worker's shard no longer runs it"))),
                              std::move(d));
        }
        e->embed_local(index, std::move(ticket), req, std::move(model), std::move(d));
      },
      std::move(done));
}

}  // namespace rc::server
