// chat.completion and chat.completion.chunk encoders. Member order follows the OpenAI API's
// own output (id, object, created, model, …), which some clients' golden tests compare.
#include "base/assert.h"
#include "proto/json_writer.h"
#include "proto/openai_chat.h"

namespace rc::openai {

namespace {

constexpr std::string_view index_key = "{\"index\":";

void write_header_members(json::writer& w, const completion_header& h, std::string_view object) {
  w.string_member("id", h.id);
  w.string_member("object", object);
  w.int64_member("created", h.created);
  w.string_member("model", h.model);
}

void write_fingerprint(json::writer& w, const completion_header& h) {
  if (!h.service_tier.empty()) w.string_member("service_tier", h.service_tier);
  if (h.system_fingerprint.empty()) {
    w.null_member("system_fingerprint");
  } else {
    w.string_member("system_fingerprint", h.system_fingerprint);
  }
}

void write_tool_calls(json::writer& w, std::span<const tool_call> calls) {
  w.key("tool_calls");
  w.begin_array();
  for (const tool_call& c : calls) {
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

}  // namespace

void write_chat_usage(json::writer& w, const usage_counts& u) {
  w.begin_object();
  w.uint64_member("prompt_tokens", u.input_tokens);
  w.uint64_member("completion_tokens", u.output_tokens);
  w.uint64_member("total_tokens", u.input_tokens + u.output_tokens);
  w.key("prompt_tokens_details");
  w.begin_object();
  w.uint64_member("cached_tokens", u.cached_tokens);
  w.uint64_member("audio_tokens", 0);
  w.end_object();
  w.key("completion_tokens_details");
  w.begin_object();
  w.uint64_member("reasoning_tokens", u.reasoning_tokens);
  w.uint64_member("audio_tokens", 0);
  w.uint64_member("accepted_prediction_tokens", 0);
  w.uint64_member("rejected_prediction_tokens", 0);
  w.end_object();
  w.end_object();
}

void write_chat_completion(byte_buffer& out, const completion_header& h,
                           std::span<const chat_choice> choices, const usage_counts& usage) {
  json::writer w(out);
  w.begin_object();
  write_header_members(w, h, "chat.completion");
  w.key("choices");
  w.begin_array();
  for (const chat_choice& c : choices) {
    w.begin_object();
    w.uint64_member("index", c.index);
    w.key("message");
    w.begin_object();
    w.string_member("role", "assistant");
    if (c.content.empty() && !c.tool_calls.empty()) {
      w.null_member("content");
    } else {
      w.string_member("content", c.content);
    }
    w.null_member("refusal");
    w.key("annotations");
    w.begin_array();
    w.end_array();
    if (!c.tool_calls.empty()) write_tool_calls(w, c.tool_calls);
    w.end_object();
    w.null_member("logprobs");
    w.string_member("finish_reason", to_string(c.finish));
    w.end_object();
  }
  w.end_array();
  w.key("usage");
  write_chat_usage(w, usage);
  if (!h.service_tier.empty()) w.string_member("service_tier", h.service_tier);
  if (h.system_fingerprint.empty()) {
    w.null_member("system_fingerprint");
  } else {
    w.string_member("system_fingerprint", h.system_fingerprint);
  }
  w.end_object();
  RC_ASSERT(w.complete());
}

// ---- chunks ----

chat_chunk_writer::chat_chunk_writer(const completion_header& h, usage_chunk usage)
    : usage_(usage) {
  byte_buffer b;
  json::writer w(b);
  w.begin_object();
  write_header_members(w, h, "chat.completion.chunk");
  write_fingerprint(w, h);
  w.key("choices");
  w.begin_array();
  // The writer is abandoned here on purpose: the rest of each chunk is appended by hand.
  prefix_.assign(b.view());
  prefix_.append(index_key);
  tail_ = usage_ == usage_chunk::on ? "],\"usage\":null}" : "]}";
}

void chat_chunk_writer::open_choice(byte_buffer& out, uint32_t choice) const {
  out.append(prefix_);
  json::write_uint64(out, choice);
}

void chat_chunk_writer::close_choice(byte_buffer& out, std::string_view finish_reason_json) const {
  out.append(",\"logprobs\":null,\"finish_reason\":");
  out.append(finish_reason_json);
  out.push_back('}');
  out.append(tail_);
}

void chat_chunk_writer::role(byte_buffer& out, uint32_t choice) const {
  open_choice(out, choice);
  out.append(",\"delta\":{\"role\":\"assistant\",\"content\":\"\"}");
  close_choice(out, "null");
}

void chat_chunk_writer::content(byte_buffer& out, uint32_t choice, std::string_view delta) const {
  out.reserve(out.size() + prefix_.size() + delta.size() + 96);
  open_choice(out, choice);
  out.append(",\"delta\":{\"content\":");
  json::write_string(out, delta);
  out.push_back('}');
  close_choice(out, "null");
}

void chat_chunk_writer::tool_call_begin(byte_buffer& out, uint32_t choice, uint32_t tool_index,
                                        std::string_view call_id, std::string_view name) const {
  open_choice(out, choice);
  out.append(",\"delta\":{\"tool_calls\":[{\"index\":");
  json::write_uint64(out, tool_index);
  out.append(",\"id\":");
  json::write_string(out, call_id);
  out.append(",\"type\":\"function\",\"function\":{\"name\":");
  json::write_string(out, name);
  out.append(",\"arguments\":\"\"}}]}");
  close_choice(out, "null");
}

void chat_chunk_writer::tool_call_arguments(byte_buffer& out, uint32_t choice, uint32_t tool_index,
                                            std::string_view fragment) const {
  open_choice(out, choice);
  out.append(",\"delta\":{\"tool_calls\":[{\"index\":");
  json::write_uint64(out, tool_index);
  out.append(",\"function\":{\"arguments\":");
  json::write_string(out, fragment);
  out.append("}}]}");
  close_choice(out, "null");
}

void chat_chunk_writer::finish(byte_buffer& out, uint32_t choice, finish_reason reason) const {
  open_choice(out, choice);
  out.append(",\"delta\":{}");
  out.append(",\"logprobs\":null,\"finish_reason\":\"");
  out.append(to_string(reason));
  out.append("\"}");
  out.append(tail_);
}

void chat_chunk_writer::usage(byte_buffer& out, const usage_counts& u) const {
  RC_ASSERT(usage_ == usage_chunk::on);
  out.append(std::string_view(prefix_).substr(0, prefix_.size() - index_key.size()));
  out.append("],\"usage\":");
  json::writer w(out);
  write_chat_usage(w, u);
  out.push_back('}');
}

}  // namespace rc::openai
