// responses_ws_events: what a `responses-ws` upstream says, turned into engine events, and what
// ringcast says to it.
//
// Request. build_response_create() wraps the client's Responses request as the upstream's
// `{"type":"response.create",…}` message: the client's members byte for byte (json_splice.h)
// except `model` (the upstream's name), `previous_response_id` (the upstream's own id of the
// retained session's last response, or absent) and `stream` (a WebSocket always streams).
// Requests from other fronts, and a follow-up the upstream cannot know (stateless mode: the front
// resolved the previous response into the conversation), are built from the typed
// generation_request: the conversation as input messages, function tools, tool_choice,
// max_output_tokens, temperature, top_p.
//
// Events. A translator follows one response. Each upstream message is parsed, checked and
// decoded by openai::responses_decoder (proto/openai_upstream_decode.h), and becomes:
//  * raw mode (the front passes Responses events through): the event itself, byte for byte, but
//    for its response object's `id` (the id ringcast gave the client), `model` (the client's name)
//    and `previous_response_id` (the client's); for a non-stream request only the final response
//    object, once. A terminal event whose `output` is missing or empty gets the items of the
//    `response.output_item.done` events seen (backfill), in output_index order.
//  * typed mode: the decoder's text deltas (refusals too), tool call fragments, finish reason.
// Both end with the typed usage (or error), as engine.h requires. An `error` event, or a
// response.failed, is an error event (the `error` event's envelope kept for the HTTP answer). A
// message that is not what the API sends (not a JSON object, no type, a terminal event without
// a response object, …) is a protocol error: the caller fails the stream with
// upstream_protocol_error and drops the socket.
//
// Thread-safety: one translator per response, on its shard.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/byte_buffer.h"
#include "proto/json_reader.h"
#include "proto/openai_upstream_decode.h"
#include "server/engine.h"
#include "server/owned_event.h"

namespace rc::server {

// Appends the response.create message for `req`. `previous_upstream_id` empty: none.
void build_response_create(json::parser& parser, const generation_request& req,
                           std::string_view upstream_model, std::string_view previous_upstream_id,
                           byte_buffer& out);

struct translate_options {
  bool raw = false;     // passthrough of Responses events
  bool stream = true;   // the client asked for a stream
  std::string client_model;
  std::string response_id;           // shown to the client (empty: the upstream's)
  std::string previous_response_id;  // the client's (empty: none)
};

class responses_ws_translator {
 public:
  enum class outcome : uint8_t { more, completed, failed, protocol_error };
  explicit responses_ws_translator(translate_options options) : options_(std::move(options)) {}

  // Handles one upstream message; its events are appended to `emit` in order.
  outcome on_message(json::parser& parser, std::string_view message, std::vector<owned_event>& emit);

  // The upstream's id of this response (from response.created or the terminal event).
  const std::string& upstream_id() const { return upstream_id_; }
  // Why on_message returned protocol_error.
  const std::string& problem() const { return problem_; }

 private:
  bool rewrite_response(std::string_view response, bool backfill, byte_buffer& out);
  bool emit_raw(std::string_view type, std::string_view message, bool terminal, bool backfill,
                std::vector<owned_event>& emit);
  outcome protocol_error(std::string problem);
  owned_event upstream_error(std::string_view type, const json::value& root,
                             openai::stream_event&& e);

  translate_options options_;
  std::string upstream_id_;
  std::string problem_;
  std::map<int64_t, std::string> done_items_;            // output_index → item JSON
  openai::responses_decoder decoder_;  // typed events, and what a valid event looks like
};

}  // namespace rc::server
