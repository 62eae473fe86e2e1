// Vocabulary shared by the OpenAI chat, responses and embeddings codecs: token usage, finish
// reasons, message roles, function tools, tool choice, structured-output formats, metadata,
// and the entry point that turns a request body into a parsed JSON object.
//
// Request structs own their strings (std::string): the engine runs after the network buffer
// and the parser's document are gone.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/json_reader.h"
#include "proto/openai_errors.h"

namespace rc::openai {

// Token counts of one generation. Chat calls them prompt/completion tokens, Responses
// input/output tokens; the totals are derived when written.
struct usage_counts {
  uint64_t input_tokens = 0;
  uint64_t output_tokens = 0;
  uint64_t cached_tokens = 0;     // part of input_tokens served from a prompt cache
  uint64_t reasoning_tokens = 0;  // part of output_tokens spent on hidden reasoning
};

enum class finish_reason : uint8_t { stop, length, tool_calls, content_filter };
std::string_view to_string(finish_reason r);

enum class message_role : uint8_t { system, developer, user, assistant, tool, function };
std::string_view to_string(message_role r);

// Object properties a tool's parameter schema may declare in total (OpenAI's limit for
// schemas): engines such as the mock build arguments from them.
inline constexpr size_t tool_schema_properties_max = 5000;

// A function the model may call. `parameters_json` is the client's JSON Schema re-encoded
// compactly (empty when the client sent none); it is passed on, never interpreted.
struct function_tool {
  std::string name;
  std::string description;
  std::string parameters_json;
  std::optional<bool> strict;
};

enum class tool_choice_mode : uint8_t { unset, none, auto_, required, function };
struct tool_choice_spec {
  tool_choice_mode mode = tool_choice_mode::unset;
  std::string function_name;  // when mode == function
  // A choice of another kind (custom, allowed_tools, mcp, a hosted tool such as web_search),
  // re-encoded as sent: mode is then auto_ (engines that cannot honour it choose freely), and
  // the Responses object echoes it.
  std::string raw_json;
};

// response_format (chat) / text.format (responses).
enum class output_format : uint8_t { text, json_object, json_schema };
struct format_spec {
  output_format type = output_format::text;
  std::string name;         // json_schema only
  std::string schema_json;  // json_schema only: the schema, re-encoded; may be empty
  std::optional<bool> strict;
  // The whole format object as the client sent it, re-encoded (empty when absent); echoed by
  // the Responses API in `text.format`.
  std::string raw_json;
};

// Up to 16 string pairs (keys <= 64, values <= 512 characters), in the client's order.
using metadata_pairs = std::vector<std::pair<std::string, std::string>>;

// Parses a request body and checks that it is a JSON object. On success `root` refers into
// `parser`'s document (valid until its next parse). Errors: invalid_json / body_not_object.
std::optional<api_error> parse_json_body(json::parser& parser, const char* data, size_t size,
                                         size_t capacity, json::value& root);

}  // namespace rc::openai
