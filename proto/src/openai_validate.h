// Private helpers for validating OpenAI requests (proto/src/openai_*.cc only).
//
// Each reader checks one JSON value against one rule and returns the api_error OpenAI would
// return for a violation (same wording, param path and code), or nullopt. Callers chain them:
//
//   if (auto e = read_number(v, path("temperature"), 0, 2, out.temperature)) return e;
//
// Param paths are built lazily: a `path` is a chain of stack frames (parent pointer + key or
// index) rendered to "messages[1].content[0].type" only when an error is reported, so a valid
// request pays nothing for them. A path must not outlive its parent.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "proto/json_reader.h"
#include "proto/openai_common.h"
#include "proto/openai_errors.h"

namespace rc::openai::detail {

using json::value;
using maybe_error = std::optional<api_error>;

class path {
 public:
  explicit path(std::string_view root) : key_(root) {}
  path key(std::string_view k) const { return path(this, k, -1); }
  path index(size_t i) const { return path(this, {}, static_cast<int64_t>(i)); }
  std::string str() const;

 private:
  path(const path* parent, std::string_view k, int64_t i) : parent_(parent), key_(k), index_(i) {}
  void render(std::string& out) const;

  const path* parent_ = nullptr;
  std::string_view key_;
  int64_t index_ = -1;
};

// True if the member is absent or JSON null: optional parameters treat both as "not given".
inline bool absent(const value& v) {
  return !v || v.is_null();
}

// "a string", "an integer", "a decimal", "a boolean", "an object", "an array", "null".
std::string_view kind_name(const value& v);
// Counts code points (OpenAI's string lengths are in characters).
size_t utf8_length(std::string_view s);

// Error constructors with OpenAI's wording.
api_error missing(const path& p);
api_error wrong_type(const path& p, std::string_view expected, const value& got);
api_error invalid_value(const path& p, std::string_view got,
                        std::initializer_list<std::string_view> supported);
api_error empty_array(const path& p);
api_error array_too_long(const path& p, size_t max, size_t got);
api_error string_too_long(const path& p, size_t max, size_t got);
api_error empty_string(const path& p);
api_error too_many_properties(const path& p, size_t max, size_t got);
api_error pattern_mismatch(const path& p, std::string_view pattern);
// An integer over a bound known only after parsing (e.g. a model's limit), worded as read_int's.
api_error integer_above_max(const path& p, int64_t max, int64_t got);

// Readers. `v` must be present (callers test absent() first for optional fields).
maybe_error read_string(const value& v, const path& p, std::string& out);
maybe_error read_string_view(const value& v, const path& p, std::string_view& out);
maybe_error read_bool(const value& v, const path& p, bool& out);
// Integers; integral decimals such as 2.0 are accepted.
maybe_error read_int(const value& v, const path& p, int64_t min, int64_t max, int64_t& out);
// Decimals; integers are accepted.
maybe_error read_number(const value& v, const path& p, double min, double max, double& out);
// One of `supported`; sets `index` to its position.
maybe_error read_enum(const value& v, const path& p,
                      std::initializer_list<std::string_view> supported, size_t& index);
maybe_error expect_object(const value& v, const path& p);
maybe_error expect_array(const value& v, const path& p);

// Shared field groups.
maybe_error read_metadata(const value& v, const path& p, metadata_pairs& out);
maybe_error read_function_name(const value& v, const path& p, std::string& out);
// Chat's {"type":"function","function":{name, description, parameters, strict}}.
maybe_error read_chat_tool(const value& v, const path& p, function_tool& out);
// {name, description?, format?}: a custom tool (free-text input); flat in Responses, nested in
// `custom` in chat.
maybe_error read_custom_tool(const value& v, const path& p);
// Chat's `tools`: function tools go to `out`; custom tools are validated only.
maybe_error read_chat_tools(const value& v, const path& p, size_t max,
                            std::vector<function_tool>& out);
// Chat's tool_choice: also {"type":"custom","custom":{name}} and
// {"type":"allowed_tools","allowed_tools":{mode, tools}} (kept in raw_json, mode auto_).
maybe_error read_chat_tool_choice(const value& v, const path& p, tool_choice_spec& out);
// Responses' flat {"type":"function", name, description, parameters, strict}.
maybe_error read_responses_tool(const value& v, const path& p, function_tool& out);
// "none" | "auto" | "required" | {"type":"function", ...}: chat nests the name in
// `function`, Responses has it flat.
enum class tool_shape : uint8_t { chat, responses };
maybe_error read_tool_choice(const value& v, const path& p, tool_shape shape,
                             tool_choice_spec& out);
// tool_choice must name a declared tool, and needs tools unless it is none/auto.
maybe_error check_tool_choice(const tool_choice_spec& choice,
                              const std::vector<function_tool>& tools);
// response_format (chat, nested json_schema) or text.format (responses, flat).
maybe_error read_format(const value& v, const path& p, tool_shape shape, format_spec& out);

// Looks `key` up in a fixed table of known member names; returns its index or -1. Callers
// collect members into a slot array (last one wins) and then validate in a fixed order, so
// the reported error does not depend on the order of members in the body.
template <size_t N>
int member_index(const std::string_view (&names)[N], std::string_view key) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == key) return static_cast<int>(i);
  }
  return -1;
}

template <size_t N>
void collect_members(const value& object, const std::string_view (&names)[N], value (&slots)[N]) {
  for (json::member m : object.members()) {
    if (int i = member_index(names, m.key); i >= 0) slots[i] = m.value;
  }
}

}  // namespace rc::openai::detail
