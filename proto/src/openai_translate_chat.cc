// Chat request -> Responses request (for an upstream that speaks only the Responses API).
#include <algorithm>
#include <string>

#include "openai_translate_detail.h"
#include "proto/openai_upstream.h"

namespace rc::openai {

using namespace translate;

namespace {

// Responses' smallest max_output_tokens.
constexpr int64_t responses_output_tokens_min = 16;

// A user message's content array as Responses input parts.
void write_user_parts(json::writer& w, const json::value& content) {
  w.begin_array();
  for (json::value part : content.elements()) {
    std::string_view type = string_member(part, "type");
    if (type == "text") {
      w.begin_object();
      w.string_member("type", "input_text");
      w.string_member("text", string_member(part, "text"));
      w.end_object();
    } else if (type == "image_url") {
      json::value image = present(part, "image_url");
      std::string_view url = image && image.is_string() ? image.get_string()
                                                        : string_member(image, "url");
      w.begin_object();
      w.string_member("type", "input_image");
      w.string_member("image_url", url);
      std::string_view detail = string_member(image, "detail");
      w.string_member("detail", detail.empty() ? "auto" : detail);
      w.end_object();
    } else if (type == "file") {
      json::value file = present(part, "file");
      w.begin_object();
      w.string_member("type", "input_file");
      for (std::string_view k : {"file_id", "file_data", "filename"}) {
        if (std::string_view v = string_member(file, k); !v.empty()) w.string_member(k, v);
      }
      w.end_object();
    }
    // input_audio has no Responses input part.
  }
  w.end_array();
}

void write_message_items(json::writer& w, const json::value& msg) {
  std::string_view role = string_member(msg, "role");
  json::value content = present(msg, "content");
  if (role == "tool") {
    w.begin_object();
    w.string_member("type", "function_call_output");
    w.string_member("call_id", string_member(msg, "tool_call_id"));
    w.string_member("output", content_text(content));
    w.end_object();
    return;
  }
  if (role == "system" || role == "developer" || role == "user") {
    w.begin_object();
    w.string_member("role", role);
    w.key("content");
    if (role == "user" && content && content.is_array()) {
      write_user_parts(w, content);
    } else {
      w.string(content_text(content));
    }
    w.end_object();
    return;
  }
  if (role != "assistant") return;  // the deprecated `function` role has no Responses form
  if (std::string text = content_text(content); !text.empty()) {
    w.begin_object();
    w.string_member("role", "assistant");
    w.string_member("content", text);
    w.end_object();
  }
  json::value calls = present(msg, "tool_calls");
  if (!calls || !calls.is_array()) return;
  for (json::value c : calls.elements()) {
    json::value fn = present(c, "function");
    w.begin_object();
    w.string_member("type", "function_call");
    w.string_member("call_id", string_member(c, "id"));
    w.string_member("name", string_member(fn, "name"));
    w.string_member("arguments", string_member(fn, "arguments"));
    w.end_object();
  }
}

void write_tools(json::writer& w, const json::value& tools) {
  if (!tools || !tools.is_array()) return;
  w.key("tools");
  w.begin_array();
  for (json::value t : tools.elements()) {
    std::string_view type = string_member(t, "type");
    json::value inner = present(t, type == "custom" ? "custom" : "function");
    if (type != "function" && type != "custom") continue;
    w.begin_object();
    w.string_member("type", type);
    w.string_member("name", string_member(inner, "name"));
    copy_if_present(w, inner, "description", "description");
    if (type == "function") {
      copy_if_present(w, inner, "parameters", "parameters");
      copy_if_present(w, inner, "strict", "strict");
    } else {
      copy_if_present(w, inner, "format", "format");
    }
    w.end_object();
  }
  w.end_array();
}

void write_tool_choice(json::writer& w, const json::value& choice) {
  if (!choice) return;
  if (choice.is_string()) {
    copy_member(w, "tool_choice", choice);
    return;
  }
  std::string_view type = string_member(choice, "type");
  if (type != "function" && type != "custom") return;
  w.key("tool_choice");
  w.begin_object();
  w.string_member("type", type);
  w.string_member("name", string_member(present(choice, type), "name"));
  w.end_object();
}

void write_format(json::writer& w, const json::value& format) {
  std::string_view type = string_member(format, "type");
  if (type.empty()) return;
  w.key("text");
  w.begin_object();
  w.key("format");
  w.begin_object();
  w.string_member("type", type);
  if (type == "json_schema") {
    json::value schema = present(format, "json_schema");
    w.string_member("name", string_member(schema, "name"));
    copy_if_present(w, schema, "description", "description");
    copy_if_present(w, schema, "schema", "schema");
    copy_if_present(w, schema, "strict", "strict");
  }
  w.end_object();
  w.end_object();
}

}  // namespace

std::optional<api_error> chat_to_responses(const json::value& root,
                                           std::string_view upstream_model, byte_buffer& out) {
  if (!root || !root.is_object()) return invalid_request("The request body must be an object.");
  if (json::value n = present(root, "n"); n && n.is_number() && n.get_double() != 1.0) {
    return invalid_request("n greater than 1 is not supported by this model's upstream.", "n");
  }
  json::writer w(out);
  w.begin_object();
  w.string_member("model", upstream_model);
  w.key("input");
  w.begin_array();
  if (json::value messages = present(root, "messages"); messages && messages.is_array()) {
    for (json::value m : messages.elements()) write_message_items(w, m);
  }
  w.end_array();
  w.boolean_member("stream", true);
  w.boolean_member("store", false);
  write_tools(w, present(root, "tools"));
  write_tool_choice(w, present(root, "tool_choice"));
  copy_if_present(w, root, "parallel_tool_calls", "parallel_tool_calls");
  json::value limit = present(root, "max_completion_tokens");
  if (!limit) limit = present(root, "max_tokens");
  if (limit && limit.kind() == json::kind::int64) {
    w.int64_member("max_output_tokens", std::max(limit.get_int64(), responses_output_tokens_min));
  }
  copy_if_present(w, root, "temperature", "temperature");
  copy_if_present(w, root, "top_p", "top_p");
  copy_if_present(w, root, "top_logprobs", "top_logprobs");
  copy_if_present(w, root, "user", "user");
  copy_if_present(w, root, "metadata", "metadata");
  copy_if_present(w, root, "service_tier", "service_tier");
  copy_if_present(w, root, "prompt_cache_key", "prompt_cache_key");
  copy_if_present(w, root, "safety_identifier", "safety_identifier");
  if (json::value effort = present(root, "reasoning_effort")) {
    w.key("reasoning");
    w.begin_object();
    copy_member(w, "effort", effort);
    w.end_object();
  }
  write_format(w, present(root, "response_format"));
  w.end_object();
  return std::nullopt;
}

}  // namespace rc::openai
