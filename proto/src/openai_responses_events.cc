// The Responses streaming events: one JSON value per call, in the order the header documents.
#include "base/assert.h"
#include "openai_responses_detail.h"
#include "proto/openai_responses.h"

namespace rc::openai {

using detail::write_output_item;
using detail::write_text_part;

response_event_writer::response_event_writer(response_object r) : r_(std::move(r)) {
  r_.status = response_status::in_progress;
  RC_ASSERT(r_.output.empty());
}

void response_event_writer::open_event(json::writer& w, std::string_view type) {
  w.begin_object();
  w.string_member("type", type);
  w.uint64_member("sequence_number", sequence_++);
}

void response_event_writer::write_response_event(byte_buffer& out, std::string_view type) {
  json::writer w(out);
  open_event(w, type);
  w.key("response");
  write_response(w, r_);
  w.end_object();
}

void response_event_writer::created(byte_buffer& out) {
  RC_ASSERT(sequence_ == 0);
  write_response_event(out, response_event::created);
}

void response_event_writer::in_progress(byte_buffer& out) {
  RC_ASSERT(!terminal_);
  write_response_event(out, response_event::in_progress);
}

output_item& response_event_writer::item(size_t output_index, output_item_type type) {
  RC_ASSERT(!terminal_ && output_index < r_.output.size());
  output_item& it = r_.output[output_index];
  RC_ASSERT(it.type == type);
  return it;
}

size_t response_event_writer::begin_message(byte_buffer& out, std::string item_id) {
  RC_ASSERT(!terminal_);
  output_item it;
  it.type = output_item_type::message;
  it.id = std::move(item_id);
  r_.output.push_back(std::move(it));
  phases_.push_back(phase::added);
  size_t index = r_.output.size() - 1;
  json::writer w(out);
  open_event(w, response_event::output_item_added);
  w.uint64_member("output_index", index);
  w.key("item");
  write_output_item(w, r_.output[index]);
  w.end_object();
  return index;
}

void response_event_writer::content_part_added(byte_buffer& out, size_t output_index) {
  output_item& it = item(output_index, output_item_type::message);
  RC_ASSERT(phases_[output_index] == phase::added);
  phases_[output_index] = phase::part_added;
  json::writer w(out);
  open_event(w, response_event::content_part_added);
  w.string_member("item_id", it.id);
  w.uint64_member("output_index", output_index);
  w.uint64_member("content_index", 0);
  w.key("part");
  write_text_part(w, "");
  w.end_object();
}

void response_event_writer::text_delta(byte_buffer& out, size_t output_index,
                                       std::string_view delta) {
  output_item& it = item(output_index, output_item_type::message);
  RC_ASSERT(phases_[output_index] == phase::part_added);
  it.text.append(delta);
  // The per-token path: appended by hand (the writer's bookkeeping buys nothing here).
  out.reserve(out.size() + it.id.size() + delta.size() + 160);
  out.append("{\"type\":\"response.output_text.delta\",\"sequence_number\":");
  json::write_uint64(out, sequence_++);
  out.append(",\"item_id\":");
  json::write_string(out, it.id);
  out.append(",\"output_index\":");
  json::write_uint64(out, output_index);
  out.append(",\"content_index\":0,\"delta\":");
  json::write_string(out, delta);
  out.append(",\"logprobs\":[]}");
}

void response_event_writer::text_done(byte_buffer& out, size_t output_index) {
  output_item& it = item(output_index, output_item_type::message);
  RC_ASSERT(phases_[output_index] == phase::part_added);
  phases_[output_index] = phase::text_done;
  json::writer w(out);
  open_event(w, response_event::output_text_done);
  w.string_member("item_id", it.id);
  w.uint64_member("output_index", output_index);
  w.uint64_member("content_index", 0);
  w.string_member("text", it.text);
  w.key("logprobs");
  w.begin_array();
  w.end_array();
  w.end_object();
}

void response_event_writer::content_part_done(byte_buffer& out, size_t output_index) {
  output_item& it = item(output_index, output_item_type::message);
  RC_ASSERT(phases_[output_index] == phase::text_done);
  phases_[output_index] = phase::part_done;
  json::writer w(out);
  open_event(w, response_event::content_part_done);
  w.string_member("item_id", it.id);
  w.uint64_member("output_index", output_index);
  w.uint64_member("content_index", 0);
  w.key("part");
  write_text_part(w, it.text);
  w.end_object();
}

size_t response_event_writer::begin_function_call(byte_buffer& out, std::string item_id,
                                                  std::string call_id, std::string name) {
  RC_ASSERT(!terminal_);
  output_item it;
  it.type = output_item_type::function_call;
  it.id = std::move(item_id);
  it.call_id = std::move(call_id);
  it.name = std::move(name);
  r_.output.push_back(std::move(it));
  phases_.push_back(phase::added);
  size_t index = r_.output.size() - 1;
  json::writer w(out);
  open_event(w, response_event::output_item_added);
  w.uint64_member("output_index", index);
  w.key("item");
  write_output_item(w, r_.output[index]);
  w.end_object();
  return index;
}

void response_event_writer::arguments_delta(byte_buffer& out, size_t output_index,
                                            std::string_view delta) {
  output_item& it = item(output_index, output_item_type::function_call);
  RC_ASSERT(phases_[output_index] == phase::added);
  it.arguments.append(delta);
  json::writer w(out);
  open_event(w, response_event::arguments_delta);
  w.string_member("item_id", it.id);
  w.uint64_member("output_index", output_index);
  w.string_member("delta", delta);
  w.end_object();
}

void response_event_writer::arguments_done(byte_buffer& out, size_t output_index) {
  output_item& it = item(output_index, output_item_type::function_call);
  RC_ASSERT(phases_[output_index] == phase::added);
  phases_[output_index] = phase::args_done;
  json::writer w(out);
  open_event(w, response_event::arguments_done);
  w.string_member("item_id", it.id);
  w.uint64_member("output_index", output_index);
  w.string_member("name", it.name);
  w.string_member("arguments", it.arguments);
  w.end_object();
}

void response_event_writer::end_item(byte_buffer& out, size_t output_index) {
  RC_ASSERT(!terminal_ && output_index < r_.output.size());
  output_item& it = r_.output[output_index];
  RC_ASSERT(phases_[output_index] ==
            (it.type == output_item_type::message ? phase::part_done : phase::args_done));
  phases_[output_index] = phase::done;
  it.status = item_status::completed;
  json::writer w(out);
  open_event(w, response_event::output_item_done);
  w.uint64_member("output_index", output_index);
  w.key("item");
  write_output_item(w, it);
  w.end_object();
}

void response_event_writer::finish_open_items() {
  for (size_t i = 0; i < r_.output.size(); ++i) {
    if (phases_[i] != phase::done) r_.output[i].status = item_status::incomplete;
  }
}

void response_event_writer::completed(byte_buffer& out, const usage_counts& usage,
                                      int64_t completed_at) {
  RC_ASSERT(!terminal_);
  finish_open_items();
  r_.status = response_status::completed;
  r_.usage = usage;
  r_.completed_at = completed_at;
  write_response_event(out, response_event::completed);
  terminal_ = true;
}

void response_event_writer::incomplete(byte_buffer& out, std::string_view reason,
                                       const usage_counts& usage) {
  RC_ASSERT(!terminal_);
  finish_open_items();
  r_.status = response_status::incomplete;
  r_.incomplete_reason.assign(reason);
  r_.usage = usage;
  write_response_event(out, response_event::incomplete);
  terminal_ = true;
}

void response_event_writer::failed(byte_buffer& out, std::string_view code,
                                   std::string_view message) {
  RC_ASSERT(!terminal_);
  finish_open_items();
  r_.status = response_status::failed;
  r_.error_code.assign(code);
  r_.error_message.assign(message);
  write_response_event(out, response_event::failed);
  terminal_ = true;
}

void response_event_writer::error(byte_buffer& out, const api_error& e) {
  json::writer w(out);
  w.begin_object();
  w.string_member("type", response_event::error);
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
  w.uint64_member("sequence_number", sequence_++);
  w.end_object();
}

}  // namespace rc::openai
