// Responses API request validation: `tools` of every type and `tool_choice`. See
// openai_responses.h for the policies.
#include <string>

#include "openai_responses_detail.h"
#include "openai_validate.h"

namespace rc::openai::detail {

namespace {

enum class need : uint8_t { string, integer, array, string_or_object };
struct member_rule {
  std::string_view name;
  need kind;
};
// Hosted and client-side tools: what each requires beyond `type`, as the API does. Types not
// listed (web_search, web_search_preview and their dated variants, image_generation,
// local_shell, shell, apply_patch, computer, types added later) need nothing more here.
struct tool_rule {
  std::string_view type;
  member_rule required[3];
};
constexpr tool_rule hosted_tools[] = {
    {"file_search", {{"vector_store_ids", need::array}, {}, {}}},
    {"code_interpreter", {{"container", need::string_or_object}, {}, {}}},
    {"computer_use_preview",
     {{"display_width", need::integer}, {"display_height", need::integer},
      {"environment", need::string}}},
    {"mcp", {{"server_label", need::string}, {}, {}}},
};

maybe_error check_member(const value& obj, const path& p, const member_rule& m) {
  value v = obj.find(m.name);
  path mp = p.key(m.name);
  if (absent(v)) return missing(mp);
  switch (m.kind) {
    case need::string:
      if (!v.is_string()) return wrong_type(mp, "a string", v);
      break;
    case need::integer:
      if (v.kind() != json::kind::int64 && v.kind() != json::kind::uint64)
        return wrong_type(mp, "an integer", v);
      break;
    case need::array:
      return expect_array(v, mp);
    case need::string_or_object:
      if (!v.is_string() && !v.is_object()) return wrong_type(mp, "one of a string or object", v);
      break;
  }
  return std::nullopt;
}

maybe_error read_optional_string(const value& obj, const path& p, std::string_view name) {
  value v = obj.find(name);
  if (absent(v) || v.is_string()) return std::nullopt;
  return wrong_type(p.key(name), "a string", v);
}

maybe_error read_type(const value& v, const path& p, std::string_view& type) {
  if (auto e = expect_object(v, p)) return e;
  value t = v.find("type");
  if (absent(t)) return missing(p.key("type"));
  return read_string_view(t, p.key("type"), type);
}

// {"type":"namespace", name, description, tools: [function | custom]}: functions grouped under
// a name (the model's calls carry it as `namespace`).
maybe_error read_namespace_tool(const value& v, const path& p) {
  value name = v.find("name");
  if (absent(name)) return missing(p.key("name"));
  std::string ignored;
  if (auto e = read_string(name, p.key("name"), ignored)) return e;
  if (ignored.empty()) return empty_string(p.key("name"));
  if (auto e = read_optional_string(v, p, "description")) return e;
  value tools = v.find("tools");
  path tp = p.key("tools");
  if (absent(tools)) return missing(tp);
  if (auto e = expect_array(tools, tp)) return e;
  size_t i = 0;
  for (value t : tools.elements()) {
    path ip = tp.index(i++);
    std::string_view type;
    if (auto e = read_type(t, ip, type)) return e;
    if (type == "custom") {
      if (auto e = read_custom_tool(t, ip)) return e;
      continue;
    }
    function_tool f;  // validated, not callable by engines that only know flat functions
    if (auto e = read_responses_tool(t, ip, f)) return e;
  }
  return std::nullopt;
}

}  // namespace

maybe_error read_responses_tool_entry(const value& v, const path& p, response_settings& st) {
  std::string_view type;
  if (auto e = read_type(v, p, type)) return e;
  if (type == "function") {
    function_tool tool;
    if (auto e = read_responses_tool(v, p, tool)) return e;
    st.tools.push_back(std::move(tool));
    st.tool_entries.emplace_back();
    return std::nullopt;
  }
  if (type.empty()) return empty_string(p.key("type"));
  if (type == "namespace") {
    if (auto e = read_namespace_tool(v, p)) return e;
  } else if (type == "custom") {
    if (auto e = read_custom_tool(v, p)) return e;
  } else {
    for (const tool_rule& r : hosted_tools) {
      if (r.type != type) continue;
      for (const member_rule& m : r.required) {
        if (m.name.empty()) break;
        if (auto e = check_member(v, p, m)) return e;
      }
    }
  }
  st.tool_entries.push_back(v.to_json());
  return std::nullopt;
}

maybe_error read_responses_tool_choice(const value& v, const path& p, tool_choice_spec& out) {
  if (!v.is_object()) return read_tool_choice(v, p, tool_shape::responses, out);
  std::string_view type;
  if (auto e = read_type(v, p, type)) return e;
  if (type == "function") return read_tool_choice(v, p, tool_shape::responses, out);
  if (type.empty()) return empty_string(p.key("type"));
  if (type == "custom") {
    value name = v.find("name");
    if (absent(name)) return missing(p.key("name"));
    if (!name.is_string()) return wrong_type(p.key("name"), "a string", name);
  } else if (type == "mcp") {
    if (auto e = check_member(v, p, {"server_label", need::string})) return e;
  } else if (type == "allowed_tools") {
    value mode = v.find("mode");
    if (absent(mode)) return missing(p.key("mode"));
    size_t i = 0;
    if (auto e = read_enum(mode, p.key("mode"), {"auto", "required"}, i)) return e;
    if (auto e = check_member(v, p, {"tools", need::array})) return e;
  }
  out.mode = tool_choice_mode::auto_;
  out.raw_json = v.to_json();
  return std::nullopt;
}

}  // namespace rc::openai::detail
