// The request an openai upstream is sent: the client's body forwarded or translated, or (for a
// request without one) a chat request built from the typed generation_request.
#include "openai_call.h"

#include "proto/json_splice.h"
#include "proto/json_writer.h"
#include "proto/openai_upstream.h"

namespace rc::server {
namespace {

// A chat request from the typed fields alone (callers that did not keep the client's body).
void write_typed_chat(const generation_request& req, std::string_view model, byte_buffer& out) {
  json::writer w(out);
  w.begin_object();
  w.string_member("model", model);
  w.key("messages");
  w.begin_array();
  for (const turn& t : req.conversation) {
    w.begin_object();
    // Tool outputs were folded into text: without their call ids they read as user turns.
    bool tool = t.role == openai::message_role::tool || t.role == openai::message_role::function;
    w.string_member("role", tool ? "user" : openai::to_string(t.role));
    w.string_member("content", t.text);
    w.end_object();
  }
  w.end_array();
  w.boolean_member("stream", true);
  w.key("stream_options");
  w.begin_object();
  w.boolean_member("include_usage", true);
  w.end_object();
  if (req.choices != 1) w.uint64_member("n", req.choices);
  if (req.max_tokens) w.uint64_member("max_completion_tokens", *req.max_tokens);
  if (!req.stop.empty()) {
    w.key("stop");
    w.begin_array();
    for (const std::string& s : req.stop) w.string(s);
    w.end_array();
  }
  if (req.seed) w.int64_member("seed", *req.seed);
  w.float64_member("temperature", req.temperature);
  w.float64_member("top_p", req.top_p);
  if (!req.tools.empty()) {
    w.key("tools");
    w.begin_array();
    for (const openai::function_tool& t : req.tools) {
      w.begin_object();
      w.string_member("type", "function");
      w.key("function");
      w.begin_object();
      w.string_member("name", t.name);
      if (!t.description.empty()) w.string_member("description", t.description);
      if (!t.parameters_json.empty()) w.raw_member("parameters", t.parameters_json);
      if (t.strict) w.boolean_member("strict", *t.strict);
      w.end_object();
      w.end_object();
    }
    w.end_array();
    w.boolean_member("parallel_tool_calls", req.parallel_tool_calls);
  }
  switch (req.tool_choice.mode) {
    case openai::tool_choice_mode::unset:
      break;
    case openai::tool_choice_mode::none:
      w.string_member("tool_choice", "none");
      break;
    case openai::tool_choice_mode::auto_:
      w.string_member("tool_choice", "auto");
      break;
    case openai::tool_choice_mode::required:
      w.string_member("tool_choice", "required");
      break;
    case openai::tool_choice_mode::function:
      w.key("tool_choice");
      w.begin_object();
      w.string_member("type", "function");
      w.key("function");
      w.begin_object();
      w.string_member("name", req.tool_choice.function_name);
      w.end_object();
      w.end_object();
      break;
  }
  w.end_object();
}

// How many turns the front made of the request's input items (generation.cc, append_turns):
// one per message, function or custom tool call and output, local shell call and (non-empty)
// output; none for the items a text-only engine cannot use (reasoning, references, hosted tools).
size_t turns_of_input(const json::value& input) {
  if (!input) return 0;
  if (!input.is_array()) return 1;
  size_t n = 0;
  for (json::value item : input.elements()) {
    json::value type = item.is_object() ? item.find("type") : json::value();
    std::string_view t = type && type.is_string() ? type.get_string() : std::string_view("message");
    if (t == "local_shell_call_output") {
      json::value out = item.find("output");
      n += out && out.is_string() && !out.get_string().empty();
      continue;
    }
    n += t == "message" || t == "function_call" || t == "function_call_output" ||
         t == "custom_tool_call" || t == "custom_tool_call_output" || t == "local_shell_call";
  }
  return n;
}

// The turns of a Responses conversation before the current request: the front put the stored
// history first, the instructions (if any) in front of it, and the input's turns last.
std::vector<openai::history_message> history_of(const generation_request& req,
                                                const json::value& root) {
  std::vector<openai::history_message> out;
  if (req.original.previous_response_id.empty()) return out;
  json::value instructions = root.find("instructions");
  size_t first = instructions && instructions.is_string() ? 1 : 0;
  size_t current = turns_of_input(root.find("input"));
  size_t end = req.conversation.size() > current ? req.conversation.size() - current : 0;
  for (size_t i = first; i < end; ++i)
    out.push_back({req.conversation[i].role, req.conversation[i].text});
  return out;
}

// A Responses request continuing a response ringcast minted (the front found its conversation in
// ringcast's store: a typed front answered it, so the upstream never saw that id): the body
// without previous_response_id, the stored turns put in front of its input. "" when the front
// resolved nothing (the id is the upstream's own: it is forwarded as is).
std::string with_stored_history(const generation_request& req, json::parser& parser) {
  json::parse_result r = parser.parse(*req.original.body);
  if (!r.ok() || !r.root.is_object()) return {};
  std::vector<openai::history_message> history = history_of(req, r.root);
  if (history.empty()) return {};
  byte_buffer items;
  json::writer w(items);
  w.begin_array();
  for (const openai::history_message& h : history) {
    w.begin_object();
    bool text_role = h.role == openai::message_role::system || h.role == openai::message_role::developer ||
                     h.role == openai::message_role::assistant;
    // Tool outputs were kept as text, without their call ids: they read as user turns.
    w.string_member("role", text_role ? openai::to_string(h.role) : "user");
    w.string_member("content", h.text);
    w.end_object();
  }
  json::value input = r.root.find("input");
  byte_buffer one;
  if (input && input.is_string()) {
    w.begin_object();
    w.string_member("role", "user");
    w.string_member("content", input.get_string());
    w.end_object();
  } else if (input && input.is_array()) {
    for (json::value item : input.elements()) {
      one.clear();
      item.write_to(one);
      w.raw(one.view());
    }
  }
  w.end_array();
  json::member_edit edits[] = {
      {.key = "input", .value = items.view()},
      {.key = "previous_response_id", .value = "null", .append_if_absent = false}};
  byte_buffer body;
  if (!json::rewrite_object(*req.original.body, edits, body)) return {};
  return std::string(body.view());
}

upstream_failure bad_request(const openai::api_error& e) {
  upstream_failure f;
  f.http_status = static_cast<uint16_t>(e.status);
  f.code = e.code.value_or("");
  f.type = e.type;
  f.message = e.message;
  f.param = e.param.value_or("");
  return f;
}

}  // namespace

std::optional<upstream_failure> prepare_upstream_body(const generation_request& req,
                                                      upstream_api api,
                                                      std::string_view upstream_model,
                                                      json::parser& parser, upstream_body& out) {
  const original_request& o = req.original;
  api_kind client = o.body ? o.api : api_kind::none;
  bool speaks_chat = api != upstream_api::responses;
  bool speaks_responses = api != upstream_api::chat;
  byte_buffer b;
  if (client == api_kind::none) {
    // No body to forward: a chat request from the typed fields, translated if need be.
    write_typed_chat(req, upstream_model, b);
    out.wire = speaks_chat ? api_kind::chat : api_kind::responses;
    if (out.wire == api_kind::responses) {
      json::parse_result r = parser.parse(b.view());
      byte_buffer t;
      if (auto e = openai::chat_to_responses(r.root, upstream_model, t)) return bad_request(*e);
      out.text.assign(t.view());
    } else {
      out.text.assign(b.view());
    }
    return std::nullopt;
  }
  bool same = client == api_kind::chat ? speaks_chat : speaks_responses;
  out.wire = same ? client : (client == api_kind::chat ? api_kind::responses : api_kind::chat);
  out.passthrough = same && o.passthrough;
  out.stream = out.passthrough ? o.stream : true;
  if (same) {
    openai::forward_info info;
    auto mode = out.passthrough ? openai::forward_stream::as_sent : openai::forward_stream::always;
    std::string_view body = *o.body;
    std::string replayed;
    if (client == api_kind::responses && !o.previous_response_id.empty()) {
      replayed = with_stored_history(req, parser);
      if (!replayed.empty()) body = replayed;
    }
    bool ok = client == api_kind::chat
                  ? openai::build_chat_forward(body, upstream_model, b, info, mode)
                  : openai::build_responses_forward(body, upstream_model, b, info, mode);
    if (!ok) return bad_request(openai::invalid_request("The request body must be a JSON object."));
    out.client_include_usage = o.include_usage || info.include_usage;
    out.text.assign(b.view());
    return std::nullopt;
  }
  json::parse_result r = parser.parse(*o.body);
  if (!r.ok() || !r.root.is_object())
    return bad_request(openai::invalid_request("The request body must be a JSON object."));
  std::vector<openai::history_message> history;
  if (client == api_kind::responses) {
    history = history_of(req, r.root);
    // A conversation ringcast did not keep (the front forwards ids it did not mint) cannot be
    // continued on an upstream that keeps none either.
    if (!o.previous_response_id.empty() && history.empty())
      return bad_request(openai::previous_response_not_found(o.previous_response_id));
  }
  std::optional<openai::api_error> e =
      client == api_kind::responses ? openai::responses_to_chat(r.root, upstream_model, history, b)
                                    : openai::chat_to_responses(r.root, upstream_model, b);
  if (e) return bad_request(*e);
  out.text.assign(b.view());
  return std::nullopt;
}

}  // namespace rc::server
