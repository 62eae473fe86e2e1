// Fuzz target: request bytes -> the OpenAI request parsers (chat, responses, embeddings).
//
// The first byte picks the parser (the rest is the body). Invariants checked, beyond "no
// crash, no leak, no UB":
// * parsing in place (with padding slack) and from a copy gives the same status and result;
// * every error is a well-formed envelope: valid JSON, a non-empty message, status 4xx;
// * every accepted request re-encodes to valid JSON: the strings and raw JSON it keeps (model,
//   message text, tool schemas, formats, metadata) are echoed through the encoders and the
//   output is parsed again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "proto/json_reader.h"
#include "proto/openai_chat.h"
#include "proto/openai_embeddings.h"
#include "proto/openai_responses.h"

namespace {

using namespace rc;
using namespace rc::openai;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    std::abort();
  }
}

json::parser& checker() {
  static json::parser p;
  return p;
}

void check_json(std::string_view text, const char* what) {
  check(checker().parse(text).ok(), what);
  check(text.find('\n') == std::string_view::npos, "encoder output contains a newline");
}

void check_error(const api_error& e) {
  check(!e.message.empty(), "empty error message");
  check(e.status >= 400 && e.status < 500, "request errors are 4xx");
  byte_buffer b;
  write_error(b, e);
  check_json(b.view(), "error envelope is not valid JSON");
}

std::string fingerprint(const std::optional<api_error>& e) {
  return e ? e->message + "|" + e->param.value_or("<null>") + "|" + e->code.value_or("<null>")
           : std::string("ok");
}

void echo_chat(const chat_request& r) {
  completion_header h;
  h.id = "chatcmpl-f";
  h.model = r.model;
  chat_chunk_writer w(h, r.include_usage ? usage_chunk::on : usage_chunk::off);
  byte_buffer b;
  std::vector<chat_choice> choices;
  for (const chat_message& m : r.messages) {
    b.clear();
    w.content(b, 0, m.content);
    check_json(b.view(), "chat chunk");
    choices.push_back({.index = 0,
                       .content = m.content,
                       .tool_calls = m.tool_calls,
                       .finish = finish_reason::stop});
  }
  b.clear();
  write_chat_completion(b, h, choices, {});
  check_json(b.view(), "chat completion");
  for (const function_tool& t : r.tools) {
    if (!t.parameters_json.empty()) check_json(t.parameters_json, "tool parameters");
  }
  if (!r.response_format.raw_json.empty()) check_json(r.response_format.raw_json, "format");
}

void echo_responses(const responses_request& r) {
  response_object o;
  o.id = "resp_f";
  o.settings = r.settings;
  response_event_writer w(o);
  byte_buffer b;
  w.created(b);
  for (const input_item& item : r.input) {
    size_t i = w.begin_message(b, "msg_f");
    w.content_part_added(b, i);
    w.text_delta(b, i, item.text);
    w.text_done(b, i);
    w.content_part_done(b, i);
    w.end_item(b, i);
  }
  b.clear();
  w.completed(b, {}, 2);
  check_json(b.view(), "response.completed");
}

void echo_embeddings(const embeddings_request& r) {
  const float v[] = {0.25f, -1.0f};
  byte_buffer b;
  write_embeddings(b, r.model, v, 2, r.encoding, r.input_count());
  check_json(b.view(), "embeddings");
}

template <class Request, class Parse, class Echo>
void run(Parse parse, Echo echo, const char* data, size_t size) {
  // Copy path: no slack after the body.
  static json::parser copy_parser;
  json::value root;
  Request first;
  std::optional<api_error> e1 = parse_json_body(copy_parser, data, size, size, root);
  if (!e1) e1 = parse(root, first);

  // In-place path: the body followed by padding.
  static json::parser inplace_parser;
  std::vector<char> padded(size + json::padding_bytes, ' ');
  if (size > 0) std::memcpy(padded.data(), data, size);
  Request second;
  std::optional<api_error> e2 =
      parse_json_body(inplace_parser, padded.data(), size, padded.size(), root);
  if (!e2) e2 = parse(root, second);

  check(fingerprint(e1) == fingerprint(e2), "copy and in-place parses disagree");
  if (e1) {
    check_error(*e1);
  } else {
    echo(first);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const char* body = reinterpret_cast<const char*>(data) + 1;
  size_t n = size - 1;
  switch (data[0] % 3) {
    case 0:
      run<chat_request>(parse_chat_request, echo_chat, body, n);
      break;
    case 1:
      run<responses_request>(parse_responses_request, echo_responses, body, n);
      break;
    case 2:
      run<embeddings_request>(parse_embeddings_request, echo_embeddings, body, n);
      break;
  }
  return 0;
}
