// Responses request -> chat request (for an upstream that speaks only Chat Completions).
#include <vector>

#include "openai_translate_detail.h"
#include "proto/openai_upstream.h"

namespace rc::openai {

using namespace translate;

namespace {

struct call {
  std::string id, name, arguments;
};

struct chat_msg {
  std::string_view role = {};
  std::string text = {};
  bool has_text = true;
  std::string parts_json = {};  // user content with media parts: the chat content array
  std::vector<call> calls = {};
  std::string tool_call_id = {};
};

std::string_view chat_role(std::string_view responses_role) {
  // Chat templates of open-weight servers know system, user and assistant; `developer` is the
  // newer name of `system` for the same instructions.
  if (responses_role == "developer" || responses_role == "system") return "system";
  if (responses_role == "assistant") return "assistant";
  return "user";
}

std::string_view chat_role(message_role r) {
  switch (r) {
    case message_role::system:
    case message_role::developer:
      return "system";
    case message_role::assistant:
      return "assistant";
    default:
      return "user";
  }
}

// A user message's content parts in chat's shape; false if every part is text (the message is
// then sent as one string).
bool write_chat_parts(const json::value& content, std::string& out) {
  if (!content.is_array()) return false;
  bool media = false;
  byte_buffer b;
  json::writer w(b);
  w.begin_array();
  for (json::value part : content.elements()) {
    std::string_view type = string_member(part, "type");
    if (type == "input_text" || type == "output_text" || type == "text") {
      w.begin_object();
      w.string_member("type", "text");
      w.string_member("text", string_member(part, "text"));
      w.end_object();
    } else if (type == "input_image") {
      std::string_view url = string_member(part, "image_url");
      if (url.empty()) continue;  // file_id images have no chat form
      media = true;
      w.begin_object();
      w.string_member("type", "image_url");
      w.key("image_url");
      w.begin_object();
      w.string_member("url", url);
      if (std::string_view d = string_member(part, "detail"); !d.empty()) w.string_member("detail", d);
      w.end_object();
      w.end_object();
    } else if (type == "input_file") {
      media = true;
      w.begin_object();
      w.string_member("type", "file");
      w.key("file");
      w.begin_object();
      for (std::string_view k : {"file_id", "file_data", "filename"}) {
        if (std::string_view v = string_member(part, k); !v.empty()) w.string_member(k, v);
      }
      w.end_object();
      w.end_object();
    } else if (type == "input_audio") {
      json::value audio = present(part, "input_audio");
      if (!audio) continue;
      media = true;
      w.begin_object();
      w.string_member("type", "input_audio");
      copy_member(w, "input_audio", audio);
      w.end_object();
    }
  }
  w.end_array();
  if (media) out.assign(b.view());
  return media;
}

void add_item(const json::value& item, std::vector<chat_msg>& msgs) {
  if (!item.is_object()) return;  // the front validated the request; translation never trusts it
  std::string_view type = string_member(item, "type");
  if (type.empty() || type == "message") {
    std::string_view role = string_member(item, "role");
    chat_msg m;
    m.role = chat_role(role);
    json::value content = item.find("content");
    if (!(m.role == "user" && content && write_chat_parts(content, m.parts_json)))
      m.text = content_text(content);
    msgs.push_back(std::move(m));
  } else if (type == "function_call") {
    // Consecutive calls belong to one assistant message, after its text if it had any.
    if (msgs.empty() || msgs.back().role != "assistant") {
      msgs.push_back(chat_msg{.role = "assistant", .has_text = false});
    }
    msgs.back().calls.push_back(call{std::string(string_member(item, "call_id")),
                                     std::string(string_member(item, "name")),
                                     std::string(string_member(item, "arguments"))});
  } else if (type == "function_call_output") {
    json::value output = item.find("output");
    msgs.push_back(chat_msg{.role = "tool",
                            .text = content_text(output),
                            .tool_call_id = std::string(string_member(item, "call_id"))});
  }
  // Other items (reasoning, item_reference, hosted tool calls) have no chat form.
}

void write_messages(json::writer& w, const std::vector<chat_msg>& msgs) {
  w.key("messages");
  w.begin_array();
  for (const chat_msg& m : msgs) {
    w.begin_object();
    w.string_member("role", m.role);
    w.key("content");
    if (!m.parts_json.empty()) {
      w.raw(m.parts_json);
    } else if (!m.has_text && m.text.empty()) {
      w.null();
    } else {
      w.string(m.text);
    }
    if (!m.tool_call_id.empty()) w.string_member("tool_call_id", m.tool_call_id);
    if (!m.calls.empty()) {
      w.key("tool_calls");
      w.begin_array();
      for (const call& c : m.calls) {
        w.begin_object();
        w.string_member("id", c.id);
        w.string_member("type", "function");
        w.key("function");
        w.begin_object();
        w.string_member("name", c.name);
        w.string_member("arguments", c.arguments);
        w.end_object();
        w.end_object();
      }
      w.end_array();
    }
    w.end_object();
  }
  w.end_array();
}

// Function tools in chat's nested shape; hosted tools (web_search, mcp, …) cannot be expressed.
void write_tools(json::writer& w, const json::value& tools) {
  if (!tools || !tools.is_array()) return;
  bool any = false;
  for (json::value t : tools.elements()) {
    if (string_member(t, "type") != "function") continue;
    if (!any) {
      w.key("tools");
      w.begin_array();
      any = true;
    }
    w.begin_object();
    w.string_member("type", "function");
    w.key("function");
    w.begin_object();
    w.string_member("name", string_member(t, "name"));
    copy_if_present(w, t, "description", "description");
    copy_if_present(w, t, "parameters", "parameters");
    copy_if_present(w, t, "strict", "strict");
    w.end_object();
    w.end_object();
  }
  if (any) w.end_array();
}

void write_tool_choice(json::writer& w, const json::value& choice) {
  if (!choice) return;
  if (choice.is_string()) {
    copy_member(w, "tool_choice", choice);
    return;
  }
  if (string_member(choice, "type") != "function") return;  // hosted tools, allowed_tools
  w.key("tool_choice");
  w.begin_object();
  w.string_member("type", "function");
  w.key("function");
  w.begin_object();
  w.string_member("name", string_member(choice, "name"));
  w.end_object();
  w.end_object();
}

// text.format -> response_format.
void write_format(json::writer& w, const json::value& text) {
  json::value format = present(text, "format");
  if (!format) return;
  std::string_view type = string_member(format, "type");
  if (type == "json_object" || type == "text") {
    w.key("response_format");
    w.begin_object();
    w.string_member("type", type);
    w.end_object();
  } else if (type == "json_schema") {
    w.key("response_format");
    w.begin_object();
    w.string_member("type", "json_schema");
    w.key("json_schema");
    w.begin_object();
    w.string_member("name", string_member(format, "name"));
    copy_if_present(w, format, "description", "description");
    copy_if_present(w, format, "schema", "schema");
    copy_if_present(w, format, "strict", "strict");
    w.end_object();
    w.end_object();
  }
}

}  // namespace

std::optional<api_error> responses_to_chat(const json::value& root,
                                           std::string_view upstream_model,
                                           std::span<const history_message> history,
                                           byte_buffer& out) {
  if (!root || !root.is_object()) return invalid_request("The request body must be an object.");
  std::vector<chat_msg> msgs;
  if (std::string_view s = string_member(root, "instructions"); !s.empty())
    msgs.push_back(chat_msg{.role = "system", .text = std::string(s)});
  for (const history_message& h : history)
    msgs.push_back(chat_msg{.role = chat_role(h.role), .text = std::string(h.text)});
  json::value input = root.find("input");
  if (input && input.is_string()) {
    msgs.push_back(chat_msg{.role = "user", .text = std::string(input.get_string())});
  } else if (input && input.is_array()) {
    for (json::value item : input.elements()) add_item(item, msgs);
  }

  json::writer w(out);
  w.begin_object();
  w.string_member("model", upstream_model);
  write_messages(w, msgs);
  w.boolean_member("stream", true);
  w.key("stream_options");
  w.begin_object();
  w.boolean_member("include_usage", true);
  w.end_object();
  write_tools(w, root.find("tools"));
  write_tool_choice(w, present(root, "tool_choice"));
  copy_if_present(w, root, "parallel_tool_calls", "parallel_tool_calls");
  copy_if_present(w, root, "max_output_tokens", "max_completion_tokens");
  copy_if_present(w, root, "temperature", "temperature");
  copy_if_present(w, root, "top_p", "top_p");
  copy_if_present(w, root, "user", "user");
  copy_if_present(w, root, "service_tier", "service_tier");
  copy_if_present(w, root, "prompt_cache_key", "prompt_cache_key");
  copy_if_present(w, root, "safety_identifier", "safety_identifier");
  if (json::value effort = present(present(root, "reasoning"), "effort"))
    copy_member(w, "reasoning_effort", effort);
  write_format(w, present(root, "text"));
  w.end_object();
  return std::nullopt;
}

}  // namespace rc::openai
