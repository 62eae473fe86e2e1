// The Responses `response` object. Member order follows the OpenAI API reference examples.
#include "base/assert.h"
#include "openai_responses_detail.h"
#include "proto/openai_responses.h"

namespace rc::openai {

namespace {

std::string_view to_string(response_status s) {
  switch (s) {
    case response_status::queued:
      return "queued";
    case response_status::in_progress:
      return "in_progress";
    case response_status::completed:
      return "completed";
    case response_status::incomplete:
      return "incomplete";
    case response_status::failed:
      return "failed";
    case response_status::cancelled:
      return "cancelled";
  }
  return "in_progress";
}

std::string_view to_string(item_status s) {
  switch (s) {
    case item_status::in_progress:
      return "in_progress";
    case item_status::completed:
      return "completed";
    case item_status::incomplete:
      return "incomplete";
  }
  return "in_progress";
}

void write_optional_string(json::writer& w, std::string_view key, std::string_view v) {
  if (v.empty()) {
    w.null_member(key);
  } else {
    w.string_member(key, v);
  }
}

void write_tool_choice(json::writer& w, const tool_choice_spec& c) {
  if (!c.raw_json.empty()) {
    w.raw_member("tool_choice", c.raw_json);
    return;
  }
  w.key("tool_choice");
  write_responses_tool_choice(w, c);
}

void write_function_tool(json::writer& w, const function_tool& t) {
    w.begin_object();
    w.string_member("type", "function");
    write_optional_string(w, "description", t.description);
    w.string_member("name", t.name);
    if (t.parameters_json.empty()) {
      w.null_member("parameters");
    } else {
      w.raw_member("parameters", t.parameters_json);
    }
    // The Responses API makes function tools strict unless the client says otherwise.
    w.boolean_member("strict", t.strict.value_or(true));
    w.end_object();
}

// Every tool in the client's order: function tools normalized as the API returns them, the
// other types as sent. (A response built without tool_entries has function tools only.)
void write_tools(json::writer& w, const response_settings& s) {
  w.key("tools");
  w.begin_array();
  size_t next_function = 0;
  for (const std::string& entry : s.tool_entries) {
    if (!entry.empty()) {
      w.raw(entry);
    } else if (next_function < s.tools.size()) {
      write_function_tool(w, s.tools[next_function++]);
    }
  }
  if (s.tool_entries.empty()) {
    for (const function_tool& t : s.tools) write_function_tool(w, t);
  }
  w.end_array();
}

void write_settings_tail(json::writer& w, const response_settings& s) {
  write_optional_string(w, "prompt_cache_key", s.prompt_cache_key);
  w.key("reasoning");
  w.begin_object();
  write_optional_string(w, "effort", s.reasoning_effort);
  write_optional_string(w, "summary", s.reasoning_summary);
  w.end_object();
  write_optional_string(w, "safety_identifier", s.safety_identifier);
  w.string_member("service_tier", s.service_tier.empty() ? "default" : s.service_tier);
  w.boolean_member("store", s.store);
  w.float64_member("temperature", s.temperature);
  w.key("text");
  w.begin_object();
  if (s.text_format.raw_json.empty()) {
    w.key("format");
    w.begin_object();
    w.string_member("type", "text");
    w.end_object();
  } else {
    w.raw_member("format", s.text_format.raw_json);
  }
  w.string_member("verbosity", s.text_verbosity.empty() ? "medium" : s.text_verbosity);
  w.end_object();
  write_tool_choice(w, s.tool_choice);
  write_tools(w, s);
  w.float64_member("top_p", s.top_p);
  w.string_member("truncation", s.truncation == truncation_mode::auto_ ? "auto" : "disabled");
}

}  // namespace

namespace detail {

void write_text_part(json::writer& w, std::string_view text) {
  w.begin_object();
  w.string_member("type", "output_text");
  w.string_member("text", text);
  w.key("annotations");
  w.begin_array();
  w.end_array();
  w.end_object();
}

void write_output_item(json::writer& w, const output_item& item) {
  w.begin_object();
  w.string_member("id", item.id);
  if (item.type == output_item_type::message) {
    w.string_member("type", "message");
    w.string_member("status", to_string(item.status));
    w.string_member("role", "assistant");
    w.key("content");
    w.begin_array();
    // An item just added has no part yet; from content_part.added on it has exactly one.
    if (item.status != item_status::in_progress || !item.text.empty())
      write_text_part(w, item.text);
    w.end_array();
  } else {
    w.string_member("type", "function_call");
    w.string_member("status", to_string(item.status));
    w.string_member("arguments", item.arguments);
    w.string_member("call_id", item.call_id);
    w.string_member("name", item.name);
  }
  w.end_object();
}

}  // namespace detail

void write_responses_tool_choice(json::writer& w, const tool_choice_spec& c) {
  switch (c.mode) {
    case tool_choice_mode::none:
      w.string("none");
      return;
    case tool_choice_mode::required:
      w.string("required");
      return;
    case tool_choice_mode::function:
      w.begin_object();
      w.string_member("type", "function");
      w.string_member("name", c.function_name);
      w.end_object();
      return;
    case tool_choice_mode::unset:
    case tool_choice_mode::auto_:
      w.string("auto");
      return;
  }
}

void write_responses_usage(json::writer& w, const usage_counts& u) {
  w.begin_object();
  w.uint64_member("input_tokens", u.input_tokens);
  w.key("input_tokens_details");
  w.begin_object();
  w.uint64_member("cached_tokens", u.cached_tokens);
  w.end_object();
  w.uint64_member("output_tokens", u.output_tokens);
  w.key("output_tokens_details");
  w.begin_object();
  w.uint64_member("reasoning_tokens", u.reasoning_tokens);
  w.end_object();
  w.uint64_member("total_tokens", u.input_tokens + u.output_tokens);
  w.end_object();
}

void write_response(json::writer& w, const response_object& r) {
  const response_settings& s = r.settings;
  w.begin_object();
  w.string_member("id", r.id);
  w.string_member("object", "response");
  w.int64_member("created_at", r.created_at);
  w.string_member("status", to_string(r.status));
  if (r.completed_at) {
    w.int64_member("completed_at", *r.completed_at);
  } else {
    w.null_member("completed_at");
  }
  if (r.status == response_status::failed) {
    w.key("error");
    w.begin_object();
    w.string_member("code", r.error_code.empty() ? "server_error" : r.error_code);
    w.string_member("message", r.error_message);
    w.end_object();
  } else {
    w.null_member("error");
  }
  if (r.status == response_status::incomplete) {
    w.key("incomplete_details");
    w.begin_object();
    w.string_member("reason", r.incomplete_reason);
    w.end_object();
  } else {
    w.null_member("incomplete_details");
  }
  if (s.instructions) {
    w.string_member("instructions", *s.instructions);
  } else {
    w.null_member("instructions");
  }
  if (s.max_output_tokens) {
    w.int64_member("max_output_tokens", *s.max_output_tokens);
  } else {
    w.null_member("max_output_tokens");
  }
  w.string_member("model", s.model);
  w.key("output");
  w.begin_array();
  for (const output_item& item : r.output) detail::write_output_item(w, item);
  w.end_array();
  w.boolean_member("parallel_tool_calls", s.parallel_tool_calls);
  write_optional_string(w, "previous_response_id", s.previous_response_id);
  write_settings_tail(w, s);
  if (r.usage) {
    w.key("usage");
    write_responses_usage(w, *r.usage);
  } else {
    w.null_member("usage");
  }
  write_optional_string(w, "user", s.user);
  w.key("metadata");
  w.begin_object();
  for (const auto& [k, v] : s.metadata) w.string_member(k, v);
  w.end_object();
  w.end_object();
}

void write_response(byte_buffer& out, const response_object& r) {
  json::writer w(out);
  write_response(w, r);
  RC_ASSERT(w.complete());
}

void write_responses_ws_error(byte_buffer& out, const api_error& e) {
  json::writer w(out);
  w.begin_object();
  w.string_member("type", "error");
  w.int64_member("status", e.status);
  w.key("error");
  w.begin_object();
  w.string_member("type", e.type);
  if (e.code) {
    w.string_member("code", *e.code);
  } else {
    w.null_member("code");
  }
  w.string_member("message", e.message);
  if (e.param) {
    w.string_member("param", *e.param);
  } else {
    w.null_member("param");
  }
  w.end_object();
  w.end_object();
}

}  // namespace rc::openai
