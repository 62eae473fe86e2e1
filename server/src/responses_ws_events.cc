#include "server/responses_ws_events.h"

#include "proto/json_writer.h"

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
      w.string_member("name", req.tool_choice.function_name);
      w.end_object();
      break;
  }
  if (!req.parallel_tool_calls) w.boolean_member("parallel_tool_calls", false);
  if (req.max_tokens) w.uint64_member("max_output_tokens", std::max<uint64_t>(*req.max_tokens, 16));
  if (req.temperature != 1.0) w.float64_member("temperature", req.temperature);
  if (req.top_p != 1.0) w.float64_member("top_p", req.top_p);
}

uint64_t count(const json::value& obj, std::string_view key) {
  json::value v = obj ? obj.find(key) : json::value();
  return v && (v.kind() == json::kind::int64 || v.kind() == json::kind::uint64) && v.get_int64() > 0
             ? static_cast<uint64_t>(v.get_int64())
             : 0;
}

openai::usage_counts usage_of(const json::value& response) {
  openai::usage_counts u;
  json::value usage = response.find("usage");
  if (!usage || !usage.is_object()) return u;
  u.input_tokens = count(usage, "input_tokens");
  u.output_tokens = count(usage, "output_tokens");
  json::value in = usage.find("input_tokens_details");
  if (in && in.is_object()) u.cached_tokens = count(in, "cached_tokens");
  json::value out = usage.find("output_tokens_details");
  if (out && out.is_object()) u.reasoning_tokens = count(out, "reasoning_tokens");
  return u;
}

std::string_view string_of(const json::value& obj, std::string_view key) {
  json::value v = obj ? obj.find(key) : json::value();
  return v && v.is_string() ? v.get_string() : std::string_view();
}

}  // namespace

void build_response_create(json::parser& parser, const generation_request& req,
                           std::string_view upstream_model, std::string_view previous_upstream_id,
                           byte_buffer& out) {
  json::writer w(out);
  w.begin_object();
  w.string_member("type", "response.create");
  w.string_member("model", upstream_model);
  if (!previous_upstream_id.empty()) w.string_member("previous_response_id", previous_upstream_id);
  json::value root;
  if (req.original.api == api_kind::responses && req.original.body) {
    json::parse_result r = parser.parse(*req.original.body);
    if (r.ok() && r.root.is_object()) root = r.root;
  }
  if (!root) {
    write_typed_request(req, w);
  } else {
    for (const json::member& m : root.members()) {
      if (m.key == "model" || m.key == "previous_response_id" || m.key == "stream" ||
          m.key == "type")
        continue;
      w.key(m.key);
      byte_buffer v;
      m.value.write_to(v);
      w.raw(v.view());
    }
  }
  w.end_object();
}

void responses_ws_translator::write_response(const json::value& response, byte_buffer& out,
                                             bool backfill) {
  json::writer w(out);
  w.begin_object();
  for (const json::member& m : response.members()) {
    if (m.key == "id" && !options_.response_id.empty()) {
      w.string_member("id", options_.response_id);
    } else if (m.key == "model" && !options_.client_model.empty()) {
      w.string_member("model", options_.client_model);
    } else if (m.key == "previous_response_id" && m.value.is_string()) {
      w.string_member("previous_response_id", options_.previous_response_id);
    } else if (m.key == "output" && backfill) {
      continue;  // written below
    } else {
      w.key(m.key);
      byte_buffer v;
      m.value.write_to(v);
      w.raw(v.view());
    }
  }
  if (backfill) {
    w.key("output");
    w.begin_array();
    for (const auto& [index, item] : done_items_) w.raw(item);
    w.end_array();
  }
  w.end_object();
}

void responses_ws_translator::emit_raw(std::string_view type, std::string_view json,
                                       std::vector<owned_event>& emit) {
  owned_event o;
  o.base.type = event_type::raw;
  o.base.raw_api = api_kind::responses;
  o.raw = std::string(json);
  o.raw_name = std::string(type);
  emit.push_back(std::move(o));
}

responses_ws_translator::outcome responses_ws_translator::on_message(json::parser& parser,
                                                                     std::string_view message,
                                                                     std::vector<owned_event>& emit) {
  json::parse_result r = parser.parse(message);
  if (!r.ok() || !r.root.is_object()) {
    problem_ = "the upstream sent a message that is not a JSON object";
    return outcome::protocol_error;
  }
  json::value root = r.root;
  std::string_view type = string_of(root, "type");
  if (type.empty()) {
    problem_ = "the upstream sent an event without a type";
    return outcome::protocol_error;
  }
  if (type == "error") {
    json::value err = root.find("error");
    json::value src = err && err.is_object() ? err : root;
    owned_event o = error_event(std::string(string_of(src, "code")),
                                std::string(string_of(src, "message")), 0,
                                std::string(string_of(src, "type")),
                                std::string(string_of(src, "param")));
    if (o.error_code.empty()) o.error_code = "upstream_error";
    if (o.error_message.empty()) o.error_message = "the upstream reported an error";
    if (o.error_type.empty()) o.error_type = "server_error";
    // The envelope as the HTTP API would have answered it.
    byte_buffer env;
    json::writer w(env);
    w.begin_object();
    w.key("error");
    byte_buffer v;
    src.write_to(v);
    w.raw(v.view());
    w.end_object();
    o.raw = std::string(env.view());
    // An upstream refusal before anything was produced is a client error when it names a param.
    o.base.http_status = o.error_type == "invalid_request_error" ? 400 : 502;
    emit.push_back(std::move(o));
    return outcome::failed;
  }
  if (type == "response.completed" || type == "response.incomplete" || type == "response.failed")
    return terminal(type, root, message, emit);

  json::value response = root.find("response");
  if (response && response.is_object()) {
    if (upstream_id_.empty()) upstream_id_ = std::string(string_of(response, "id"));
    if (options_.raw && options_.stream) {
      byte_buffer b;
      json::writer w(b);
      w.begin_object();
      for (const json::member& m : root.members()) {
        w.key(m.key);
        if (m.key == "response") {
          byte_buffer obj;
          write_response(m.value, obj, false);
          w.raw(obj.view());
        } else {
          byte_buffer v;
          m.value.write_to(v);
          w.raw(v.view());
        }
      }
      w.end_object();
      emit_raw(type, b.view(), emit);
    }
    return outcome::more;
  }
  if (type == "response.output_item.done") {
    json::value item = root.find("item");
    json::value index = root.find("output_index");
    if (item && item.is_object()) {
      int64_t i = index && index.kind() == json::kind::int64 ? index.get_int64()
                                                            : static_cast<int64_t>(done_items_.size());
      done_items_[i] = item.to_json();
    }
  }
  if (options_.raw) {
    if (options_.stream) emit_raw(type, message, emit);
    return outcome::more;
  }
  owned_event o;
  if (type == "response.output_text.delta") {
    o.base.type = event_type::delta;
    o.text = std::string(string_of(root, "delta"));
    emit.push_back(std::move(o));
  } else if (type == "response.output_item.added") {
    json::value item = root.find("item");
    if (item && item.is_object() && string_of(item, "type") == "function_call") {
      call_index_[std::string(string_of(item, "id"))] = calls_;
      o.base.type = event_type::tool_call;
      o.base.tool_index = calls_++;
      o.tool_call_id = std::string(string_of(item, "call_id"));
      o.tool_name = std::string(string_of(item, "name"));
      if (o.tool_call_id.empty()) o.tool_call_id = std::string(string_of(item, "id"));
      emit.push_back(std::move(o));
    }
  } else if (type == "response.function_call_arguments.delta") {
    auto it = call_index_.find(std::string(string_of(root, "item_id")));
    if (it != call_index_.end()) {
      o.base.type = event_type::tool_call;
      o.base.tool_index = it->second;
      o.text = std::string(string_of(root, "delta"));
      emit.push_back(std::move(o));
    }
  }
  return outcome::more;
}

responses_ws_translator::outcome responses_ws_translator::terminal(std::string_view type,
                                                                   const json::value& root,
                                                                   std::string_view,
                                                                   std::vector<owned_event>& emit) {
  json::value response = root.find("response");
  if (!response || !response.is_object()) {
    problem_ = std::string("the upstream's ") + std::string(type) + " has no response object";
    return outcome::protocol_error;
  }
  if (std::string_view id = string_of(response, "id"); !id.empty()) upstream_id_ = std::string(id);
  json::value output = response.find("output");
  bool thin = !output || !output.is_array() || output.size() == 0;
  bool backfill = thin && !done_items_.empty();
  if (options_.raw) {
    byte_buffer obj;
    write_response(response, obj, backfill);
    if (options_.stream) {
      byte_buffer b;
      json::writer w(b);
      w.begin_object();
      for (const json::member& m : root.members()) {
        w.key(m.key);
        if (m.key == "response") {
          w.raw(obj.view());
        } else {
          byte_buffer v;
          m.value.write_to(v);
          w.raw(v.view());
        }
      }
      w.end_object();
      emit_raw(type, b.view(), emit);
    } else {
      emit_raw(type, obj.view(), emit);  // a non-stream request: the whole object
    }
  }
  if (type == "response.failed") {
    json::value err = response.find("error");
    owned_event o = error_event(std::string(string_of(err, "code")),
                                std::string(string_of(err, "message")), 502);
    if (o.error_code.empty()) o.error_code = "upstream_error";
    if (o.error_message.empty()) o.error_message = "the upstream response failed";
    emit.push_back(std::move(o));
    return outcome::failed;
  }
  if (!options_.raw) {
    owned_event done;
    done.base.type = event_type::done;
    done.base.finish = type == "response.incomplete" ? openai::finish_reason::length
                       : calls_ > 0                  ? openai::finish_reason::tool_calls
                                                     : openai::finish_reason::stop;
    emit.push_back(std::move(done));
  }
  owned_event u;
  u.base.type = event_type::usage;
  u.base.usage = usage_of(response);
  emit.push_back(std::move(u));
  return outcome::completed;
}

}  // namespace rc::server
