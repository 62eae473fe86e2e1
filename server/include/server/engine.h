// Engines: what turns a request into a stream of typed events.
//
// Every front end (HTTP JSON, SSE, WebSocket; chat, responses, broker) starts a generation the
// same way and renders the same events, so the fronts agree by construction:
//
//   delta      a piece of a choice's text
//   tool_call  a fragment of a tool call's arguments; the first fragment of a call carries its id
//              and name
//   done       a choice has ended, with its finish reason
//   usage      token counts for the whole request: always the last event of a success
//   error      the generation failed: always the last event of a failure
//
// Streams are pull-based: the engine delivers events to its sink while the sink returns true;
// when the sink returns false (its connection's outbound ring crossed the high watermark) the
// engine stops until resume(). Destroying a stream cancels it: no event is delivered once its
// destructor has started, and everything it held is released (the client left, a cancel action,
// a deadline). Engines never deliver events from inside generate(); the first one comes from the
// shard's loop, so a caller can finish setting up.
//
// Later engines (OpenAI-compatible HTTP upstreams, JSON-RPC workers, Responses over WebSocket)
// implement the same interface; the broker and every route call engines only through it.
//
// Fidelity. Typed events are what every front can render, but they cannot carry everything an
// upstream says (logprobs, refusals, annotations, fields the API adds tomorrow). So a request
// also carries the client's original body (`original`), and a front that renders the same API
// the upstream speaks over HTTP sets `original.passthrough`: the engine may then answer with
// `raw` events, the upstream's own JSON (with only `model` mapped back to the client's name),
// which the front writes unchanged; it still ends with a typed `usage` or `error`. Engines that
// cannot pass through (the mock, translation between APIs) ignore the flag and send typed
// events, which every front renders.
//
// Lazy start. An upstream may refuse a request (its 4xx envelope, 429, 503) before anything was
// produced; the client must then get that status, not a 200 stream that ends in an error. An
// engine whose starts_lazily() is true makes the front wait for its first event before it
// renders anything (SSE head, role chunk, response.created); an `error` as first event is then
// answered as a plain HTTP error with the event's status (or the Responses WS mode's / `/ws`
// error event).
//
// Thread-safety: an engine instance belongs to one shard; streams and their sinks live there too.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/unique_function.h"
#include "proto/openai_common.h"

namespace rc::server {

// One turn of a conversation, normalized from chat messages or Responses input items.
struct turn {
  openai::message_role role = openai::message_role::user;
  std::string text;  // tool calls and tool outputs are folded in as text
};

// Which OpenAI API a request or a raw event belongs to.
enum class api_kind : uint8_t { none, chat, responses };

// The client's request as it arrived, for engines that forward it. `body` is the JSON object of
// the API's HTTP request (for WebSocket fronts, the request rebuilt in that shape: the Responses
// WS mode's `response.create` without its `type`, the `/ws` action's `params`); it is shared,
// not copied, between the front, the engine and retries.
struct original_request {
  api_kind api = api_kind::none;
  std::shared_ptr<const std::string> body;
  bool stream = false;         // the client asked for a stream
  bool include_usage = false;  // chat: stream_options.include_usage
  // The front renders `raw` events of `api` (HTTP JSON or SSE of the same API).
  bool passthrough = false;
  std::string request_id;      // the client's x-request-id, passed on to upstreams (may be empty)
  // Responses: the previous response the client named (already resolved by the front into
  // `conversation` for engines that keep no state; stateful upstreams use the id).
  std::string previous_response_id;
  // Responses: the id the front gave this response, which the client sees. An engine that keeps
  // state (engine::keeps_state) keys what it retains by it and shows it in place of the upstream's
  // own id; the front mints it on the shard that holds the previous response's state.
  std::string response_id;
};

struct generation_request {
  std::string model;
  original_request original;
  std::vector<turn> conversation;  // oldest first; instructions / system turns included
  std::vector<openai::function_tool> tools;
  openai::tool_choice_spec tool_choice;
  bool parallel_tool_calls = true;
  uint32_t choices = 1;                  // n
  std::optional<uint64_t> max_tokens;    // completion tokens per choice
  std::vector<std::string> stop;
  std::optional<int64_t> seed;
  double temperature = 1.0;
  double top_p = 1.0;
  // When the request's deadline passes (monotonic ms, core/clock.h; 0: none). The front ends
  // the stream then anyway; an engine may pass it on (a worker's deadline_ms) and end its work
  // a moment earlier with its own error.
  uint64_t deadline_ms = 0;
};

enum class event_type : uint8_t { delta, tool_call, done, usage, error, raw };

struct engine_event {
  event_type type = event_type::delta;
  uint32_t choice = 0;
  std::string_view text;          // delta: text; tool_call: arguments fragment
  uint32_t tool_index = 0;        // tool_call: which call of the choice
  std::string_view tool_call_id;  // tool_call: set on the first fragment of a call
  std::string_view tool_name;     // tool_call: set on the first fragment of a call
  openai::finish_reason finish = openai::finish_reason::stop;  // done
  openai::usage_counts usage;     // usage
  std::string_view error_code;    // error
  std::string_view error_message; // error
  // error: the HTTP status the front answers with when nothing was rendered yet (0: the front's
  // own mapping of error_code), the OpenAI envelope's type and param (empty: the front's
  // defaults), how long the client should wait before retrying (0: no Retry-After), and the
  // upstream's whole error envelope (`{"error":{…}}`) to answer unchanged (empty: none).
  uint16_t http_status = 0;
  std::string_view error_type;
  std::string_view error_param;
  uint32_t retry_after_ms = 0;
  // raw: the upstream's JSON, `model` already mapped back: one chat.completion.chunk, or one
  // Responses event (`raw_name` is its SSE event name, i.e. its "type"); for a non-stream
  // request, the whole response object. `raw_api` says which API it belongs to. error: the
  // upstream's envelope, if any (see above).
  std::string_view raw;
  std::string_view raw_name;
  api_kind raw_api = api_kind::none;
};

class engine_sink {
 public:
  // Returns false to pause the stream before its next event.
  virtual bool on_event(const engine_event& e) = 0;

 protected:
  ~engine_sink() = default;
};

class engine_stream {
 public:
  virtual ~engine_stream() = default;
  // Continues after the sink returned false.
  virtual void resume() = 0;
};

struct embedding_request {
  std::string model;
  std::vector<std::string> texts;             // or tokens, rendered as text by the caller
  std::optional<uint32_t> dimensions;
  // When the request's deadline passes (monotonic ms, as generation_request's; 0: none).
  uint64_t deadline_ms = 0;
};

struct embedding_result {
  std::vector<float> vectors;  // texts.size() * dimensions, row-major, each row L2-normalized
  uint32_t dimensions = 0;
  uint64_t prompt_tokens = 0;
  std::string error_code, error_message;  // set on failure
  // On failure, as engine_event's: the HTTP status to answer (0: the front's own mapping), the
  // envelope's type and param, Retry-After (0: none), the upstream's envelope to pass unchanged.
  uint16_t http_status = 0;
  std::string error_type, error_param;
  uint32_t retry_after_ms = 0;
  std::string envelope;
};

struct tool_result {
  std::string output;  // JSON text
  std::string error_code, error_message;
};

class engine {
 public:
  virtual ~engine() = default;
  virtual std::string_view name() const = 0;
  // Models this engine serves, and the largest completion it allows per choice.
  virtual const std::vector<std::string>& models() const = 0;
  virtual uint64_t completion_tokens_max(std::string_view model) const = 0;
  // The model's embedding length: requests may ask for fewer `dimensions`, never more.
  virtual uint32_t embedding_dimensions(std::string_view model) const = 0;
  // Whether the engine can take work now (for /readyz).
  virtual bool ready() const = 0;
  // Whether fronts wait for the first event before rendering anything (see "Lazy start").
  virtual bool starts_lazily() const { return false; }
  // Whether the engine keeps conversations itself (a stateful responses-ws upstream): fronts then
  // pass previous_response_id on in `original` instead of resolving it from their response store
  // (the engine answers not-found and conflicts), and mint the new response's id on the home
  // shard of the previous one (mint_id_for), where the engine continues it.
  virtual bool keeps_state() const { return false; }

  virtual std::unique_ptr<engine_stream> generate(const generation_request& req,
                                                  engine_sink& sink) = 0;
  // `done` runs on this shard, never from inside the call.
  virtual void embed(const embedding_request& req,
                     unique_function<void(embedding_result&&)> done) = 0;
  // Runs one of the engine's built-in tools (WS tool.invoke).
  virtual void invoke_tool(std::string_view name, std::string_view arguments_json,
                           unique_function<void(tool_result&&)> done) = 0;
};

}  // namespace rc::server
