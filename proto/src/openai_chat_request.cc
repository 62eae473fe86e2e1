// Chat Completions request validation. Rules and messages mirror the OpenAI API; see
// openai_chat.h for the policies (unknown members, null, duplicates, error order).
#include <string>

#include "openai_validate.h"
#include "proto/openai_chat.h"

namespace rc::openai {

using namespace detail;

namespace {

constexpr size_t stop_max = chat_stop_max;
constexpr size_t tools_max = chat_tools_max;

// Which content part types each role may send (OpenAI rejects e.g. images from the system).
struct part_rules {
  bool media;    // image_url, input_audio, file
  bool refusal;  // refusal
};

part_rules rules_for(message_role r) {
  switch (r) {
    case message_role::user:
      return {true, false};
    case message_role::assistant:
      return {false, true};
    default:
      return {false, false};
  }
}

maybe_error read_content_part(const value& part, const path& p, message_role role,
                              chat_message& out) {
  if (auto e = expect_object(part, p)) return e;
  value type = part.find("type");
  path tp = p.key("type");
  if (absent(type)) return missing(tp);
  part_rules rules = rules_for(role);
  size_t i = 0;
  maybe_error e;
  if (rules.media) {
    e = read_enum(type, tp, {"text", "image_url", "input_audio", "file"}, i);
  } else if (rules.refusal) {
    e = read_enum(type, tp, {"text", "refusal"}, i);
  } else {
    e = read_enum(type, tp, {"text"}, i);
  }
  if (e) return e;
  if (i == 0) {
    value text = part.find("text");
    if (absent(text)) return missing(p.key("text"));
    std::string_view s;
    if (auto te = read_string_view(text, p.key("text"), s)) return te;
    out.content.append(s);
    return std::nullopt;
  }
  if (rules.refusal) {  // a refusal part carries its text in `refusal`
    value refusal = part.find("refusal");
    if (absent(refusal)) return missing(p.key("refusal"));
    std::string_view s;
    return read_string_view(refusal, p.key("refusal"), s);
  }
  // Media parts: the member named like the type must be an object ({url}, {data, format},
  // {file_id | file_data}); the engine only learns that it was there.
  static constexpr std::string_view members[] = {"text", "image_url", "input_audio", "file"};
  path mp = p.key(members[i]);
  value payload = part.find(members[i]);
  if (absent(payload)) return missing(mp);
  if (auto oe = expect_object(payload, mp)) return oe;
  ++out.media_parts;
  return std::nullopt;
}

maybe_error read_content(const value& v, const path& p, chat_message& out) {
  if (v.is_string()) {
    out.content.assign(v.get_string());
    return std::nullopt;
  }
  if (!v.is_array()) return wrong_type(p, "one of a string or array of objects", v);
  size_t i = 0;
  for (value part : v.elements()) {
    if (auto e = read_content_part(part, p.index(i), out.role, out)) return e;
    ++i;
  }
  if (i == 0) return empty_array(p);
  return std::nullopt;
}

maybe_error read_tool_calls(const value& v, const path& p, chat_message& out) {
  if (auto e = expect_array(v, p)) return e;
  size_t i = 0;
  for (value call : v.elements()) {
    path cp = p.index(i++);
    if (auto e = expect_object(call, cp)) return e;
    static constexpr std::string_view names[] = {"id", "type", "function"};
    value s[3];
    collect_members(call, names, s);
    tool_call tc;
    if (absent(s[0])) return missing(cp.key("id"));
    if (auto e = read_string(s[0], cp.key("id"), tc.id)) return e;
    if (absent(s[1])) return missing(cp.key("type"));
    size_t type = 0;
    if (auto e = read_enum(s[1], cp.key("type"), {"function", "custom"}, type)) return e;
    // {"function":{name, arguments}} or, for a custom tool, {"custom":{name, input}}.
    path fp = cp.key(type == 0 ? "function" : "custom");
    value holder = type == 0 ? s[2] : call.find("custom");
    if (absent(holder)) return missing(fp);
    if (auto e = expect_object(holder, fp)) return e;
    std::string_view args_key = type == 0 ? "arguments" : "input";
    value name = holder.find("name"), args = holder.find(args_key);
    if (absent(name)) return missing(fp.key("name"));
    if (auto e = read_string(name, fp.key("name"), tc.name)) return e;
    if (absent(args)) return missing(fp.key(args_key));
    if (auto e = read_string(args, fp.key(args_key), tc.arguments)) return e;
    out.tool_calls.push_back(std::move(tc));
  }
  if (i == 0) return empty_array(p);
  return std::nullopt;
}

maybe_error read_message(const value& v, const path& p, chat_message& out) {
  if (auto e = expect_object(v, p)) return e;
  static constexpr std::string_view names[] = {"role",       "content",      "name",
                                               "tool_calls", "tool_call_id", "function_call"};
  enum { role, content, name, tool_calls, tool_call_id, function_call };
  value s[6];
  collect_members(v, names, s);

  if (absent(s[role])) return missing(p.key("role"));
  size_t r = 0;
  if (auto e = read_enum(s[role], p.key("role"),
                         {"system", "assistant", "user", "function", "tool", "developer"}, r)) {
    return e;
  }
  static constexpr message_role roles[] = {message_role::system, message_role::assistant,
                                           message_role::user,   message_role::function,
                                           message_role::tool,   message_role::developer};
  out.role = roles[r];
  const bool assistant = out.role == message_role::assistant;

  if (assistant && !absent(s[tool_calls])) {
    if (auto e = read_tool_calls(s[tool_calls], p.key("tool_calls"), out)) return e;
  }
  if (assistant && !absent(s[function_call])) {
    if (auto e = expect_object(s[function_call], p.key("function_call"))) return e;
  }
  // Assistant turns that call tools may carry no content; function results may be null.
  const bool content_optional =
      (assistant && (!out.tool_calls.empty() || !absent(s[function_call]))) ||
      out.role == message_role::function;
  if (absent(s[content])) {
    if (!content_optional) return missing(p.key("content"));
    out.content_null = true;
  } else if (auto e = read_content(s[content], p.key("content"), out)) {
    return e;
  }
  if (!absent(s[name])) {
    if (auto e = read_string(s[name], p.key("name"), out.name)) return e;
  } else if (out.role == message_role::function) {
    return missing(p.key("name"));
  }
  if (out.role == message_role::tool) {
    if (absent(s[tool_call_id])) return missing(p.key("tool_call_id"));
    if (auto e = read_string(s[tool_call_id], p.key("tool_call_id"), out.tool_call_id)) return e;
  }
  return std::nullopt;
}

maybe_error read_messages(const value& v, chat_request& out) {
  path p("messages");
  if (auto e = expect_array(v, p)) return e;
  if (size_t n = v.size(); n > chat_messages_max) return array_too_long(p, chat_messages_max, n);
  size_t i = 0;
  for (value m : v.elements()) {
    chat_message msg;
    if (auto e = read_message(m, p.index(i++), msg)) return e;
    out.messages.push_back(std::move(msg));
  }
  if (i == 0) return empty_array(p);
  return std::nullopt;
}

maybe_error read_stop(const value& v, chat_request& out) {
  path p("stop");
  if (v.is_string()) {
    out.stop.emplace_back(v.get_string());
    return std::nullopt;
  }
  if (!v.is_array()) return wrong_type(p, "one of a string or array of strings", v);
  if (size_t n = v.size(); n > stop_max) return array_too_long(p, stop_max, n);
  size_t i = 0;
  for (value s : v.elements()) {
    std::string str;
    if (auto e = read_string(s, p.index(i++), str)) return e;
    out.stop.push_back(std::move(str));
  }
  return std::nullopt;
}

maybe_error read_logit_bias(const value& v, chat_request& out) {
  path p("logit_bias");
  if (auto e = expect_object(v, p)) return e;
  // Bounded before the (quadratic) duplicate handling below.
  if (size_t n = v.size(); n > chat_logit_bias_max) {
    return too_many_properties(p, chat_logit_bias_max, n);
  }
  for (json::member m : v.members()) {
    int64_t token = 0;
    bool digits = !m.key.empty() && m.key.size() <= 10;
    for (char c : m.key) {
      digits = digits && c >= '0' && c <= '9';
      if (digits) token = token * 10 + (c - '0');
    }
    if (!digits) {
      return invalid_request("Invalid key in 'logit_bias': " + std::string(m.key) +
                                 ". You should only be submitting non-negative integers.",
                             "logit_bias", "invalid_value");
    }
    double bias = 0;
    if (auto e = read_number(m.value, p.key(m.key), -100, 100, bias)) return e;
    bool replaced = false;  // duplicate keys: the last one wins
    for (auto& [t, b] : out.logit_bias) {
      if (t == token) {
        b = bias;
        replaced = true;
      }
    }
    if (!replaced) out.logit_bias.emplace_back(token, bias);
  }
  return std::nullopt;
}

maybe_error read_optional_number(const value& v, std::string_view name, double min, double max,
                                 std::optional<double>& out) {
  if (absent(v)) return std::nullopt;
  double d = 0;
  if (auto e = read_number(v, path(name), min, max, d)) return e;
  out = d;
  return std::nullopt;
}

maybe_error read_optional_bool(const value& v, std::string_view name, std::optional<bool>& out) {
  if (absent(v)) return std::nullopt;
  bool b = false;
  if (auto e = read_bool(v, path(name), b)) return e;
  out = b;
  return std::nullopt;
}

constexpr std::string_view member_names[] = {
    "model",
    "messages",
    "stream",
    "stream_options",
    "n",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "stop",
    "seed",
    "user",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "logprobs",
    "top_logprobs",
    "metadata",
    "store",
    "logit_bias",
};
enum member_slot {
  m_model,
  m_messages,
  m_stream,
  m_stream_options,
  m_n,
  m_max_tokens,
  m_max_completion_tokens,
  m_temperature,
  m_top_p,
  m_presence_penalty,
  m_frequency_penalty,
  m_stop,
  m_seed,
  m_user,
  m_tools,
  m_tool_choice,
  m_parallel_tool_calls,
  m_response_format,
  m_logprobs,
  m_top_logprobs,
  m_metadata,
  m_store,
  m_logit_bias,
  m_count
};
static_assert(std::size(member_names) == m_count);

maybe_error read_streaming(const value (&s)[m_count], chat_request& out) {
  if (!absent(s[m_stream])) {
    if (auto e = read_bool(s[m_stream], path("stream"), out.stream)) return e;
  }
  if (absent(s[m_stream_options])) return std::nullopt;
  if (!out.stream) {
    return invalid_request(
        "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
        "stream_options");
  }
  path p("stream_options");
  if (auto e = expect_object(s[m_stream_options], p)) return e;
  value usage = s[m_stream_options].find("include_usage");
  if (absent(usage)) return std::nullopt;
  return read_bool(usage, p.key("include_usage"), out.include_usage);
}

maybe_error read_sampling(const value (&s)[m_count], chat_request& out) {
  if (!absent(s[m_n])) {
    int64_t n = 1;
    if (auto e = read_int(s[m_n], path("n"), 1, chat_choices_max, n)) return e;
    out.n = static_cast<uint32_t>(n);
  }
  for (int slot : {m_max_tokens, m_max_completion_tokens}) {
    if (absent(s[slot])) continue;
    int64_t v = 0;
    if (auto e = read_int(s[slot], path(member_names[slot]), 1, INT64_MAX, v)) return e;
    out.max_tokens = v;
    out.max_tokens_source = slot == m_max_tokens ? max_tokens_param::max_tokens
                                                 : max_tokens_param::max_completion_tokens;
  }
  if (auto e = read_optional_number(s[m_temperature], "temperature", 0, 2, out.temperature))
    return e;
  if (auto e = read_optional_number(s[m_top_p], "top_p", 0, 1, out.top_p)) return e;
  if (auto e = read_optional_number(s[m_presence_penalty], "presence_penalty", -2, 2,
                                    out.presence_penalty)) {
    return e;
  }
  if (auto e = read_optional_number(s[m_frequency_penalty], "frequency_penalty", -2, 2,
                                    out.frequency_penalty)) {
    return e;
  }
  if (!absent(s[m_stop])) {
    if (auto e = read_stop(s[m_stop], out)) return e;
  }
  if (!absent(s[m_seed])) {
    int64_t seed = 0;
    if (auto e = read_int(s[m_seed], path("seed"), INT64_MIN, INT64_MAX, seed)) return e;
    out.seed = seed;
  }
  if (!absent(s[m_logit_bias])) {
    if (auto e = read_logit_bias(s[m_logit_bias], out)) return e;
  }
  if (!absent(s[m_logprobs])) {
    if (auto e = read_bool(s[m_logprobs], path("logprobs"), out.logprobs)) return e;
  }
  if (!absent(s[m_top_logprobs])) {
    int64_t t = 0;
    if (auto e = read_int(s[m_top_logprobs], path("top_logprobs"), 0, 20, t)) return e;
    out.top_logprobs = static_cast<uint32_t>(t);
  }
  return std::nullopt;
}

maybe_error read_tooling(const value (&s)[m_count], chat_request& out) {
  if (!absent(s[m_tools])) {
    if (auto e = read_chat_tools(s[m_tools], path("tools"), tools_max, out.tools)) return e;
  }
  if (!absent(s[m_tool_choice])) {
    if (auto e = read_chat_tool_choice(s[m_tool_choice], path("tool_choice"), out.tool_choice)) {
      return e;
    }
    // Custom tools satisfy "required" too (they are not in out.tools).
    bool custom_only = out.tools.empty() && !absent(s[m_tools]) && s[m_tools].size() > 0;
    if (!(custom_only && out.tool_choice.mode == tool_choice_mode::required)) {
      if (auto e = check_tool_choice(out.tool_choice, out.tools)) return e;
    }
  }
  if (auto e = read_optional_bool(s[m_parallel_tool_calls], "parallel_tool_calls",
                                  out.parallel_tool_calls)) {
    return e;
  }
  if (!absent(s[m_response_format])) {
    return read_format(s[m_response_format], path("response_format"), tool_shape::chat,
                       out.response_format);
  }
  return std::nullopt;
}

}  // namespace

std::optional<api_error> parse_chat_request(const json::value& root, chat_request& out) {
  out = chat_request{};
  if (!root.is_object()) return body_not_object(root.kind());
  value s[m_count];
  collect_members(root, member_names, s);

  if (absent(s[m_model])) return missing(path("model"));
  if (auto e = read_string(s[m_model], path("model"), out.model)) return e;
  if (absent(s[m_messages])) return missing(path("messages"));
  if (auto e = read_messages(s[m_messages], out)) return e;
  if (auto e = read_streaming(s, out)) return e;
  if (auto e = read_sampling(s, out)) return e;
  if (auto e = read_tooling(s, out)) return e;
  if (!absent(s[m_user])) {
    if (auto e = read_string(s[m_user], path("user"), out.user)) return e;
  }
  if (!absent(s[m_metadata])) {
    if (auto e = read_metadata(s[m_metadata], path("metadata"), out.metadata)) return e;
  }
  return read_optional_bool(s[m_store], "store", out.store);
}

std::optional<api_error> check_completion_tokens(const chat_request& req,
                                                 uint64_t model_completion_tokens_max) {
  if (!req.max_tokens || static_cast<uint64_t>(*req.max_tokens) <= model_completion_tokens_max) {
    return std::nullopt;
  }
  std::string_view param = req.max_tokens_source == max_tokens_param::max_completion_tokens
                               ? "max_completion_tokens"
                               : "max_tokens";
  std::string n = std::to_string(*req.max_tokens);
  std::string m(param);
  m += " is too large: " + n + ". This model supports at most " +
       std::to_string(model_completion_tokens_max) + " completion tokens, whereas you provided " +
       n + ".";
  return invalid_request(std::move(m), std::string(param));
}

}  // namespace rc::openai
