// responses_ws_events: what a `responses-ws` upstream says, turned into engine events, and what
// ringcast says to it.
//
// Request. build_response_create() wraps the client's Responses request as the upstream's
// `{"type":"response.create",…}` message: every member of the client's body is kept (re-encoded
// compactly) except `model` (the upstream's name), `previous_response_id` (the upstream's own id
// of the retained session's last response, or absent) and `stream` (a WebSocket always streams).
// Requests from other fronts (chat completions, the mock-shaped typed request) are built from
// the typed generation_request: the conversation as input messages, function tools, tool_choice,
// max_output_tokens, temperature, top_p.
//
// Events. A translator follows one response. Each upstream message is parsed and becomes:
//  * raw mode (the front passes Responses events through): the event itself, with the response
//    object's `id` replaced by the id ringcast gave the client, `model` by the client's model name
//    and `previous_response_id` by the client's; for a non-stream request only the final
//    response object, once. A `response.completed` whose `output` is missing or empty gets the
//    items of the `response.output_item.done` events seen (backfill), in output_index order.
//  * typed mode: output_text.delta → delta, output_item.added of a function call and
//    function_call_arguments.delta → tool_call fragments, completed → done (stop, or tool_calls
//    when calls were made) + usage, incomplete → done (length) + usage, failed or an `error`
//    event → error.
// A terminal raw event is still followed by the typed usage (or error), as engine.h requires.
// A message that is not a JSON object with a string `type`, or a terminal event without a
// response object, is a protocol error: the caller fails the stream with upstream_protocol_error
// and drops the socket.
//
// Thread-safety: one translator per response, on its shard.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/byte_buffer.h"
#include "proto/json_reader.h"
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
  void write_response(const json::value& response, byte_buffer& out, bool backfill);
  outcome terminal(std::string_view type, const json::value& root, std::string_view message,
                   std::vector<owned_event>& emit);
  void emit_raw(std::string_view type, std::string_view json, std::vector<owned_event>& emit);

  translate_options options_;
  std::string upstream_id_;
  std::string problem_;
  std::map<int64_t, std::string> done_items_;            // output_index → item JSON
  std::unordered_map<std::string, uint32_t> call_index_;  // function call item id → tool index
  uint32_t calls_ = 0;
};

}  // namespace rc::server
