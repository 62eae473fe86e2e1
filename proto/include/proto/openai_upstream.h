// OpenAI-compatible upstreams, the request side: what ringcast sends to an upstream that speaks
// Chat Completions or the Responses API, built from the client's body.
//
// Forwarding (same API on both sides). The client's body is copied byte for byte with only
// `model` replaced by the upstream's name for it (every duplicate `model` member; unknown fields,
// tools, multimodal parts, number spellings and whitespace untouched). A streamed chat request
// also gets `stream_options.include_usage: true` (ringcast needs the token counts); whether the
// client asked for it is reported, so the engine forwards the usage chunk only then.
//
// Translation (the upstream speaks only the other API). responses_to_chat() turns a Responses
// request into a chat request: instructions and earlier turns (`history`, from ringcast's
// response store, for previous_response_id) become messages, input items become messages
// (function_call items become an assistant message's tool_calls, function_call_output items tool
// messages, input_image / input_file / input_audio parts their chat content parts), function tools
// and tool_choice are re-shaped, max_output_tokens becomes max_completion_tokens, text.format
// becomes response_format, reasoning.effort reasoning_effort; the request is always streamed
// with usage (the engine renders whatever the client asked). Hosted tool types (web_search,
// mcp, …) and item types that have no chat equivalent (reasoning, item_reference, …) cannot be
// expressed and are dropped. chat_to_responses() is the reverse: messages become input items
// (system and developer messages keep their role), tools and tool_choice are flattened,
// max_tokens / max_completion_tokens become max_output_tokens (at least 16, the API's minimum),
// response_format becomes text.format, reasoning_effort reasoning.effort; `store` is false, the
// request streamed. `n` > 1 cannot be translated (400); `stop`, `logprobs`, `logit_bias` and
// penalties have no Responses equivalent and are dropped.
//
// Model names in what comes back. rewrite_model() maps `model` back to the client's name in one
// upstream JSON value: a chat chunk or completion (top-level `model`) or a Responses event or
// object (top-level `model`, or the `model` of its `response` member).
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/byte_buffer.h"
#include "proto/json_reader.h"
#include "proto/openai_common.h"
#include "proto/openai_errors.h"

namespace rc::openai {

struct forward_info {
  bool stream = false;         // the body asks for a stream
  bool include_usage = false;  // chat: the client itself asked for stream_options.include_usage
};

// Whether the forwarded request streams as the client asked, or always (the engine decodes the
// stream into typed events for a front that renders something else).
enum class forward_stream : uint8_t { as_sent, always };

// Appends the chat request for the upstream: `body` (a JSON object, already validated) with
// `model` = upstream_model and, when streamed, stream_options.include_usage = true. False if
// `body` is not an object (nothing appended). `info` describes the client's body.
bool build_chat_forward(std::string_view body, std::string_view upstream_model, byte_buffer& out,
                        forward_info& info, forward_stream mode = forward_stream::as_sent);
// The same for a Responses request (only `model` mapped, and `stream` when forced).
bool build_responses_forward(std::string_view body, std::string_view upstream_model,
                             byte_buffer& out, forward_info& info,
                             forward_stream mode = forward_stream::as_sent);

// One earlier turn of a conversation, as ringcast's response store keeps it (text only).
struct history_message {
  message_role role = message_role::user;
  std::string_view text;
};

// Appends the chat request equivalent to the Responses request `root`. Errors (400) name the
// Responses parameter that cannot be translated.
std::optional<api_error> responses_to_chat(const json::value& root,
                                           std::string_view upstream_model,
                                           std::span<const history_message> history,
                                           byte_buffer& out);
// Appends the Responses request equivalent to the chat request `root`.
std::optional<api_error> chat_to_responses(const json::value& root,
                                           std::string_view upstream_model, byte_buffer& out);

// Appends `value_text` with its model name replaced by `client_model` (see above). Text without
// a model member is appended unchanged. False if `value_text` is not a JSON object (nothing
// appended).
bool rewrite_model(std::string_view value_text, std::string_view client_model, byte_buffer& out);

}  // namespace rc::openai
