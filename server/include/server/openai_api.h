// The OpenAI-compatible front ends: chat completions, responses, embeddings and models, over HTTP
// JSON, SSE and WebSocket (API.md, "OpenAI-compatible"). Routes live in handlers.h; this header
// has what the WebSocket broker and the Responses WebSocket mode share with them.
//
// Thread-safety: everything runs on the connection's shard.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "proto/json_reader.h"
#include "proto/openai_errors.h"
#include "server/engine.h"
#include "server/generation.h"

namespace rc::server {

class connection;
class shard_server;
class ws_endpoint;

// Answers the current HTTP request with an OpenAI error envelope.
void respond_api_error(connection& c, const openai::api_error& e);

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
