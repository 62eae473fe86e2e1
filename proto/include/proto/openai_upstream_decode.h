// OpenAI-compatible upstreams, the response side: what an upstream answers, decoded into typed
// stream events (text deltas, tool call fragments, finish reasons, usage, errors), so that any
// front can render it whatever API the upstream spoke.
//
// chat_decoder takes chat.completion.chunk objects one at a time (the JSON of each SSE `data:`),
// or one whole chat.completion. Per choice: `delta.content` and `delta.refusal` are text deltas
// (a refusal reads as text), `delta.tool_calls[]` fragments become tool_call events keyed by
// their `index` (the first fragment of a call carries its id and name; later ones only
// arguments, whatever the upstream repeats), `finish_reason` ends the choice (`function_call`
// counts as tool_calls; unknown reasons as stop). A chunk's non-null `usage` is remembered, not
// emitted: the caller asks for usage() at the end. `{"error":{…}}` (some servers send one
// mid-stream) is an error event. Fields without a typed form (logprobs, reasoning_content,
// annotations) are skipped; passthrough keeps them.
//
// responses_decoder takes Responses streaming events, or one whole `response` object.
// output_text.delta and refusal.delta are text deltas (choice 0); an output_item.added of type
// function_call opens a tool call (its id is the item's call_id), function_call_arguments.delta
// adds to it, and an output_item.done of a call whose arguments never streamed delivers them
// whole. response.completed ends the choice (tool_calls if it made calls, else stop) and
// response.incomplete with `length` (max_output_tokens) or content_filter; both set usage and
// make finished() true. response.failed and `error` events are error events. Other events
// (created, in_progress, content_part.*, *.done, reasoning) carry nothing new.
//
// A value that is not what the API sends (not an object, a delta that is not a string, an event
// without a type) is an `upstream_protocol_error` error event: the caller drops the upstream.
//
// Thread-safety: none; a decoder belongs to the stream that owns it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/json_reader.h"
#include "proto/openai_common.h"

namespace rc::openai {

enum class stream_event_type : uint8_t { delta, tool_call, done, error };

// One typed event. Strings are owned: the caller may deliver events after the parser's
// document is gone (a paused stream).
struct stream_event {
  stream_event_type type = stream_event_type::delta;
  uint32_t choice = 0;
  std::string text = {};  // delta text, tool_call arguments fragment
  uint32_t tool_index = 0;
  std::string tool_call_id = {};  // tool_call: set on the first fragment of a call
  std::string tool_name = {};
  finish_reason finish = finish_reason::stop;
  // error: code, message, and the envelope's type and param (may be empty).
  std::string error_code = {};
  std::string error_message = {};
  std::string error_type = {};
  std::string error_param = {};
};

// Parses a Chat usage object (prompt/completion tokens and their details).
usage_counts parse_chat_usage(const json::value& usage);
// Parses a Responses usage object (input/output tokens and their details).
usage_counts parse_responses_usage(const json::value& usage);

class chat_decoder {
 public:
  // Appends the events of one chunk (or of a whole chat.completion) to `out`.
  void decode(const json::value& chunk, std::vector<stream_event>& out);
  // The last usage seen (zeros if none); whether any was seen.
  const usage_counts& usage() const { return usage_; }
  bool has_usage() const { return has_usage_; }
  // Whether the value just decoded had a non-empty `choices` (a pure usage chunk has none).
  bool last_had_choices() const { return last_had_choices_; }

 private:
  void decode_choice(const json::value& choice, bool whole, std::vector<stream_event>& out);
  void decode_tool_calls(uint32_t choice, const json::value& calls, std::vector<stream_event>& out);

  usage_counts usage_;
  bool has_usage_ = false;
  bool last_had_choices_ = false;
  // (choice, tool index) pairs whose first fragment was delivered.
  std::vector<uint64_t> calls_started_;
};

class responses_decoder {
 public:
  // Appends the events of one streaming event to `out`.
  void decode_event(const json::value& event, std::vector<stream_event>& out);
  // Appends the events of a whole `response` object (a non-streamed answer).
  void decode_response(const json::value& response, std::vector<stream_event>& out);

  const usage_counts& usage() const { return usage_; }
  bool finished() const { return finished_; }
  // The upstream's response id, once seen (response.created or the object).
  const std::string& response_id() const { return response_id_; }

 private:
  struct call_state {
    uint64_t output_index = 0;
    uint32_t tool_index = 0;
    bool arguments_seen = false;
  };
  call_state* find_call(uint64_t output_index);
  void open_call(uint64_t output_index, const json::value& item, std::vector<stream_event>& out);
  void finish(const json::value& response, std::vector<stream_event>& out);

  usage_counts usage_;
  bool finished_ = false;
  std::string response_id_;
  std::vector<call_state> calls_;
};

}  // namespace rc::openai
