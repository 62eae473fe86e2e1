// generation_task: one engine generation serving one client request, from start to its last
// event, whatever front end renders it (chat or responses; JSON, SSE or WebSocket).
//
// The task owns the engine stream and is the engine's sink. It attaches to the connection as a
// stream producer, so the connection's backpressure pauses and resumes it and the connection's
// end cancels it (the client left: the engine stops at once, before or after the first token).
// Subclasses only render events.
//
// Admission: start() asks the shard's engine_scheduler for a slot; the task may wait in its
// queue (nothing is sent meanwhile, so a shed request still gets a proper 503). Once admitted,
// on_start() renders the beginning (SSE headers, role chunks, response.created) and the engine
// starts. An engine that starts lazily (engine.h, "Lazy start") starts first: on_start() runs
// when its first event arrives, unless that event is an error, which render() then gets with
// started() still false, so the front answers it as a plain error (HTTP status, envelope,
// Retry-After: respond_engine_error) instead of a stream that ends in an error. A deadline (x-ringcast-timeout-ms, bounded by the server's maximum) covers the wait and
// the generation: on expiry the task ends with deadline_exceeded (504, or an error event).
//
// Lifetime: a task deletes itself once its stream is over — after the terminal event (usage or
// error), a cancel, or the connection's end. Deletion is deferred to a later turn so that it
// never happens inside the engine's own callback. Nothing may keep a raw pointer to a task past
// its on_finished callback.
//
// Metrics: active streams (gauge), started/completed/failed/cancelled, time to first event and
// tokens delivered.
//
// Access log: over HTTP the connection writes the request's line; the task tells it the time of
// the first token and why the stream ended (deadline, error). Over a WebSocket, a generation
// started with log_ws_request() writes its own line when it finishes (protocol "ws", the action
// as the method, a status as HTTP would have answered: 200, 499 client gone or cancelled, 500
// engine error, 503 shed, 504 deadline).
//
// Thread-safety: a task, its connection and its engine stream live on one shard.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/timer_wheel.h"
#include "core/unique_function.h"
#include "proto/openai_chat.h"
#include "proto/openai_responses.h"
#include "server/access_log.h"
#include "server/engine.h"
#include "server/limits.h"
#include "server/rules.h"
#include "server/scheduler.h"
#include "server/stream.h"

namespace rc::server {

class connection;
class shard_server;
struct api_key;

class generation_task : public engine_sink, public stream_producer, public engine_ticket {
 public:
  generation_task(shard_server& shard, connection& conn);
  generation_task(const generation_task&) = delete;
  generation_task& operator=(const generation_task&) = delete;
  virtual ~generation_task();

  // Ends the task with deadline_exceeded if it is not over by then (0: no deadline).
  void set_deadline_ms(uint64_t timeout_ms);
  // Counts this task as one of its client's concurrent streams (the connection's budget) until
  // it ends. Off the budget's home shard the slot is asked of the home first: start() then waits
  // for the answer, and a refusal ends the task with too_many_streams.
  void count_stream();
  // Starts the generation (or queues it). REQUIRES: called once, right after construction, and
  // the scheduler had room (see engine_scheduler::has_room).
  void start(engine& e, generation_request req, bool bypass_queue_limit = false);
  // Ends the generation early: `code` is rendered as the stream's error (if the connection can
  // still take it), the engine is cancelled, the task finishes.
  void cancel(std::string_view code, std::string_view message);
  // Over a WebSocket, with --access-log: write a line for this request when it finishes.
  // `action` names the request ("chat.completion"); `ws_id` is the client's id for it, if any.
  void log_ws_request(std::string_view action, std::string_view ws_id);
  // Called once when the task is over (before it is deleted).
  void set_on_finished(unique_function<void()> fn) { on_finished_ = std::move(fn); }

 protected:
  // Renders the beginning of the output, once admitted. Returning false ends the task.
  virtual bool on_start() { return true; }
  // Renders one event. Returning false ends the task (the connection refused the output).
  virtual bool render(const engine_event& e) = 0;
  // The stream ended without a terminal event (cancelled, client gone, deadline, shed). The
  // connection is still usable only if `connection_alive`; started() tells whether on_start()
  // ran (if not, nothing was sent yet and a plain HTTP error can still be answered).
  virtual void on_abort(std::string_view code, std::string_view message, bool connection_alive);
  bool started() const { return started_; }
  // Within on_start(): the output begins with a `raw` event (a lazy engine passing the
  // upstream's own events through), so the renderer writes only the transport's beginning (the
  // SSE head), not its own first events.
  bool starts_with_raw() const { return first_raw_; }

  // Detaches from the connection and returns it, for a renderer about to end the response (an
  // SSE end closes the stream's producers, which must not be this task any more).
  connection* release_connection();

  shard_server& shard_;
  connection* conn_;  // null once the connection has gone
  uint64_t conn_id_;

 private:
  bool on_event(const engine_event& e) final;
  void on_pause() final { paused_ = true; }
  void on_resume() final;
  void on_stream_closed() final;
  void on_cut(std::string_view code, std::string_view message) final;
  void on_admitted() final;
  void on_shed(uint64_t waited_ms) final;
  void on_deadline();
  void finish();
  // How the request ended, for the access log (the first call wins).
  void end_as(close_reason reason, int status);
  void write_ws_line();

  struct ws_log_state;
  std::unique_ptr<ws_log_state> ws_log_;
  close_reason end_reason_ = close_reason::none;
  int end_status_ = 0;

  engine* engine_ = nullptr;
  // Keeps engine_ alive across a reload that replaces it (declared before stream_, which must go
  // first).
  std::shared_ptr<engine> engine_ref_;
  generation_request request_;
  std::unique_ptr<engine_stream> stream_;
  timer deadline_;
  uint64_t deadline_at_ms_ = 0;  // monotonic ms (request_.deadline_ms)
  bool holds_slot_ = false;
  // The client's stream slot (limits.h): held, or asked of the home shard (handle != 0).
  bool holds_stream_ = false;
  uint64_t stream_ask_ = 0;
  bool start_pending_ = false;  // start() waits for the stream slot
  bool bypass_queue_limit_ = false;
  limit_subject budget_;
  void on_stream_slot(bool granted);
  void run_start();
  bool started_ = false;
  bool first_raw_ = false;
  unique_function<void()> on_finished_;
  uint64_t started_ns_ = 0;
  bool first_event_seen_ = false;
  bool in_callback_ = false;
  bool paused_ = false;
  bool finished_ = false;
};

// Conversation building: chat messages and Responses input items become engine turns.
void append_turns(const std::vector<openai::chat_message>& messages, std::vector<turn>& out);
void append_turns(const std::vector<openai::input_item>& items, std::vector<turn>& out);
generation_request chat_generation(const openai::chat_request& req);

// Ids we mint encode the shard that minted them: "<prefix><shard>_<16 hex>".
std::string mint_id(shard_server& shard, std::string_view prefix);
// The same, encoding shard `home` instead of the caller's (an id whose state another shard keeps).
std::string mint_id_for(shard_server& shard, std::string_view prefix, unsigned home);
// The shard encoded in an id minted by mint_id, or -1 if `id` isn't one of ours.
int shard_of_id(std::string_view id, std::string_view prefix, unsigned shard_count);

}  // namespace rc::server
