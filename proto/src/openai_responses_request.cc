// Responses API request validation; see openai_responses.h for the policies.
#include <string>

#include "openai_responses_detail.h"
#include "openai_validate.h"
#include "proto/openai_responses.h"

namespace rc::openai {

using namespace detail;

namespace {

constexpr size_t tools_max = responses_tools_max;
constexpr int64_t max_output_tokens_min = 16;

constexpr std::string_view member_names[] = {
    "model",        "input",
    "instructions", "previous_response_id",
    "stream",       "max_output_tokens",
    "temperature",  "top_p",
    "tools",        "tool_choice",
    "store",        "metadata",
    "user",         "parallel_tool_calls",
    "text",         "truncation",
    "reasoning",    "include",
    "client_metadata", "prompt_cache_key",
    "service_tier", "safety_identifier",
    "background",   "max_tool_calls",
    "top_logprobs", "stream_options",
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
  m_reasoning,
  m_include,
  m_client_metadata,
  m_prompt_cache_key,
  m_service_tier,
  m_safety_identifier,
  m_background,
  m_max_tool_calls,
  m_top_logprobs,
  m_stream_options,
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
      if (auto e = read_responses_tool_entry(t, p.index(i++), st)) return e;
    }
  }
  if (!absent(s[m_tool_choice])) {
    if (auto e = read_responses_tool_choice(s[m_tool_choice], path("tool_choice"),
                                            st.tool_choice)) {
      return e;
    }
    // "required" is satisfied by any tool; a named function must be one of the functions.
    bool only_other_tools = st.tools.empty() && !st.tool_entries.empty();
    if (only_other_tools && st.tool_choice.mode == tool_choice_mode::function) {
      return invalid_request("Invalid value for 'tool_choice': function '" +
                                 st.tool_choice.function_name +
                                 "' is not one of the functions declared in 'tools'.",
                             "tool_choice", "invalid_value");
    }
    if (!only_other_tools) {
      if (auto e = check_tool_choice(st.tool_choice, st.tools)) return e;
    }
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
      if (auto e = read_format(format, p.key("format"), tool_shape::responses, st.text_format))
        return e;
    }
    value verbosity = s[m_text].find("verbosity");
    if (!absent(verbosity)) {
      size_t i = 0;
      if (auto e = read_enum(verbosity, p.key("verbosity"), {"low", "medium", "high"}, i)) return e;
      st.text_verbosity.assign(verbosity.get_string());
    }
  }
  return std::nullopt;
}

// Members the mock cannot use but the API accepts (and upstreams receive unchanged): checked
// for their types and values, some echoed in the response object.
maybe_error read_agent_members(const value (&s)[m_count], response_settings& st) {
  if (!absent(s[m_reasoning])) {
    path p("reasoning");
    if (auto e = expect_object(s[m_reasoning], p)) return e;
    value effort = s[m_reasoning].find("effort");
    size_t i = 0;
    if (!absent(effort)) {
      if (auto e = read_enum(effort, p.key("effort"),
                             {"none", "minimal", "low", "medium", "high", "xhigh"}, i))
        return e;
      st.reasoning_effort.assign(effort.get_string());
    }
    for (std::string_view key : {"summary", "generate_summary"}) {
      value summary = s[m_reasoning].find(key);
      if (absent(summary)) continue;
      if (auto e = read_enum(summary, p.key(key), {"auto", "concise", "detailed"}, i)) return e;
      st.reasoning_summary.assign(summary.get_string());
    }
  }
  if (!absent(s[m_include])) {
    path p("include");
    if (auto e = expect_array(s[m_include], p)) return e;
    size_t i = 0;
    for (value v : s[m_include].elements()) {
      std::string_view ignored;
      if (auto e = read_string_view(v, p.index(i++), ignored)) return e;
    }
  }
  if (!absent(s[m_client_metadata])) {
    if (auto e = expect_object(s[m_client_metadata], path("client_metadata"))) return e;
  }
  if (!absent(s[m_prompt_cache_key])) {
    if (auto e = read_string(s[m_prompt_cache_key], path("prompt_cache_key"), st.prompt_cache_key))
      return e;
  }
  if (!absent(s[m_safety_identifier])) {
    if (auto e = read_string(s[m_safety_identifier], path("safety_identifier"),
                             st.safety_identifier))
      return e;
  }
  if (!absent(s[m_service_tier])) {
    size_t i = 0;
    if (auto e = read_enum(s[m_service_tier], path("service_tier"),
                           {"auto", "default", "flex", "scale", "priority"}, i))
      return e;
    st.service_tier.assign(s[m_service_tier].get_string());
  }
  if (!absent(s[m_background])) {
    bool ignored = false;
    if (auto e = read_bool(s[m_background], path("background"), ignored)) return e;
  }
  if (!absent(s[m_max_tool_calls])) {
    int64_t ignored = 0;
    if (auto e = read_int(s[m_max_tool_calls], path("max_tool_calls"), 1, INT64_MAX, ignored))
      return e;
  }
  if (!absent(s[m_top_logprobs])) {
    int64_t ignored = 0;
    if (auto e = read_int(s[m_top_logprobs], path("top_logprobs"), 0, 20, ignored)) return e;
  }
  if (!absent(s[m_stream_options])) {
    if (auto e = expect_object(s[m_stream_options], path("stream_options"))) return e;
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
  if (auto e = read_agent_members(s, st)) return e;
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
