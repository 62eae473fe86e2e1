// Responses events and objects from an upstream -> typed stream events.
#include "openai_translate_detail.h"
#include "proto/openai_upstream_decode.h"

namespace rc::openai {

using namespace translate;

namespace {

constexpr size_t calls_per_response_max = 1024;

uint64_t count(const json::value& obj, std::string_view key) {
  json::value v = present(obj, key);
  if (v && v.kind() == json::kind::int64 && v.get_int64() >= 0) return uint64_t(v.get_int64());
  if (v && v.kind() == json::kind::uint64) return v.get_uint64();
  return 0;
}

void protocol_error(std::string_view message, std::vector<stream_event>& out) {
  out.push_back(stream_event{.type = stream_event_type::error,
                             .error_code = "upstream_protocol_error",
                             .error_message = std::string(message),
                             .error_type = "server_error"});
}

// An error object {code, message, type, param} (of an `error` event or a failed response).
void error_event(const json::value& err, std::string_view fallback_code,
                 std::vector<stream_event>& out) {
  stream_event e{.type = stream_event_type::error};
  e.error_code = std::string(string_member(err, "code"));
  if (e.error_code.empty()) e.error_code = fallback_code;
  e.error_message = std::string(string_member(err, "message"));
  if (e.error_message.empty()) e.error_message = "The upstream reported an error.";
  e.error_type = std::string(string_member(err, "type"));
  e.error_param = std::string(string_member(err, "param"));
  out.push_back(std::move(e));
}

}  // namespace

usage_counts parse_responses_usage(const json::value& u) {
  usage_counts c;
  c.input_tokens = count(u, "input_tokens");
  c.output_tokens = count(u, "output_tokens");
  c.cached_tokens = count(present(u, "input_tokens_details"), "cached_tokens");
  c.reasoning_tokens = count(present(u, "output_tokens_details"), "reasoning_tokens");
  return c;
}

responses_decoder::call_state* responses_decoder::find_call(uint64_t output_index) {
  for (call_state& c : calls_) {
    if (c.output_index == output_index) return &c;
  }
  return nullptr;
}

void responses_decoder::open_call(uint64_t output_index, const json::value& item,
                                  std::vector<stream_event>& out) {
  if (calls_.size() >= calls_per_response_max)
    return protocol_error("upstream sent too many function calls", out);
  auto tool = static_cast<uint32_t>(calls_.size());
  calls_.push_back(call_state{.output_index = output_index, .tool_index = tool});
  std::string call_id(string_member(item, "call_id"));
  if (call_id.empty()) call_id = string_member(item, "id");
  out.push_back(stream_event{.type = stream_event_type::tool_call,
                             .tool_index = tool,
                             .tool_call_id = std::move(call_id),
                             .tool_name = std::string(string_member(item, "name"))});
}

void responses_decoder::finish(const json::value& response, std::vector<stream_event>& out) {
  finished_ = true;
  usage_ = parse_responses_usage(present(response, "usage"));
  std::string_view status = string_member(response, "status");
  if (status == "failed") return error_event(present(response, "error"), "upstream_error", out);
  finish_reason reason = calls_.empty() ? finish_reason::stop : finish_reason::tool_calls;
  if (status == "incomplete") {
    std::string_view why = string_member(present(response, "incomplete_details"), "reason");
    reason = why == "content_filter" ? finish_reason::content_filter : finish_reason::length;
  }
  out.push_back(stream_event{.type = stream_event_type::done, .finish = reason});
}

void responses_decoder::decode_event(const json::value& event, std::vector<stream_event>& out) {
  if (!event || !event.is_object()) return protocol_error("upstream event is not an object", out);
  std::string_view type = string_member(event, "type");
  if (type.empty()) return protocol_error("upstream event has no type", out);
  if (type == "response.output_text.delta" || type == "response.refusal.delta") {
    json::value delta = present(event, "delta");
    if (!delta || !delta.is_string()) return protocol_error("upstream delta is not a string", out);
    if (!delta.get_string().empty())
      out.push_back(stream_event{.type = stream_event_type::delta,
                                 .text = std::string(delta.get_string())});
    return;
  }
  json::value index = present(event, "output_index");
  uint64_t output_index = index && index.kind() == json::kind::int64 ? uint64_t(index.get_int64()) : 0;
  if (type == "response.output_item.added") {
    json::value item = present(event, "item");
    if (string_member(item, "type") == "function_call" && !find_call(output_index))
      open_call(output_index, item, out);
    return;
  }
  if (type == "response.function_call_arguments.delta") {
    json::value delta = present(event, "delta");
    if (!delta || !delta.is_string()) return protocol_error("upstream delta is not a string", out);
    call_state* c = find_call(output_index);
    if (!c) return protocol_error("upstream arguments for an unknown function call", out);
    c->arguments_seen = true;
    if (!delta.get_string().empty())
      out.push_back(stream_event{.type = stream_event_type::tool_call,
                                 .text = std::string(delta.get_string()),
                                 .tool_index = c->tool_index});
    return;
  }
  if (type == "response.output_item.done") {
    json::value item = present(event, "item");
    if (string_member(item, "type") != "function_call") return;
    call_state* c = find_call(output_index);
    if (!c) {
      open_call(output_index, item, out);
      c = find_call(output_index);
      if (!c) return;
    }
    std::string_view args = string_member(item, "arguments");
    if (!c->arguments_seen && !args.empty())
      out.push_back(stream_event{.type = stream_event_type::tool_call,
                                 .text = std::string(args),
                                 .tool_index = c->tool_index});
    c->arguments_seen = true;
    return;
  }
  if (type == "response.created" || type == "response.in_progress") {
    response_id_ = std::string(string_member(present(event, "response"), "id"));
    return;
  }
  if (type == "response.completed" || type == "response.incomplete" || type == "response.failed") {
    json::value response = present(event, "response");
    if (!response || !response.is_object())
      return protocol_error("upstream terminal event has no response", out);
    return finish(response, out);
  }
  if (type == "error") {
    json::value err = present(event, "error");
    return error_event(err ? err : event, "upstream_error", out);
  }
}

void responses_decoder::decode_response(const json::value& r, std::vector<stream_event>& out) {
  if (!r || !r.is_object()) return protocol_error("upstream response is not an object", out);
  if (json::value err = present(r, "error"); err && string_member(r, "status") != "failed")
    return error_event(err, "upstream_error", out);
  response_id_ = std::string(string_member(r, "id"));
  json::value output = present(r, "output");
  if (output && !output.is_array()) return protocol_error("upstream output is not an array", out);
  uint64_t position = 0;
  if (output) {
    for (json::value item : output.elements()) {
      std::string_view type = string_member(item, "type");
      if (type == "message") {
        std::string text = content_text(present(item, "content"));
        if (!text.empty())
          out.push_back(stream_event{.type = stream_event_type::delta, .text = std::move(text)});
      } else if (type == "function_call") {
        open_call(position, item, out);
        std::string_view args = string_member(item, "arguments");
        if (!args.empty() && !calls_.empty())
          out.push_back(stream_event{.type = stream_event_type::tool_call,
                                     .text = std::string(args),
                                     .tool_index = calls_.back().tool_index});
      }
      ++position;
    }
  }
  finish(r, out);
}

}  // namespace rc::openai
