// Private to the openai engine: one generation against the upstream (see openai_engine.h for
// the contract). The request body is prepared once (openai_call_body.cc) and shared by the
// attempts; the answer is decoded as it arrives (openai_call.cc) into events delivered to the
// sink while it accepts them, queued while it is paused (openai_call_events.cc).
//
// Thread-safety: a call belongs to its engine's shard.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "core/shared_buffer.h"
#include "core/timer_wheel.h"
#include "openai_engine_impl.h"
#include "openai_failure.h"
#include "proto/json_reader.h"
#include "proto/openai_upstream_decode.h"
#include "proto/sse.h"

namespace rc::server {

// What the upstream is sent for one generation (built by prepare_upstream_body).
struct upstream_body {
  api_kind wire = api_kind::chat;  // the API of the upstream request
  bool passthrough = false;        // answer with raw events of `wire`
  bool stream = true;              // the upstream request streams
  bool client_include_usage = false;
  std::string text;
};

// Builds the request for `req` on an upstream speaking `api`. On failure returns the client's
// error (400) instead.
std::optional<upstream_failure> prepare_upstream_body(const generation_request& req,
                                                      upstream_api api,
                                                      std::string_view upstream_model,
                                                      json::parser& parser, upstream_body& out);

class openai_call final : public engine_stream, public response_sink {
 public:
  openai_call(openai_engine& e, const generation_request& req, engine_sink& sink);
  ~openai_call() override;
  void resume() override;

  void on_response_head(const http1::response& head) override;
  void on_response_body(std::string_view bytes) override;
  void on_response_end() override;
  void on_response_error(client_error kind, std::string_view message) override;

 private:
  // One event for the sink, owning its strings (it may wait in the queue while paused).
  struct out_event {
    event_type type = event_type::delta;
    uint32_t choice = 0;
    uint32_t tool_index = 0;
    std::string text = {};
    std::string id = {};
    std::string name = {};
    std::string raw = {};
    std::string raw_name = {};
    api_kind raw_api = api_kind::none;
    openai::finish_reason finish = openai::finish_reason::stop;
    openai::usage_counts usage = {};
    upstream_failure error = {};
  };
  enum class phase : uint8_t { idle, waiting, sse, whole, error_body, over };
  enum class timer_use : uint8_t { none, retry, drain, grace };

  void start_attempt();
  void on_timer();
  void arm(timer_use use, uint64_t delay_ms);
  // An attempt failed before anything was committed to the client: retry or give up.
  void attempt_failed(upstream_failure f, const attempt_result& r);
  // Tells the endpoint's breaker how the attempt went (once per attempt).
  void verdict(bool ok);
  // The call fails with `f` (an HTTP error if nothing was rendered, else a mid-stream error).
  void fail(upstream_failure f, upstream_error_kind kind);
  void finish_ok();

  void on_sse_event(std::string_view name, std::string_view data);
  void on_whole_body();
  void on_chat_value(std::string_view data, const json::value& root);
  void on_responses_value(std::string_view data, std::string_view name, const json::value& root);
  // Typed events from a decoder; true if one was an error (the call is then over).
  bool push_decoded(std::vector<openai::stream_event>& events);
  // Fails the call if an event names a choice at or past n (true then).
  bool bad_choice(const std::vector<openai::stream_event>& events);
  void push_raw(std::string_view data, std::string_view name);
  void push(out_event&& e);
  // Bookkeeping of an event on its way to the sink: commitment and the first-token time.
  void note_event(event_type type);
  // Delivers queued events while the sink accepts them. False if the call is over.
  void drain();

  openai_engine& engine_;
  engine_sink& sink_;
  std::string client_model_;
  upstream_body body_;
  shared_buffer body_bytes_;
  std::string request_id_;
  uint32_t choices_ = 1;  // n: an upstream's choice index at or past it is a protocol error
  request_handle handle_;
  int endpoint_ = -1;            // of the current (or last) attempt
  bool verdict_pending_ = false;  // the attempt was admitted through a breaker, no outcome yet
  uint32_t attempts_ = 0;
  uint64_t start_ms_ = 0;
  uint64_t retry_deadline_ms_ = 0;
  timer timer_;
  timer_use timer_use_ = timer_use::none;
  phase phase_ = phase::idle;
  int status_ = 0;
  std::optional<uint64_t> retry_after_ms_;
  std::string error_body_;
  std::string whole_;
  sse::decoder sse_;
  openai::chat_decoder chat_;
  openai::responses_decoder responses_;
  std::vector<openai::stream_event> decoded_;
  byte_buffer scratch_;
  byte_buffer unasked_;  // a chunk without the "usage": null the client did not ask for
  std::deque<out_event> queue_;
  bool committed_ = false;      // an event other than an error was queued: no more retries
  bool upstream_done_ = false;  // [DONE] or a terminal Responses event was seen
  bool saw_finish_ = false;     // a choice finished (chat streams without [DONE])
  bool grace_armed_ = false;    // the end-of-stream grace timer runs
  bool paused_ = false;
  bool starting_ = false;  // inside the constructor (generate())
  bool terminal_queued_ = false;
  bool first_token_seen_ = false;
  bool got_response_bytes_ = false;
};

}  // namespace rc::server
