// OpenAI Chat Completions (POST /v1/chat/completions): request parsing and validation, and the
// chat.completion / chat.completion.chunk encoders.
//
// Parsing: parse_chat_request() validates a request object the way the OpenAI API does and
// fills an owning chat_request. The first violation is returned as an api_error with OpenAI's
// message, param path and code (see openai_errors.h). Policies:
// * unknown top-level members are ignored: gateways and SDKs add vendor extensions
//   (e.g. "top_k", "chat_template_kwargs"), and rejecting them would break those clients;
// * optional members that are JSON null count as absent, as in the OpenAI API;
// * duplicate members: the last one wins (see json_reader.h);
// * errors are reported in a fixed order (model, messages, then the remaining parameters),
//   independent of the order of members in the body;
// * max_tokens / max_completion_tokens: if both are given, max_completion_tokens (the current
//   name) wins; check_completion_tokens() compares the value with the model's limit once the
//   caller has resolved the model.
// * message content arrays: text parts are concatenated in order (no separator); image,
//   audio and file parts are accepted and only counted (`media_parts`).
//
// Encoding: every function appends exactly one JSON value (no SSE framing, no newlines) to
// the caller's byte_buffer. A chat_chunk_writer pre-encodes the members every chunk of one
// stream repeats (id, object, created, model, service_tier, system_fingerprint), so a content
// delta costs a memcpy plus the escaped delta.
//
// Thread-safety: pure functions; a chat_chunk_writer is immutable after construction.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/byte_buffer.h"
#include "proto/json_reader.h"
#include "proto/openai_common.h"
#include "proto/openai_errors.h"

namespace rc::openai {

struct tool_call {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text as produced by the model (a string, not parsed)
};

struct chat_message {
  message_role role = message_role::user;
  std::string content;        // text parts concatenated
  bool content_null = false;  // content was null or absent (assistant with tool_calls)
  uint32_t media_parts = 0;   // image_url / input_audio / file parts, counted only
  std::string name;
  std::string tool_call_id;           // role tool
  std::vector<tool_call> tool_calls;  // role assistant
};

enum class max_tokens_param : uint8_t { none, max_tokens, max_completion_tokens };

// Upper bounds on what a client may ask for (OpenAI's): a longer array is a 400 naming it.
inline constexpr size_t chat_messages_max = 2048;
inline constexpr size_t chat_choices_max = 128;  // n
inline constexpr size_t chat_stop_max = 4;
inline constexpr size_t chat_tools_max = 128;
inline constexpr size_t chat_logit_bias_max = 300;  // tokens in logit_bias

struct chat_request {
  std::string model;
  std::vector<chat_message> messages;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  uint32_t n = 1;
  std::optional<int64_t> max_tokens;  // >= 1
  max_tokens_param max_tokens_source = max_tokens_param::none;
  std::optional<double> temperature;        // [0, 2]
  std::optional<double> top_p;              // [0, 1]
  std::optional<double> presence_penalty;   // [-2, 2]
  std::optional<double> frequency_penalty;  // [-2, 2]
  std::vector<std::string> stop;            // <= 4
  std::optional<int64_t> seed;
  std::string user;
  std::vector<function_tool> tools;  // <= 128
  tool_choice_spec tool_choice;
  std::optional<bool> parallel_tool_calls;
  format_spec response_format;
  bool logprobs = false;
  std::optional<uint32_t> top_logprobs;  // [0, 20]
  metadata_pairs metadata;
  std::optional<bool> store;
  std::vector<std::pair<int64_t, double>> logit_bias;  // token id -> bias in [-100, 100]
};

// Validates `root` (a JSON object: an HTTP body, or the payload of a WebSocket action) and
// fills `out`. Returns the first violation, or nullopt on success.
std::optional<api_error> parse_chat_request(const json::value& root, chat_request& out);

// OpenAI's "max_tokens is too large: N. This model supports at most M completion tokens,
// whereas you provided N." (naming whichever parameter the client used); nullopt if the
// request sets no limit or one within `model_completion_tokens_max`.
std::optional<api_error> check_completion_tokens(const chat_request& req,
                                                 uint64_t model_completion_tokens_max);

// ---- encoding ----

// What every chat.completion and chat.completion.chunk of one request repeats.
struct completion_header {
  std::string id;  // chatcmpl-…
  int64_t created = 0;
  std::string model;
  std::string system_fingerprint;        // empty: written as null
  std::string service_tier = "default";  // empty: omitted
};

struct chat_choice {
  uint32_t index = 0;
  std::string_view content;
  std::span<const tool_call> tool_calls;  // non-empty: content is written as null if empty
  finish_reason finish = finish_reason::stop;
};

// The non-streaming chat.completion object.
void write_chat_completion(byte_buffer& out, const completion_header& h,
                           std::span<const chat_choice> choices, const usage_counts& usage);

enum class usage_chunk : uint8_t { off, on };  // stream_options.include_usage

class chat_chunk_writer {
 public:
  chat_chunk_writer(const completion_header& h, usage_chunk usage);

  // delta {"role":"assistant","content":""}: the first chunk of each choice.
  void role(byte_buffer& out, uint32_t choice) const;
  // delta {"content":"…"}.
  void content(byte_buffer& out, uint32_t choice, std::string_view delta) const;
  // delta {"tool_calls":[{"index","id","type":"function","function":{"name","arguments":""}}]}:
  // the first chunk of one tool call.
  void tool_call_begin(byte_buffer& out, uint32_t choice, uint32_t tool_index,
                       std::string_view call_id, std::string_view name) const;
  // delta {"tool_calls":[{"index","function":{"arguments":"<fragment>"}}]}.
  void tool_call_arguments(byte_buffer& out, uint32_t choice, uint32_t tool_index,
                           std::string_view fragment) const;
  // delta {} with finish_reason.
  void finish(byte_buffer& out, uint32_t choice, finish_reason reason) const;
  // choices [] with usage. REQUIRES: constructed with usage_chunk::on.
  void usage(byte_buffer& out, const usage_counts& u) const;

 private:
  void open_choice(byte_buffer& out, uint32_t choice) const;
  void close_choice(byte_buffer& out, std::string_view finish_reason_json) const;

  std::string prefix_;  // {"id":…,"choices":[{"index":
  std::string tail_;    // ]} or ],"usage":null}
  usage_chunk usage_;
};

// The usage object of chat completions (prompt/completion tokens and details).
void write_chat_usage(json::writer& w, const usage_counts& u);

}  // namespace rc::openai
