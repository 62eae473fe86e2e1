// Forwarded upstream requests (byte-preserving splices) and model names mapped back.
#include <vector>

#include "proto/json_splice.h"
#include "proto/json_writer.h"
#include "proto/openai_upstream.h"

namespace rc::openai {
namespace {

bool is_true(std::optional<std::string_view> v) { return v && *v == "true"; }

std::string quoted(std::string_view s) {
  byte_buffer b;
  json::write_string(b, s);
  return std::string(b.view());
}

}  // namespace

bool build_chat_forward(std::string_view body, std::string_view upstream_model, byte_buffer& out,
                        forward_info& info, forward_stream mode) {
  std::vector<json::member_span> members;
  size_t close = 0;
  if (!json::scan_object(body, members, close)) return false;
  info = {};
  std::optional<std::string_view> options;
  for (const json::member_span& m : members) {
    std::string_view v = body.substr(m.value_begin, m.value_end - m.value_begin);
    if (json::key_equals(m.key, "stream")) info.stream = v == "true";
    if (json::key_equals(m.key, "stream_options")) options = v;
  }
  std::string model = quoted(upstream_model);
  std::vector<json::member_edit> edits{{.key = "model", .value = model}};
  byte_buffer new_options;
  bool forced = mode == forward_stream::always && !info.stream;
  if (forced) edits.push_back({.key = "stream", .value = "true"});
  if (info.stream || forced) {
    bool is_object = options && !options->empty() && options->front() == '{';
    if (is_object) {
      // A client that did not ask for a stream gets no usage chunk whatever its stream_options.
      if (info.stream) info.include_usage = is_true(json::find_member(*options, "include_usage"));
      json::member_edit usage{.key = "include_usage", .value = "true"};
      json::rewrite_object(*options, {&usage, 1}, new_options);
    } else {
      new_options.append(R"({"include_usage":true})");
    }
    edits.push_back({.key = "stream_options", .value = new_options.view()});
  }
  return json::rewrite_object(body, edits, out);
}

bool build_responses_forward(std::string_view body, std::string_view upstream_model,
                             byte_buffer& out, forward_info& info, forward_stream mode) {
  info = {};
  info.stream = is_true(json::find_member(body, "stream"));
  std::string model = quoted(upstream_model);
  std::vector<json::member_edit> edits{{.key = "model", .value = model}};
  if (mode == forward_stream::always && !info.stream) edits.push_back({.key = "stream", .value = "true"});
  return json::rewrite_object(body, edits, out);
}

bool rewrite_model(std::string_view text, std::string_view client_model, byte_buffer& out) {
  // Once per relayed chunk: the scans reuse per-thread buffers instead of allocating.
  thread_local std::vector<json::member_span> top, inner;
  thread_local byte_buffer model, nested;
  size_t close = 0;
  if (!json::scan_object(text, top, close)) return false;
  model.clear();
  json::write_string(model, client_model);
  json::member_edit edits[2] = {{.key = "model", .value = model.view(), .append_if_absent = false}};
  size_t n = 1;
  // A Responses event carries the response object (with its model) in `response` (the last
  // duplicate's rewritten text replaces every duplicate).
  std::optional<std::string_view> response;
  for (const json::member_span& m : top) {
    if (json::key_equals(m.key, "response"))
      response = text.substr(m.value_begin, m.value_end - m.value_begin);
  }
  size_t inner_close = 0;
  if (response && !response->empty() && response->front() == '{' &&
      json::scan_object(*response, inner, inner_close)) {
    nested.clear();
    json::rewrite_scanned(*response, inner, inner_close, {edits, 1}, nested);
    edits[n++] = {.key = "response", .value = nested.view(), .append_if_absent = false};
  }
  json::rewrite_scanned(text, top, close, {edits, n}, out);
  return true;
}

}  // namespace rc::openai
