#include "server/responses_ws_events.h"

#include <optional>
#include <span>

#include "proto/json_splice.h"
#include "proto/json_writer.h"
#include "proto/openai_responses.h"

namespace rc::server {
namespace {

void write_typed_request(const generation_request& req, json::writer& w) {
  w.key("input");
  w.begin_array();
  for (const turn& t : req.conversation) {
    w.begin_object();
    w.string_member("type", "message");
    // Tool outputs were folded into text; a role the Responses input has no message for is sent
    // as the user's.
    bool plain = t.role == openai::message_role::system || t.role == openai::message_role::developer ||
                 t.role == openai::message_role::user || t.role == openai::message_role::assistant;
    w.string_member("role", plain ? openai::to_string(t.role) : "user");
    w.string_member("content", t.text);
    w.end_object();
  }
  w.end_array();
  if (!req.tools.empty()) {
    w.key("tools");
    w.begin_array();
    for (const openai::function_tool& f : req.tools) {
      w.begin_object();
      w.string_member("type", "function");
      w.string_member("name", f.name);
      if (!f.description.empty()) w.string_member("description", f.description);
      if (!f.parameters_json.empty()) w.raw_member("parameters", f.parameters_json);
      if (f.strict) w.boolean_member("strict", *f.strict);
      w.end_object();
    }
    w.end_array();
  }
  if (req.tool_choice.mode != openai::tool_choice_mode::unset) {
    w.key("tool_choice");
    openai::write_responses_tool_choice(w, req.tool_choice);
  }
  if (!req.parallel_tool_calls) w.boolean_member("parallel_tool_calls", false);
  if (req.max_tokens) w.uint64_member("max_output_tokens", std::max<uint64_t>(*req.max_tokens, 16));
  if (req.temperature != 1.0) w.float64_member("temperature", req.temperature);
  if (req.top_p != 1.0) w.float64_member("top_p", req.top_p);
}

std::string_view string_of(const json::value& obj, std::string_view key) {
  json::value v = obj ? obj.find(key) : json::value();
  return v && v.is_string() ? v.get_string() : std::string_view();
}

}  // namespace

void build_response_create(json::parser&, const generation_request& req,
                           std::string_view upstream_model, std::string_view previous_upstream_id,
                           byte_buffer& out) {
  std::vector<json::member_span> members;
  size_t close = 0;
  // A previous response the upstream does not know (stateless mode) was resolved by the front
  // into the conversation: only the typed request carries it.
  bool history = !req.original.previous_response_id.empty() && previous_upstream_id.empty();
  bool forward = req.original.api == api_kind::responses && req.original.body && !history &&
                 json::scan_object(*req.original.body, members, close);
  json::writer w(out);
  w.begin_object();
  w.string_member("type", "response.create");
  w.string_member("model", upstream_model);
  if (!previous_upstream_id.empty()) w.string_member("previous_response_id", previous_upstream_id);
  if (!forward) {
    write_typed_request(req, w);
    w.end_object();
    return;
  }
  // The client's members follow, byte for byte, but those ringcast sets (above) or that a
  // WebSocket has no use for (`stream`); the writer has written the object's opening only.
  std::string_view body = *req.original.body;
  for (const json::member_span& m : members) {
    if (json::key_equals(m.key, "model") || json::key_equals(m.key, "previous_response_id") ||
        json::key_equals(m.key, "stream") || json::key_equals(m.key, "type"))
      continue;
    size_t begin = static_cast<size_t>(m.key.data() - body.data()) - 1;  // the key's quote
    out.append(",");
    out.append(body.substr(begin, m.value_end - begin));
  }
  out.append("}");
}

bool responses_ws_translator::rewrite_response(std::string_view response, bool backfill,
                                               byte_buffer& out) {
  std::string output;
  if (backfill) {
    output = "[";
    for (const auto& [index, item] : done_items_) {
      if (output.size() > 1) output += ',';
      output += item;
    }
    output += ']';
  }
  byte_buffer id, model, previous;
  json::write_string(id, options_.response_id);
  json::write_string(model, options_.client_model);
  json::write_string(previous, options_.previous_response_id);
  json::member_edit edits[4];
  size_t n = 0;
  if (!options_.response_id.empty()) edits[n++] = {"id", id.view(), false};
  if (!options_.client_model.empty()) edits[n++] = {"model", model.view(), false};
  // A previous_response_id the upstream echoes is its own id: show the client's (or null).
  edits[n++] = {"previous_response_id",
                options_.previous_response_id.empty() ? std::string_view("null") : previous.view(),
                false};
  if (backfill) edits[n++] = {"output", output, true};
  return json::rewrite_object(response, std::span(edits, n), out);
}

bool responses_ws_translator::emit_raw(std::string_view type, std::string_view message,
                                       bool terminal, bool backfill,
                                       std::vector<owned_event>& emit) {
  owned_event o;
  o.base.type = event_type::raw;
  o.base.raw_api = api_kind::responses;
  o.raw_name = std::string(type);
  std::optional<std::string_view> response = json::find_member(message, "response");
  byte_buffer obj;
  if (response && !rewrite_response(*response, backfill, obj)) return false;
  if (!options_.stream) {  // a non-stream request: only the final object
    if (!terminal || !response) return true;
    o.raw = std::string(obj.view());
  } else if (response) {
    byte_buffer event;
    json::member_edit edit{"response", obj.view(), false};
    if (!json::rewrite_object(message, std::span(&edit, 1), event)) return false;
    o.raw = std::string(event.view());
  } else {
    o.raw = std::string(message);
  }
  emit.push_back(std::move(o));
  return true;
}

responses_ws_translator::outcome responses_ws_translator::protocol_error(std::string problem) {
  problem_ = std::move(problem);
  return outcome::protocol_error;
}

responses_ws_translator::outcome responses_ws_translator::on_message(
    json::parser& parser, std::string_view message, std::vector<owned_event>& emit) {
  json::parse_result r = parser.parse(message);
  if (!r.ok() || !r.root.is_object())
    return protocol_error("the upstream sent a message that is not a JSON object");
  json::value root = r.root;
  std::string_view type = string_of(root, "type");
  std::vector<openai::stream_event> typed;
  decoder_.decode_event(root, typed);
  for (const openai::stream_event& e : typed)
    if (e.type == openai::stream_event_type::error && e.error_code == "upstream_protocol_error")
      return protocol_error(e.error_message);
  bool terminal =
      type == "response.completed" || type == "response.incomplete" || type == "response.failed";
  json::value response = root.find("response");
  if (response && response.is_object()) {
    if (std::string_view id = string_of(response, "id"); !id.empty()) upstream_id_ = std::string(id);
  }
  if (type == "response.output_item.done") {
    json::value item = root.find("item");
    json::value index = root.find("output_index");
    if (item && item.is_object()) {
      int64_t i = index && index.kind() == json::kind::int64
                      ? index.get_int64()
                      : static_cast<int64_t>(done_items_.size());
      if (auto text = json::find_member(message, "item")) done_items_[i] = std::string(*text);
    }
  }
  if (options_.raw && type != "error") {
    bool backfill = false;
    if (terminal) {
      json::value output = response.find("output");
      backfill = (!output || !output.is_array() || output.size() == 0) && !done_items_.empty();
    }
    if (!emit_raw(type, message, terminal, backfill, emit))
      return protocol_error("the upstream sent an event that is not a JSON object");
  }
  for (openai::stream_event& e : typed) {
    if (e.type == openai::stream_event_type::error) {
      emit.push_back(upstream_error(type, root, std::move(e)));
      return outcome::failed;
    }
    if (options_.raw) continue;
    owned_event o;
    o.base.choice = e.choice;
    switch (e.type) {
      case openai::stream_event_type::delta:
        o.base.type = event_type::delta;
        break;
      case openai::stream_event_type::tool_call:
        o.base.type = event_type::tool_call;
        o.base.tool_index = e.tool_index;
        o.tool_call_id = std::move(e.tool_call_id);
        o.tool_name = std::move(e.tool_name);
        break;
      case openai::stream_event_type::done:
        o.base.type = event_type::done;
        o.base.finish = e.finish;
        break;
      case openai::stream_event_type::error:
        break;
    }
    o.text = std::move(e.text);
    emit.push_back(std::move(o));
  }
  if (!decoder_.finished()) return outcome::more;
  owned_event u;
  u.base.type = event_type::usage;
  u.base.usage = decoder_.usage();
  emit.push_back(std::move(u));
  return outcome::completed;
}

owned_event responses_ws_translator::upstream_error(std::string_view type, const json::value& root,
                                                    openai::stream_event&& e) {
  owned_event o = error_event(std::move(e.error_code), std::move(e.error_message), 502,
                              e.error_type.empty() ? "server_error" : std::move(e.error_type),
                              std::move(e.error_param));
  if (type != "error") return o;  // response.failed: a failure of the upstream's
  // An `error` event: the envelope as the HTTP API would have answered it; a refusal of the
  // request itself is the client's error.
  json::value err = root.find("error");
  byte_buffer env;
  json::writer w(env);
  w.begin_object();
  w.key("error");
  byte_buffer v;
  (err && err.is_object() ? err : root).write_to(v);
  w.raw(v.view());
  w.end_object();
  o.raw = std::string(env.view());
  // The status the upstream gives its error event (as its HTTP API would answer), mapped as for
  // HTTP upstreams: a 4xx passes through with its envelope, except 401/403 (ringcast's key was
  // refused: the client can do nothing about it); 429 stays 429; 5xx is the upstream's failure.
  json::value st = root.find("status");
  int64_t status = st && st.kind() == json::kind::int64 ? st.get_int64() : 0;
  if (status == 0 && o.error_type == "invalid_request_error") status = 400;
  if (status == 401 || status == 403) {
    o.base.http_status = 502;
    o.error_code = "upstream_auth_failed";
    o.error_message = "the upstream refused ringcast's credentials";
    o.error_type = "server_error";
    o.error_param.clear();
    o.raw.clear();
  } else if (status >= 400 && status < 500) {
    o.base.http_status = static_cast<uint16_t>(status);
  }
  return o;
}

}  // namespace rc::server
