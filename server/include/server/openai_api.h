// The OpenAI-compatible front ends: chat completions, responses, embeddings and models, over HTTP
// JSON, SSE and WebSocket (API.md, "OpenAI-compatible"). Routes live in handlers.h; this header
// has what the WebSocket broker and the Responses WebSocket mode share with them.
//
// Thread-safety: everything runs on the connection's shard.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "proto/http1_parser.h"
#include "proto/json_reader.h"
#include "proto/openai_errors.h"
#include "server/engine.h"
#include "server/generation.h"

namespace rc::server {

class connection;
class shard_server;
class ws_endpoint;

// Answers the current HTTP request with an OpenAI error envelope. 429 and 503 carry Retry-After
// and retry-after-ms (retry_after_ms, or 1 s when 0).
void respond_api_error(connection& c, const openai::api_error& e, uint64_t retry_after_ms = 0);

// The error a generation that ended early reports: shed and queue_full are 503, a deadline 504,
// a cancel 499-like "cancelled" (400 class), anything else 500.
openai::api_error abort_error(std::string_view code, std::string_view message);

// The error an engine's error event reports: abort_error's mapping of its code, with the event's
// HTTP status, envelope type and param when it gives them.
openai::api_error engine_error(const engine_event& e);
// Answers the current HTTP request with an engine's error event (nothing was sent yet): the
// upstream's own envelope (`raw`) when there is one, else engine_error()'s envelope, with the
// event's status and a Retry-After (and retry-after-ms) from retry_after_ms; a 429 or 503
// without one gets `default_retry_ms`.
void respond_engine_error(connection& c, const engine_event& e, uint64_t default_retry_ms);
// generation_request::original for a front: the request body as the API's JSON, whether the
// client asked for a stream, whether the front renders raw events of `api`, and the request's
// x-request-id.
original_request original_of(connection& conn, api_kind api, std::string body, bool stream,
                             bool passthrough);

// A chat completion for the WebSocket broker: events chat.delta, chat.tool_call, chat.complete,
// each carrying the request id. Returns the task (null after an error was already sent).
generation_task* start_chat_ws(ws_endpoint& ws, std::string_view request_id,
                               const json::value& payload);

// embedding.query and tool.invoke for the WebSocket broker: embedding.result {object, data,
// model, usage} / tool.result {output}. `on_finished` runs once the answer was sent; false (and
// no call) when the request was rejected at once (the error is already sent).
bool start_embedding_ws(ws_endpoint& ws, std::string_view request_id, const json::value& payload,
                        unique_function<void()> on_finished);
bool start_tool_ws(ws_endpoint& ws, std::string_view request_id, const json::value& payload,
                   unique_function<void()> on_finished);

// Admission of a generation for the current HTTP request: room in the engine queue (else 503
// queue_full) and under the key's stream cap (else 429). False after answering.
bool admit_generation(connection& conn);
// The same for a WebSocket request: queue room, stream cap (the rate limit is the caller's, once
// per message: connection::admit_ws_action). Sends nothing: a refusal
// comes back as an error (status 429 or 503) for the caller to render in its protocol's shape;
// when the queue was full the caller also sends flow.pause (ws_endpoint::pause_flow_for).
std::optional<openai::api_error> admit_ws_generation(ws_endpoint& ws, uint64_t& retry_after_ms);
// The deadline of a generation: x-ringcast-timeout-ms if given (capped by the server's maximum),
// else the server default; 0 for none. `header` is the header's value (may be empty).
uint64_t generation_deadline_ms(const shard_server& shard, std::string_view header);
// Answers 400 (param and code name the header) when x-ringcast-timeout-ms is malformed, empty,
// zero or negative; false then. Handlers that take the header check it first.
bool check_timeout_header(connection& conn, const http1::request& req);

// message.stream for the WebSocket broker: the broker lifecycle events of one message, each
// carrying the request id (broker_routes.cc). Returns the watch id (broker::cancel_watch), or 0
// when the request was refused at once (the error is already sent).
uint64_t start_message_stream_ws(ws_endpoint& ws, std::string_view request_id,
                                 const json::value& payload);

// Publishes a chat stream's deltas to a topic as well (header x-ringcast-topic: T), so watchers
// can follow one generation live: {"type":"delta","id","choice","delta"}, then
// {"type":"done","id","finish_reasons","usage"} or {"type":"error","id","code","message"}.
class topic_mirror {
 public:
  topic_mirror(shard_server& shard, std::string topic, std::string id)
      : shard_(shard), topic_(std::move(topic)), id_(std::move(id)) {}
  void delta(uint32_t choice, std::string_view text);
  void done(const openai::usage_counts& usage);
  void error(std::string_view code, std::string_view message);

 private:
  void publish(std::string json);
  shard_server& shard_;
  std::string topic_;
  std::string id_;
};

}  // namespace rc::server
