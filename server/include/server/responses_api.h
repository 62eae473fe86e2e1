// The Responses API front ends: POST /v1/responses (JSON or SSE), the Responses WebSocket mode
// on GET /v1/responses, and the WebSocket broker's responses.create. One renderer turns engine
// events into the Responses event sequence for all of them:
//   response.created, response.in_progress, response.output_item.added,
//   response.content_part.added, response.output_text.delta..., response.output_text.done,
//   response.content_part.done, response.output_item.done, response.completed
// (function calls: output_item.added, function_call_arguments.delta..., .done, output_item.done;
// a max_output_tokens cut-off ends with response.incomplete; a failure with an `error` event).
//
// previous_response_id: the stored conversation is taken from its home shard (marked busy until
// this generation ends; 409 meanwhile), continued locally, and the new response is stored on this
// shard under a new id. In cluster mode a response another node stored is read through from the
// nodes' bucket first (responses_cluster.h; 503 nats_unavailable when it cannot be asked).
//
// Thread-safety: everything runs on the connection's shard; stores are reached by message.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/unique_function.h"
#include "proto/json_reader.h"
#include "proto/openai_responses.h"
#include "server/engine.h"
#include "server/ws_endpoint.h"

namespace rc::server {

class connection;
class generation_task;

enum class responses_mode : uint8_t {
  json,       // POST, stream: false
  sse,        // POST, stream: true
  ws,         // Responses WebSocket mode: each event is a text frame
  ws_broker,  // /ws responses.create: each event is {"id","event","data"}
};

// Starts a response for `req` on `conn` (admission already done). `request_id` is the broker
// request id (ws_broker) and `on_finished` runs when the response is over (also when it never
// started); both may be empty. `deadline_ms`: see generation_deadline_ms (0: none).
// `original`: the request as the engine may forward it (openai_api.h, original_of); its
// previous_response_id is filled here. A previous_response_id that is not in ringcast's store
// (not minted here, or minted by another ringcast upstream) is left to an upstream engine (one
// that starts lazily) to resolve; on the mock it is not found.
// Passed-through responses (raw events, HTTP fronts) carry the upstream's id and are not kept
// in ringcast's store.
void start_response(connection& conn, responses_mode mode, openai::responses_request&& req,
                    std::string request_id, unique_function<void()> on_finished,
                    uint64_t deadline_ms, original_request original);

// GET /v1/responses after the upgrade: {"type":"response.create", ...} messages. Requests with
// the same stream_id run one after another (FIFO), different stream_ids concurrently. Requests
// without a stream_id form one lane of their own, so they also run one after another: their events
// carry nothing that tells two responses apart, so they never interleave. Queued and running
// requests together are bounded by ws_inflight_max; past it a request gets an `error` message.
class responses_ws_handler final : public ws_handler {
 public:
  void on_message(ws_endpoint& ws, ws::message_kind kind, std::string_view payload) override;
  bool admits_messages() const override { return true; }
  void on_close(ws_endpoint& ws) override;

 private:
  struct queued {
    openai::responses_request req;
    original_request original;
  };
  struct lane {
    std::deque<queued> waiting;
    bool running = false;
  };
  void run_next(ws_endpoint& ws, const std::string& stream_id);
  static void send_error(ws_endpoint& ws, const openai::api_error& e);

  std::unordered_map<std::string, lane> lanes_;
  uint32_t inflight_ = 0;
  bool closed_ = false;
};

}  // namespace rc::server
