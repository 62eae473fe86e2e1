// Responses API request validation; see openai_responses.h for the policies.
#include <string>

#include "openai_validate.h"
#include "proto/openai_responses.h"

namespace rc::openai {

using namespace detail;

namespace {

constexpr size_t tools_max = responses_tools_max;
constexpr int64_t max_output_tokens_min = 16;

// Content parts of a message item. Text-bearing parts are concatenated; media parts counted.
maybe_error read_input_part(const value& part, const path& p, input_item& out) {
  if (auto e = expect_object(part, p)) return e;
  value type = part.find("type");
  path tp = p.key("type");
  if (absent(type)) return missing(tp);
  size_t i = 0;
  if (auto e = read_enum(
          type, tp,
          {"input_text", "output_text", "refusal", "input_image", "input_file", "input_audio"},
          i)) {
    return e;
  }
  if (i <= 2) {
    std::string_view member = i == 2 ? "refusal" : "text";
    value text = part.find(member);
    if (absent(text)) return missing(p.key(member));
    std::string_view s;
    if (auto e = read_string_view(text, p.key(member), s)) return e;
    if (i != 2) out.text.append(s);
    return std::nullopt;
  }
  ++out.media_parts;
  return std::nullopt;
}

maybe_error read_message_item(const value& v, const path& p, input_item& out) {
  out.type = input_item_type::message;
  value role = v.find("role");
  if (absent(role)) return missing(p.key("role"));
  size_t r = 0;
  if (auto e = read_enum(role, p.key("role"), {"user", "assistant", "system", "developer"}, r)) {
    return e;
  }
  static constexpr message_role roles[] = {message_role::user, message_role::assistant,
                                           message_role::system, message_role::developer};
  out.role = roles[r];
  value content = v.find("content");
  path cp = p.key("content");
  if (absent(content)) return missing(cp);
  if (content.is_string()) {
    out.text.assign(content.get_string());
    return std::nullopt;
  }
  if (!content.is_array()) return wrong_type(cp, "one of a string or array of objects", content);
  size_t i = 0;
  for (value part : content.elements()) {
    if (auto e = read_input_part(part, cp.index(i++), out)) return e;
  }
  return std::nullopt;
}

maybe_error read_required_string(const value& obj, const path& p, std::string_view name,
                                 std::string& out) {
  value v = obj.find(name);
  if (absent(v)) return missing(p.key(name));
  return read_string(v, p.key(name), out);
}

// function_call_output.output: a string, or (newer clients) an array of input_text parts.
maybe_error read_call_output(const value& obj, const path& p, input_item& out) {
  value v = obj.find("output");
  path op = p.key("output");
  if (absent(v)) return missing(op);
  if (v.is_string()) {
    out.output.assign(v.get_string());
    return std::nullopt;
  }
  if (!v.is_array()) return wrong_type(op, "one of a string or array of objects", v);
  input_item parts;
  size_t i = 0;
  for (value part : v.elements()) {
    if (auto e = read_input_part(part, op.index(i++), parts)) return e;
  }
  out.output = std::move(parts.text);
  return std::nullopt;
}

maybe_error read_input_item(const value& v, const path& p, input_item& out) {
  if (auto e = expect_object(v, p)) return e;
  value type = v.find("type");
  if (absent(type)) return read_message_item(v, p, out);  // EasyInputMessage: {role, content}
  size_t t = 0;
  if (auto e =
          read_enum(type, p.key("type"), {"message", "function_call", "function_call_output"}, t)) {
    return e;
  }
  value id = v.find("id");
  if (!absent(id)) {
    if (auto e = read_string(id, p.key("id"), out.id)) return e;
  }
  if (t == 0) return read_message_item(v, p, out);
  if (auto e = read_required_string(v, p, "call_id", out.call_id)) return e;
  if (t == 1) {
    out.type = input_item_type::function_call;
    if (auto e = read_required_string(v, p, "name", out.name)) return e;
    return read_required_string(v, p, "arguments", out.arguments);
  }
  out.type = input_item_type::function_call_output;
  return read_call_output(v, p, out);
}

maybe_error read_input(const value& v, responses_request& out) {
  path p("input");
  if (v.is_string()) {
    input_item item;
    item.text.assign(v.get_string());
    out.input.push_back(std::move(item));
    out.input_was_string = true;
    return std::nullopt;
  }
  if (!v.is_array()) return wrong_type(p, "one of a string or array of objects", v);
  if (size_t n = v.size(); n > responses_input_items_max) {
    return array_too_long(p, responses_input_items_max, n);
  }
  size_t i = 0;
  for (value item : v.elements()) {
    input_item parsed;
    if (auto e = read_input_item(item, p.index(i++), parsed)) return e;
    out.input.push_back(std::move(parsed));
  }
  return std::nullopt;
}

constexpr std::string_view member_names[] = {
    "model",        "input",
    "instructions", "previous_response_id",
    "stream",       "max_output_tokens",
    "temperature",  "top_p",
    "tools",        "tool_choice",
    "store",        "metadata",
    "user",         "parallel_tool_calls",
    "text",         "truncation",
};
enum member_slot {
  m_model,
  m_input,
  m_instructions,
  m_previous_response_id,
  m_stream,
  m_max_output_tokens,
  m_temperature,
  m_top_p,
  m_tools,
  m_tool_choice,
  m_store,
  m_metadata,
  m_user,
  m_parallel_tool_calls,
  m_text,
  m_truncation,
  m_count
};
static_assert(std::size(member_names) == m_count);

maybe_error read_generation(const value (&s)[m_count], responses_request& out) {
  response_settings& st = out.settings;
  if (!absent(s[m_instructions])) {
    std::string instructions;
    if (auto e = read_string(s[m_instructions], path("instructions"), instructions)) return e;
    st.instructions = std::move(instructions);
  }
  if (!absent(s[m_previous_response_id])) {
    path p("previous_response_id");
    if (auto e = read_string(s[m_previous_response_id], p, st.previous_response_id)) return e;
    if (st.previous_response_id.empty()) return empty_string(p);
  }
  if (!absent(s[m_stream])) {
    if (auto e = read_bool(s[m_stream], path("stream"), out.stream)) return e;
  }
  if (!absent(s[m_max_output_tokens])) {
    int64_t v = 0;
    if (auto e = read_int(s[m_max_output_tokens], path("max_output_tokens"), max_output_tokens_min,
                          INT64_MAX, v)) {
      return e;
    }
    st.max_output_tokens = v;
  }
  if (!absent(s[m_temperature])) {
    if (auto e = read_number(s[m_temperature], path("temperature"), 0, 2, st.temperature)) return e;
  }
  if (!absent(s[m_top_p])) {
    if (auto e = read_number(s[m_top_p], path("top_p"), 0, 1, st.top_p)) return e;
  }
  if (!absent(s[m_truncation])) {
    size_t t = 0;
    if (auto e = read_enum(s[m_truncation], path("truncation"), {"auto", "disabled"}, t)) return e;
    st.truncation = t == 0 ? truncation_mode::auto_ : truncation_mode::disabled;
  }
  return std::nullopt;
}

maybe_error read_tooling(const value (&s)[m_count], response_settings& st) {
  if (!absent(s[m_tools])) {
    path p("tools");
    if (auto e = expect_array(s[m_tools], p)) return e;
    if (size_t n = s[m_tools].size(); n > tools_max) return array_too_long(p, tools_max, n);
    size_t i = 0;
    for (value t : s[m_tools].elements()) {
      function_tool tool;
      if (auto e = read_responses_tool(t, p.index(i++), tool)) return e;
      st.tools.push_back(std::move(tool));
    }
  }
  if (!absent(s[m_tool_choice])) {
    if (auto e = read_tool_choice(s[m_tool_choice], path("tool_choice"), tool_shape::responses,
                                  st.tool_choice)) {
      return e;
    }
    if (auto e = check_tool_choice(st.tool_choice, st.tools)) return e;
  }
  if (!absent(s[m_parallel_tool_calls])) {
    if (auto e = read_bool(s[m_parallel_tool_calls], path("parallel_tool_calls"),
                           st.parallel_tool_calls)) {
      return e;
    }
  }
  if (!absent(s[m_text])) {
    path p("text");
    if (auto e = expect_object(s[m_text], p)) return e;
    value format = s[m_text].find("format");
    if (!absent(format)) {
      return read_format(format, p.key("format"), tool_shape::responses, st.text_format);
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<api_error> parse_responses_request(const json::value& root, responses_request& out) {
  out = responses_request{};
  if (!root.is_object()) return body_not_object(root.kind());
  value s[m_count];
  collect_members(root, member_names, s);
  response_settings& st = out.settings;

  if (absent(s[m_model])) return missing(path("model"));
  if (auto e = read_string(s[m_model], path("model"), st.model)) return e;
  if (!absent(s[m_input])) {
    if (auto e = read_input(s[m_input], out)) return e;
  } else if (absent(s[m_previous_response_id])) {
    return missing(path("input"));
  }
  if (auto e = read_generation(s, out)) return e;
  if (auto e = read_tooling(s, st)) return e;
  if (!absent(s[m_store])) {
    if (auto e = read_bool(s[m_store], path("store"), st.store)) return e;
  }
  if (!absent(s[m_user])) {
    if (auto e = read_string(s[m_user], path("user"), st.user)) return e;
  }
  if (!absent(s[m_metadata])) {
    if (auto e = read_metadata(s[m_metadata], path("metadata"), st.metadata)) return e;
  }
  return std::nullopt;
}

}  // namespace rc::openai
