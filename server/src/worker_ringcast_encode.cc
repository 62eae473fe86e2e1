// The `generate` params of the ringcast dialect (docs/workers.md): ringcast's normalized view of
// the request (messages with roles, tools, tool_choice, sampling) and the client's own body,
// unchanged, under "request" for workers that want what the view drops.
#include <cstring>
#include <string>

#include "base/byte_buffer.h"
#include "proto/json_writer.h"
#include "proto/openai_responses.h"
#include "worker_ringcast.h"

namespace rc::server::ringcast_wire {

namespace {

std::string_view role_name(openai::message_role r) {
  // `function` (the legacy chat role) reaches workers as the tool output it is.
  return r == openai::message_role::function ? "tool" : openai::to_string(r);
}

std::string_view api_name(api_kind a) {
  // The broker's requests (api none) are chat-shaped conversations.
  return a == api_kind::responses ? "responses" : "chat";
}

// The conversation as role and content pairs: the view's "messages" and the rebuilt body's.
void write_messages(json::writer& w, const generation_request& r) {
  w.key("messages");
  w.begin_array();
  for (const turn& t : r.conversation) {
    w.begin_object();
    w.string_member("role", role_name(t.role));
    w.string_member("content", t.text);
    w.end_object();
  }
  w.end_array();
}

void write_tools(json::writer& w, const generation_request& r) {
  w.key("tools");
  w.begin_array();
  for (const openai::function_tool& t : r.tools) {
    w.begin_object();
    w.string_member("type", "function");
    w.string_member("name", t.name);
    w.string_member("description", t.description);
    w.key("parameters");
    w.raw(t.parameters_json.empty() ? std::string_view("{}") : t.parameters_json);
    w.end_object();
  }
  w.end_array();
  w.key("tool_choice");
  // Other kinds of choice (kept as raw_json, mode auto) cannot be honoured: they are sent as auto.
  openai::write_responses_tool_choice(w, r.tool_choice);
  w.key("parallel_tool_calls");
  w.boolean(r.parallel_tool_calls);
}

// The client's body, byte for byte except that line breaks become spaces: in valid JSON they
// can only be whitespace between tokens, and line framing allows none inside a message.
void write_original(json::writer& w, const std::string& body) {
  w.key("request");
  if (body.find_first_of("\r\n") == std::string::npos) {
    w.raw(body);
    return;
  }
  std::string flat = body;
  for (char& c : flat) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  w.raw(flat);
}

// The broker has no client body: a chat completions body rebuilt from the view stands in (the
// dialect promises workers an object here).
void write_rebuilt(json::writer& w, const generation_request& r) {
  w.key("request");
  w.begin_object();
  w.string_member("model", r.model);
  write_messages(w, r);
  if (!r.tools.empty()) {
    w.key("tools");
    w.begin_array();
    for (const openai::function_tool& t : r.tools) {
      w.begin_object();
      w.string_member("type", "function");
      w.key("function");
      w.begin_object();
      w.string_member("name", t.name);
      if (!t.description.empty()) w.string_member("description", t.description);
      if (!t.parameters_json.empty()) w.raw_member("parameters", t.parameters_json);
      w.end_object();
      w.end_object();
    }
    w.end_array();
  }
  w.key("stream");
  w.boolean(r.original.stream);
  w.end_object();
}

}  // namespace

void encode_generate(const call_params& p, std::string& out) {
  const generation_request& r = *p.request;
  byte_buffer b;
  json::writer w(b);
  w.begin_object();
  w.string_member("request_id", p.request_id);
  w.string_member("model", p.upstream_model);
  nullable_member(w, "deadline_ms",
                  p.deadline_unix_ms != 0 ? std::optional(p.deadline_unix_ms) : std::nullopt);
  w.string_member("api", api_name(r.original.api));
  w.key("stream");
  w.boolean(r.original.stream);
  write_messages(w, r);
  write_tools(w, r);
  w.uint64_member("n", r.choices);
  nullable_member(w, "max_tokens", r.max_tokens);
  w.key("stop");
  w.begin_array();
  for (const std::string& s : r.stop) w.string(s);
  w.end_array();
  nullable_member(w, "seed", r.seed);
  w.key("temperature");
  w.float64(r.temperature);
  w.key("top_p");
  w.float64(r.top_p);
  if (r.original.body && !r.original.body->empty()) {
    write_original(w, *r.original.body);
  } else {
    write_rebuilt(w, r);
  }
  w.end_object();
  out.append(b.view());
}

}  // namespace rc::server::ringcast_wire
