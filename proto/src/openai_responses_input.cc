// Responses API request validation: the `input` items. See openai_responses.h for the policies.
#include <string>

#include "openai_responses_detail.h"
#include "openai_validate.h"

namespace rc::openai::detail {

namespace {

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

// A tool output: a string, or (newer clients) an array of input_text / media parts.
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

// Item types beyond messages and calls: what each requires (beyond `type`), as the API does.
// `reasoning` items come back from earlier turns (with encrypted_content when store is false);
// the others are tool calls and outputs of hosted or client-side tools, references to stored
// items, and compaction summaries.
enum class need : uint8_t { string, object, array };
struct member_rule {
  std::string_view name;
  need kind;
};
struct item_rule {
  std::string_view type;
  member_rule required[2];
};
constexpr item_rule other_items[] = {
    {"reasoning", {{"summary", need::array}, {}}},
    {"local_shell_call", {{"call_id", need::string}, {"action", need::object}}},
    {"local_shell_call_output", {{"output", need::string}, {}}},
    {"shell_call", {{"call_id", need::string}, {"action", need::object}}},
    {"shell_call_output", {{"call_id", need::string}, {"output", need::array}}},
    {"apply_patch_call", {{"call_id", need::string}, {"operation", need::object}}},
    {"apply_patch_call_output", {{"call_id", need::string}, {}}},
    {"item_reference", {{"id", need::string}, {}}},
    {"web_search_call", {}},
    {"file_search_call", {}},
    {"computer_call", {{"call_id", need::string}, {"action", need::object}}},
    {"computer_call_output", {{"call_id", need::string}, {"output", need::object}}},
    {"image_generation_call", {}},
    {"code_interpreter_call", {}},
    {"mcp_list_tools", {{"server_label", need::string}, {}}},
    {"mcp_approval_request", {{"server_label", need::string}, {"name", need::string}}},
    {"mcp_approval_response", {{"approval_request_id", need::string}, {}}},
    {"mcp_call", {{"server_label", need::string}, {"name", need::string}}},
    {"compaction", {}},
    {"tool_search_call", {}},
    {"tool_search_output", {}},
};

maybe_error check_member(const value& obj, const path& p, const member_rule& m) {
  value v = obj.find(m.name);
  path mp = p.key(m.name);
  if (absent(v)) return missing(mp);
  switch (m.kind) {
    case need::string:
      if (!v.is_string()) return wrong_type(mp, "a string", v);
      break;
    case need::object:
      return expect_object(v, mp);
    case need::array:
      return expect_array(v, mp);
  }
  return std::nullopt;
}

maybe_error read_other_item(const value& v, const path& p, const item_rule& rule,
                            input_item& out) {
  out.type = input_item_type::other;
  out.type_name = rule.type;
  for (const member_rule& m : rule.required) {
    if (m.name.empty()) break;
    if (auto e = check_member(v, p, m)) return e;
  }
  out.raw_json = v.to_json();
  // What a text-only engine can use of it: a local shell call and its output.
  if (rule.type == "local_shell_call") {
    out.role = message_role::assistant;
    out.text = "local_shell(" + v.find("action").to_json() + ")";
  } else if (rule.type == "local_shell_call_output") {
    out.role = message_role::tool;
    out.text.assign(v.find("output").get_string());
  }
  return std::nullopt;
}

maybe_error read_input_item(const value& v, const path& p, input_item& out) {
  if (auto e = expect_object(v, p)) return e;
  value type = v.find("type");
  if (absent(type)) return read_message_item(v, p, out);  // EasyInputMessage: {role, content}
  path tp = p.key("type");
  if (!type.is_string()) return wrong_type(tp, "a string", type);
  std::string_view name = type.get_string();
  const item_rule* other = nullptr;
  for (const item_rule& r : other_items) {
    if (r.type == name) other = &r;
  }
  size_t t = 0;  // the first five are parsed here; the error lists the common others too
  if (!other) {
    if (auto e = read_enum(type, tp,
                           {"message", "function_call", "function_call_output", "custom_tool_call",
                            "custom_tool_call_output", "reasoning", "local_shell_call",
                            "local_shell_call_output", "item_reference"},
                           t)) {
      return e;
    }
  }
  value id = v.find("id");
  if (!absent(id)) {
    if (auto e = read_string(id, p.key("id"), out.id)) return e;
  }
  if (other) return read_other_item(v, p, *other, out);
  if (t == 0) return read_message_item(v, p, out);
  if (auto e = read_required_string(v, p, "call_id", out.call_id)) return e;
  switch (t) {
    case 1: {
      out.type = input_item_type::function_call;
      if (auto e = read_required_string(v, p, "name", out.name)) return e;
      if (value ns = v.find("namespace"); !absent(ns)) {
        if (auto e = read_string(ns, p.key("namespace"), out.tool_namespace)) return e;
      }
      return read_required_string(v, p, "arguments", out.arguments);
    }
    case 2:
      out.type = input_item_type::function_call_output;
      return read_call_output(v, p, out);
    case 3:
      out.type = input_item_type::custom_tool_call;
      if (auto e = read_required_string(v, p, "name", out.name)) return e;
      return read_required_string(v, p, "input", out.arguments);
    default:
      out.type = input_item_type::custom_tool_call_output;
      return read_call_output(v, p, out);
  }
}

}  // namespace

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

}  // namespace rc::openai::detail
