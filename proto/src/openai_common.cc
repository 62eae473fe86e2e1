// Shared OpenAI field groups: tools, tool_choice, structured-output formats, the body entry
// point and the enum spellings.
#include "proto/openai_common.h"

#include "openai_validate.h"

namespace rc::openai {

using namespace detail;

std::string_view to_string(finish_reason r) {
  switch (r) {
    case finish_reason::stop:
      return "stop";
    case finish_reason::length:
      return "length";
    case finish_reason::tool_calls:
      return "tool_calls";
    case finish_reason::content_filter:
      return "content_filter";
  }
  return "stop";
}

std::string_view to_string(message_role r) {
  switch (r) {
    case message_role::system:
      return "system";
    case message_role::developer:
      return "developer";
    case message_role::user:
      return "user";
    case message_role::assistant:
      return "assistant";
    case message_role::tool:
      return "tool";
    case message_role::function:
      return "function";
  }
  return "user";
}

std::optional<api_error> parse_json_body(json::parser& parser, const char* data, size_t size,
                                         size_t capacity, json::value& root) {
  json::parse_result r = parser.parse(data, size, capacity);
  if (!r.ok()) return invalid_json(r.status, r.message);
  if (!r.root.is_object()) return body_not_object(r.root.kind());
  root = r.root;
  return std::nullopt;
}

namespace detail {
namespace {

// Properties declared anywhere in a JSON Schema (members of every `properties` object), as
// OpenAI counts them for its limit. Stops counting past `limit`. Recursion depth is bounded by
// the JSON parser's depth limit.
size_t schema_properties(const value& v, size_t limit, size_t counted = 0) {
  if (v.is_array()) {
    for (value e : v.elements()) {
      counted = schema_properties(e, limit, counted);
      if (counted > limit) return counted;
    }
  } else if (v.is_object()) {
    for (json::member m : v.members()) {
      if (m.key == "properties" && m.value.is_object()) counted += m.value.size();
      if (counted > limit) return counted;
      counted = schema_properties(m.value, limit, counted);
      if (counted > limit) return counted;
    }
  }
  return counted;
}

// name, description, parameters, strict: the same members in both tool shapes.
maybe_error read_function_fields(const value& name, const value& description,
                                 const value& parameters, const value& strict, const path& p,
                                 function_tool& out) {
  if (absent(name)) return missing(p.key("name"));
  if (auto e = read_function_name(name, p.key("name"), out.name)) return e;
  if (!absent(description)) {
    if (auto e = read_string(description, p.key("description"), out.description)) return e;
  }
  if (!absent(parameters)) {
    path pp = p.key("parameters");
    if (auto e = expect_object(parameters, pp)) return e;
    if (size_t n = schema_properties(parameters, tool_schema_properties_max);
        n > tool_schema_properties_max) {
      return invalid_request("Invalid '" + pp.str() + "': the schema declares more than " +
                                 std::to_string(tool_schema_properties_max) +
                                 " object properties in total.",
                             pp.str(), "object_above_max_properties");
    }
    out.parameters_json = parameters.to_json();
  }
  if (!absent(strict)) {
    bool b = false;
    if (auto e = read_bool(strict, p.key("strict"), b)) return e;
    out.strict = b;
  }
  return std::nullopt;
}

maybe_error read_tool_type(const value& type, const path& p) {
  if (absent(type)) return missing(p.key("type"));
  size_t i = 0;
  return read_enum(type, p.key("type"), {"function"}, i);
}

}  // namespace

maybe_error read_chat_tool(const value& v, const path& p, function_tool& out) {
  if (auto e = expect_object(v, p)) return e;
  static constexpr std::string_view names[] = {"type", "function"};
  value slots[2];
  collect_members(v, names, slots);
  if (auto e = read_tool_type(slots[0], p)) return e;
  path fp = p.key("function");
  if (absent(slots[1])) return missing(fp);
  if (auto e = expect_object(slots[1], fp)) return e;
  static constexpr std::string_view fn_names[] = {"name", "description", "parameters", "strict"};
  value f[4];
  collect_members(slots[1], fn_names, f);
  return read_function_fields(f[0], f[1], f[2], f[3], fp, out);
}

maybe_error read_responses_tool(const value& v, const path& p, function_tool& out) {
  if (auto e = expect_object(v, p)) return e;
  static constexpr std::string_view names[] = {"type", "name", "description", "parameters",
                                               "strict"};
  value s[5];
  collect_members(v, names, s);
  if (auto e = read_tool_type(s[0], p)) return e;
  return read_function_fields(s[1], s[2], s[3], s[4], p, out);
}

maybe_error read_custom_tool(const value& v, const path& p) {
  value name = v.find("name");
  if (absent(name)) return missing(p.key("name"));
  std::string ignored;
  if (auto e = read_function_name(name, p.key("name"), ignored)) return e;
  if (value d = v.find("description"); !absent(d) && !d.is_string()) {
    return wrong_type(p.key("description"), "a string", d);
  }
  value format = v.find("format");
  if (absent(format)) return std::nullopt;
  path fp = p.key("format");
  if (auto e = expect_object(format, fp)) return e;
  value type = format.find("type");
  if (absent(type)) return missing(fp.key("type"));
  size_t i = 0;
  return read_enum(type, fp.key("type"), {"text", "grammar"}, i);
}

maybe_error read_chat_tools(const value& v, const path& p, size_t max,
                            std::vector<function_tool>& out) {
  if (auto e = expect_array(v, p)) return e;
  if (size_t n = v.size(); n > max) return array_too_long(p, max, n);
  size_t i = 0;
  for (value t : v.elements()) {
    path tp = p.index(i++);
    if (t.is_object()) {
      if (value type = t.find("type"); type && type.is_string() && type.get_string() == "custom") {
        path cp = tp.key("custom");
        value custom = t.find("custom");
        if (absent(custom)) return missing(cp);
        if (auto e = expect_object(custom, cp)) return e;
        if (auto e = read_custom_tool(custom, cp)) return e;
        continue;
      }
    }
    function_tool tool;
    if (auto e = read_chat_tool(t, tp, tool)) return e;
    out.push_back(std::move(tool));
  }
  return std::nullopt;
}

maybe_error read_chat_tool_choice(const value& v, const path& p, tool_choice_spec& out) {
  value type = v.is_object() ? v.find("type") : value();
  if (!type || !type.is_string() || type.get_string() == "function") {
    return read_tool_choice(v, p, tool_shape::chat, out);
  }
  std::string_view t = type.get_string();
  if (t == "custom") {  // {"type":"custom","custom":{"name"}}
    path cp = p.key("custom");
    value custom = v.find("custom");
    if (absent(custom)) return missing(cp);
    if (auto e = expect_object(custom, cp)) return e;
    value name = custom.find("name");
    if (absent(name)) return missing(cp.key("name"));
    if (!name.is_string()) return wrong_type(cp.key("name"), "a string", name);
  } else if (t == "allowed_tools") {  // {"type":"allowed_tools","allowed_tools":{mode, tools}}
    path ap = p.key("allowed_tools");
    value allowed = v.find("allowed_tools");
    if (absent(allowed)) return missing(ap);
    if (auto e = expect_object(allowed, ap)) return e;
    value mode = allowed.find("mode");
    if (absent(mode)) return missing(ap.key("mode"));
    size_t i = 0;
    if (auto e = read_enum(mode, ap.key("mode"), {"auto", "required"}, i)) return e;
    value tools = allowed.find("tools");
    if (absent(tools)) return missing(ap.key("tools"));
    if (auto e = expect_array(tools, ap.key("tools"))) return e;
  } else {
    size_t i = 0;
    return read_enum(type, p.key("type"), {"function", "custom", "allowed_tools"}, i);
  }
  out.mode = tool_choice_mode::auto_;
  out.raw_json = v.to_json();
  return std::nullopt;
}

maybe_error read_tool_choice(const value& v, const path& p, tool_shape shape,
                             tool_choice_spec& out) {
  if (v.is_string()) {
    size_t i = 0;
    if (auto e = read_enum(v, p, {"none", "auto", "required"}, i)) return e;
    static constexpr tool_choice_mode modes[] = {tool_choice_mode::none, tool_choice_mode::auto_,
                                                 tool_choice_mode::required};
    out.mode = modes[i];
    return std::nullopt;
  }
  if (!v.is_object()) return wrong_type(p, "one of a string or object", v);
  if (auto e = read_tool_type(v.find("type"), p)) return e;
  // Chat nests the name in `function` ({"type":"function","function":{"name":…}}); Responses
  // has it next to `type`.
  value holder = v;
  path fp = p.key("function");
  const path& hp = shape == tool_shape::chat ? fp : p;
  if (shape == tool_shape::chat) {
    holder = v.find("function");
    if (absent(holder)) return missing(fp);
    if (auto e = expect_object(holder, fp)) return e;
  }
  value name = holder.find("name");
  if (absent(name)) return missing(hp.key("name"));
  if (auto e = read_string(name, hp.key("name"), out.function_name)) return e;
  out.mode = tool_choice_mode::function;
  return std::nullopt;
}

maybe_error check_tool_choice(const tool_choice_spec& choice,
                              const std::vector<function_tool>& tools) {
  if (choice.mode != tool_choice_mode::required && choice.mode != tool_choice_mode::function) {
    return std::nullopt;
  }
  if (tools.empty()) {
    return invalid_request(
        "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
        "specified.",
        "tool_choice");
  }
  if (choice.mode == tool_choice_mode::function) {
    for (const function_tool& t : tools) {
      if (t.name == choice.function_name) return std::nullopt;
    }
    return invalid_request("Invalid value for 'tool_choice': function '" + choice.function_name +
                               "' is not one of the functions declared in 'tools'.",
                           "tool_choice", "invalid_value");
  }
  return std::nullopt;
}

maybe_error read_format(const value& v, const path& p, tool_shape shape, format_spec& out) {
  if (auto e = expect_object(v, p)) return e;
  value type = v.find("type");
  if (absent(type)) return missing(p.key("type"));
  size_t i = 0;
  if (auto e = read_enum(type, p.key("type"), {"text", "json_object", "json_schema"}, i)) {
    return e;
  }
  static constexpr output_format formats[] = {output_format::text, output_format::json_object,
                                              output_format::json_schema};
  out.type = formats[i];
  out.raw_json = v.to_json();
  if (out.type != output_format::json_schema) return std::nullopt;

  // Chat nests the schema fields under `json_schema`; Responses puts them next to `type`.
  value holder = v;
  path hp = p;
  if (shape == tool_shape::chat) {
    hp = p.key("json_schema");
    holder = v.find("json_schema");
    if (absent(holder)) return missing(hp);
    if (auto e = expect_object(holder, hp)) return e;
  }
  static constexpr std::string_view names[] = {"name", "schema", "strict", "description"};
  value s[4];
  collect_members(holder, names, s);
  if (absent(s[0])) return missing(hp.key("name"));
  if (auto e = read_function_name(s[0], hp.key("name"), out.name)) return e;
  if (!absent(s[1])) {
    if (auto e = expect_object(s[1], hp.key("schema"))) return e;
    out.schema_json = s[1].to_json();
  }
  if (!absent(s[2])) {
    bool b = false;
    if (auto e = read_bool(s[2], hp.key("strict"), b)) return e;
    out.strict = b;
  }
  if (!absent(s[3])) {
    std::string ignored;
    if (auto e = read_string(s[3], hp.key("description"), ignored)) return e;
  }
  return std::nullopt;
}

}  // namespace detail
}  // namespace rc::openai
