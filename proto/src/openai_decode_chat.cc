// Chat chunks and completions from an upstream -> typed stream events.
#include <algorithm>
#include <array>

#include "openai_translate_detail.h"
#include "proto/openai_upstream_decode.h"

namespace rc::openai {

using namespace translate;

namespace {

uint64_t count(const json::value& obj, std::string_view key) {
  json::value v = present(obj, key);
  if (!v) return 0;
  if (v.kind() == json::kind::int64) return v.get_int64() < 0 ? 0 : uint64_t(v.get_int64());
  if (v.kind() == json::kind::uint64) return v.get_uint64();
  return 0;
}

void protocol_error(std::string_view message, std::vector<stream_event>& out) {
  stream_event e;
  e.type = stream_event_type::error;
  e.error_code = "upstream_protocol_error";
  e.error_message = message;
  e.error_type = "server_error";
  out.push_back(std::move(e));
}

// The members named `keys` of object `v` in one pass over it (a chunk is decoded per relayed
// token: one walk instead of a lookup per member). The last duplicate wins, null counts as absent.
template <size_t N>
std::array<json::value, N> pick(const json::value& v, const std::array<std::string_view, N>& keys) {
  std::array<json::value, N> out{};
  if (!v || !v.is_object()) return out;
  for (json::member m : v.members()) {
    for (size_t i = 0; i < N; ++i) {
      if (m.key == keys[i]) {
        out[i] = m.value.is_null() ? json::value() : m.value;
        break;
      }
    }
  }
  return out;
}

finish_reason parse_finish(std::string_view s) {
  if (s == "length") return finish_reason::length;
  if (s == "tool_calls" || s == "function_call") return finish_reason::tool_calls;
  if (s == "content_filter") return finish_reason::content_filter;
  return finish_reason::stop;
}

// The index member of a choice or tool call: a small non-negative integer, else npos.
constexpr uint32_t bad_index = UINT32_MAX;
constexpr size_t tool_calls_per_stream_max = 1024;
uint32_t index_of(const json::value& v) {
  json::value i = present(v, "index");
  if (!i) return 0;  // some servers omit the index of a single choice
  if (i.kind() != json::kind::int64 || i.get_int64() < 0 || i.get_int64() >= 1 << 20)
    return bad_index;
  return static_cast<uint32_t>(i.get_int64());
}

}  // namespace

usage_counts parse_chat_usage(const json::value& u) {
  usage_counts c;
  c.input_tokens = count(u, "prompt_tokens");
  c.output_tokens = count(u, "completion_tokens");
  c.cached_tokens = count(present(u, "prompt_tokens_details"), "cached_tokens");
  c.reasoning_tokens = count(present(u, "completion_tokens_details"), "reasoning_tokens");
  return c;
}

void chat_decoder::decode(const json::value& chunk, std::vector<stream_event>& out) {
  last_had_choices_ = false;
  if (!chunk || !chunk.is_object()) return protocol_error("upstream chunk is not an object", out);
  auto [err, usage, choices, object] =
      pick<4>(chunk, {"error", "usage", "choices", "object"});
  if (err) {
    stream_event e;
    e.type = stream_event_type::error;
    e.error_message = std::string(err.is_string() ? err.get_string() : string_member(err, "message"));
    json::value code = present(err, "code");
    e.error_code = code && code.is_string() ? std::string(code.get_string()) : "upstream_error";
    e.error_type = std::string(string_member(err, "type"));
    e.error_param = std::string(string_member(err, "param"));
    if (e.error_message.empty()) e.error_message = "The upstream reported an error.";
    out.push_back(std::move(e));
    return;
  }
  if (usage && usage.is_object()) {
    usage_ = parse_chat_usage(usage);
    has_usage_ = true;
  }
  if (!choices) return;
  if (!choices.is_array()) return protocol_error("upstream chunk's choices is not an array", out);
  bool whole = object && object.is_string() && object.get_string() == "chat.completion";
  for (json::value c : choices.elements()) {
    last_had_choices_ = true;
    decode_choice(c, whole, out);
  }
}

void chat_decoder::decode_choice(const json::value& c, bool whole, std::vector<stream_event>& out) {
  if (!c.is_object()) return protocol_error("upstream choice is not an object with an index", out);
  auto [index, delta, reason] = pick<3>(c, {"index", whole ? "message" : "delta", "finish_reason"});
  uint32_t choice = 0;  // some servers omit the index of a single choice
  if (index) {
    if (index.kind() != json::kind::int64 || index.get_int64() < 0 || index.get_int64() >= 1 << 20)
      return protocol_error("upstream choice is not an object with an index", out);
    choice = static_cast<uint32_t>(index.get_int64());
  }
  if (delta && !delta.is_object())
    return protocol_error("upstream delta is not an object", out);
  auto [content, refusal, calls] = pick<3>(delta, {"content", "refusal", "tool_calls"});
  for (const json::value& text : {content, refusal}) {
    if (!text) continue;
    if (!text.is_string()) {
      // A whole message's content may be an array of parts.
      if (!whole || !text.is_array()) return protocol_error("upstream content is not a string", out);
      std::string joined = content_text(text);
      if (!joined.empty())
        out.push_back(stream_event{.type = stream_event_type::delta, .choice = choice, .text = joined});
      continue;
    }
    if (text.get_string().empty()) continue;
    out.push_back(stream_event{.type = stream_event_type::delta,
                               .choice = choice,
                               .text = std::string(text.get_string())});
  }
  if (calls) {
    if (!calls.is_array()) return protocol_error("upstream tool_calls is not an array", out);
    decode_tool_calls(choice, calls, out);
  }
  if (reason) {
    if (!reason.is_string()) return protocol_error("upstream finish_reason is not a string", out);
    out.push_back(stream_event{.type = stream_event_type::done,
                               .choice = choice,
                               .finish = parse_finish(reason.get_string())});
  }
}

void chat_decoder::decode_tool_calls(uint32_t choice, const json::value& calls,
                                     std::vector<stream_event>& out) {
  uint32_t position = 0;
  for (json::value call : calls.elements()) {
    // A whole message's calls have no index: their position is it.
    uint32_t tool = present(call, "index") ? index_of(call) : position;
    ++position;
    if (!call.is_object() || tool == bad_index)
      return protocol_error("upstream tool call is not an object with an index", out);
    json::value fn = present(call, "function");
    json::value args = present(fn, "arguments");
    if (args && !args.is_string()) return protocol_error("upstream tool arguments are not a string", out);
    stream_event e{.type = stream_event_type::tool_call, .choice = choice, .tool_index = tool};
    if (args) e.text = std::string(args.get_string());
    uint64_t key = (uint64_t{choice} << 32) | tool;
    bool started = std::find(calls_started_.begin(), calls_started_.end(), key) != calls_started_.end();
    if (!started) {
      // A hostile upstream must not grow this list without bound.
      if (calls_started_.size() >= tool_calls_per_stream_max)
        return protocol_error("upstream sent too many tool calls", out);
      calls_started_.push_back(key);
      e.tool_call_id = std::string(string_member(call, "id"));
      e.tool_name = std::string(string_member(fn, "name"));
    } else if (e.text.empty()) {
      continue;  // a repeated header with nothing new
    }
    out.push_back(std::move(e));
  }
}

}  // namespace rc::openai
