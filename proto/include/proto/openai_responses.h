// OpenAI Responses API (POST /v1/responses, and the `response.create` message of its WebSocket
// mode): request parsing and validation, the `response` object, and the streaming events.
//
// Parsing follows the same policies as openai_chat.h: unknown top-level members are ignored,
// null means absent, the last duplicate wins, errors come in a fixed order with OpenAI's
// wording and param paths ("input[2].content[0].type"). `input` may be a string (one user
// message) or an array of items: messages ({role, content}, with or without
// "type":"message"; content a string or input_text/output_text/refusal/media parts),
// function_call items and function_call_output items.
//
// Encoding: write_response() writes a `response` object; response_event_writer writes the
// streaming events one per call (each a complete JSON value with `type` and `sequence_number`,
// no SSE framing, no newlines) and keeps the response object up to date, so that
// response.completed always carries the full `output` (also when the stream is cut short and
// the caller finishes with incomplete() or failed()). The events of one stream, in order:
//
//   created, in_progress,
//   per message:       begin_message (output_item.added), content_part_added,
//                      text_delta…, text_done, content_part_done, end_item (output_item.done)
//   per function call: begin_function_call (output_item.added), arguments_delta…,
//                      arguments_done, end_item (output_item.done)
//   completed | incomplete | failed
//
// Calls out of this order are programmer errors (RC_ASSERT). `error` may be written at any
// time. The SSE `event:` name of each call is given by the response_event constants.
//
// Thread-safety: none; a response_event_writer belongs to the stream that owns it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/byte_buffer.h"
#include "proto/json_reader.h"
#include "proto/json_writer.h"
#include "proto/openai_common.h"
#include "proto/openai_errors.h"

namespace rc::openai {

// ---- request ----

enum class input_item_type : uint8_t {
  message,
  function_call,
  function_call_output,
  custom_tool_call,         // call_id, name, input (kept in `arguments`)
  custom_tool_call_output,  // call_id, output
  other,                    // any other item type: `type_name` and `raw_json`
};

struct input_item {
  input_item_type type = input_item_type::message;
  std::string id;  // optional item id sent by the client
  // message
  message_role role = message_role::user;  // user | assistant | system | developer
  std::string text;                        // text parts concatenated
  uint32_t media_parts = 0;                // input_image / input_file parts, counted only
  // function_call and function_call_output
  std::string call_id;
  std::string name;       // function_call, custom_tool_call
  std::string arguments;  // function_call; custom_tool_call: its input
  std::string output;     // function_call_output, custom_tool_call_output
  std::string tool_namespace;  // function_call: the namespace tool it belongs to (may be empty)
  // other: the item's type and the item as sent, re-encoded (listed back unchanged). Items that
  // carry something a text-only engine can use fold it into role/text (a local shell call and
  // its output); the others (reasoning, hosted tool calls, references) leave `text` empty.
  std::string type_name;
  std::string raw_json;
};

enum class truncation_mode : uint8_t { disabled, auto_ };

// The request members a `response` object repeats back.
struct response_settings {
  std::string model;
  std::optional<std::string> instructions;
  std::optional<int64_t> max_output_tokens;  // >= 16
  std::string previous_response_id;          // empty: none
  bool store = true;
  double temperature = 1.0;  // [0, 2]
  double top_p = 1.0;        // [0, 1]
  bool parallel_tool_calls = true;
  tool_choice_spec tool_choice;  // unset: "auto"
  std::vector<function_tool> tools;  // the function tools, which engines may call
  // Every tool in the client's order: empty for a function tool (written from `tools`), the
  // tool as sent (re-encoded) for any other type (namespace, custom, web_search, mcp, …).
  std::vector<std::string> tool_entries;
  format_spec text_format;  // text.format
  std::string text_verbosity;  // text.verbosity: low | medium | high (empty: not given)
  std::string reasoning_effort;   // reasoning.effort (empty: not given)
  std::string reasoning_summary;  // reasoning.summary (empty: not given)
  std::string service_tier;       // empty: not given
  std::string prompt_cache_key;
  std::string safety_identifier;
  truncation_mode truncation = truncation_mode::disabled;
  std::string user;
  metadata_pairs metadata;
};

// Upper bounds (as chat's): input items, and tools.
inline constexpr size_t responses_input_items_max = 2048;
inline constexpr size_t responses_tools_max = 128;

struct responses_request {
  response_settings settings;
  std::vector<input_item> input;
  bool input_was_string = false;
  bool stream = false;
};

// Validates `root` (the body, or a WebSocket `response.create` message: its `type` and
// `stream_id` members are ignored) and fills `out`. Returns the first violation, or nullopt.
std::optional<api_error> parse_responses_request(const json::value& root, responses_request& out);

// ---- the response object ----

enum class response_status : uint8_t {
  queued,
  in_progress,
  completed,
  incomplete,
  failed,
  cancelled
};
enum class item_status : uint8_t { in_progress, completed, incomplete };
enum class output_item_type : uint8_t { message, function_call };

struct output_item {
  output_item_type type = output_item_type::message;
  std::string id;  // msg_… or fc_…
  item_status status = item_status::in_progress;
  std::string text;                      // message: its one output_text part
  std::string call_id, name, arguments;  // function_call
};

struct response_object {
  std::string id;  // resp_…
  int64_t created_at = 0;
  std::optional<int64_t> completed_at;
  response_status status = response_status::in_progress;
  response_settings settings;
  std::vector<output_item> output;
  std::optional<usage_counts> usage;
  std::string error_code;         // failed: e.g. "server_error"
  std::string error_message;      // failed
  std::string incomplete_reason;  // incomplete: "max_output_tokens" | "content_filter"
};

void write_response(byte_buffer& out, const response_object& r);
void write_response(json::writer& w, const response_object& r);
// The Responses usage object {input_tokens, input_tokens_details, output_tokens, …}.
void write_responses_usage(json::writer& w, const usage_counts& u);
// A tool_choice value in the Responses form: "none", "auto" (also for unset), "required" or
// {"type":"function","name":…}. raw_json is not looked at: callers that keep it write it.
void write_responses_tool_choice(json::writer& w, const tool_choice_spec& c);
// WebSocket mode's error message: {"type":"error","status":…,"error":{type,code,message,param}}.
void write_responses_ws_error(byte_buffer& out, const api_error& e);

// ---- streaming ----

namespace response_event {
inline constexpr std::string_view created = "response.created";
inline constexpr std::string_view in_progress = "response.in_progress";
inline constexpr std::string_view output_item_added = "response.output_item.added";
inline constexpr std::string_view content_part_added = "response.content_part.added";
inline constexpr std::string_view output_text_delta = "response.output_text.delta";
inline constexpr std::string_view output_text_done = "response.output_text.done";
inline constexpr std::string_view content_part_done = "response.content_part.done";
inline constexpr std::string_view output_item_done = "response.output_item.done";
inline constexpr std::string_view arguments_delta = "response.function_call_arguments.delta";
inline constexpr std::string_view arguments_done = "response.function_call_arguments.done";
inline constexpr std::string_view completed = "response.completed";
inline constexpr std::string_view incomplete = "response.incomplete";
inline constexpr std::string_view failed = "response.failed";
inline constexpr std::string_view error = "error";
}  // namespace response_event

class response_event_writer {
 public:
  // `r` is the response as created (id, created_at, settings); its status becomes in_progress.
  explicit response_event_writer(response_object r);

  void created(byte_buffer& out);
  void in_progress(byte_buffer& out);

  // Adds an assistant message item; returns its output_index.
  size_t begin_message(byte_buffer& out, std::string item_id);
  void content_part_added(byte_buffer& out, size_t output_index);
  void text_delta(byte_buffer& out, size_t output_index, std::string_view delta);
  void text_done(byte_buffer& out, size_t output_index);
  void content_part_done(byte_buffer& out, size_t output_index);

  // Adds a function_call item; returns its output_index.
  size_t begin_function_call(byte_buffer& out, std::string item_id, std::string call_id,
                             std::string name);
  void arguments_delta(byte_buffer& out, size_t output_index, std::string_view delta);
  void arguments_done(byte_buffer& out, size_t output_index);

  // output_item.done for either kind of item.
  void end_item(byte_buffer& out, size_t output_index);

  // Terminal events. Items still open are marked incomplete in the final object.
  void completed(byte_buffer& out, const usage_counts& usage, int64_t completed_at);
  void incomplete(byte_buffer& out, std::string_view reason, const usage_counts& usage);
  void failed(byte_buffer& out, std::string_view code, std::string_view message);
  // {"type":"error","code","message","param","sequence_number"}.
  void error(byte_buffer& out, const api_error& e);

  const response_object& response() const { return r_; }
  uint64_t next_sequence_number() const { return sequence_; }

 private:
  enum class phase : uint8_t { added, part_added, text_done, part_done, args_done, done };

  void open_event(json::writer& w, std::string_view type);
  void write_response_event(byte_buffer& out, std::string_view type);
  void finish_open_items();
  output_item& item(size_t output_index, output_item_type type);

  response_object r_;
  std::vector<phase> phases_;  // parallel to r_.output
  uint64_t sequence_ = 0;
  bool terminal_ = false;
};

}  // namespace rc::openai
