// Fuzz target: an upstream's answer -> the openai engine's codecs. The payload is an SSE stream
// (split at fuzzer-chosen points); each event's data is parsed as JSON and run through the chat
// and Responses decoders, the model rewriter, request forwarding and both translations.
//
// Invariants, beyond "no crash, no leak, no UB":
// * the stream decodes to the same events however it is split;
// * decoded events are well formed: errors have a code and a message; tool calls and deltas
//   carry text or a call header;
// * whatever rewrite_model(), build_*_forward() and the translations produce from a valid JSON
//   object is valid JSON again, and the forwarded request's `model` is the upstream's.
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_split.h"
#include "proto/json_reader.h"
#include "proto/openai_upstream.h"
#include "proto/openai_upstream_decode.h"
#include "proto/sse.h"

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

void check_json(std::string_view text, const char* what) { check(checker().parse(text).ok(), what); }

void check_events(const std::vector<stream_event>& events) {
  for (const stream_event& e : events) {
    if (e.type == stream_event_type::error) {
      check(!e.error_code.empty() && !e.error_message.empty(), "error without code or message");
    }
    if (e.type == stream_event_type::delta) check(!e.text.empty(), "empty delta");
  }
}

// Everything the engine does with one upstream JSON value.
void exercise(std::string_view data) {
  if (data == "[DONE]") return;
  static json::parser p;
  json::parse_result r = p.parse(data);
  if (!r.ok()) return;
  std::vector<stream_event> events;
  chat_decoder chat;
  chat.decode(r.root, events);
  responses_decoder responses;
  responses.decode_event(r.root, events);
  responses.decode_response(r.root, events);
  check_events(events);
  if (!r.root.is_object()) return;

  byte_buffer out;
  check(rewrite_model(data, "client-model", out), "rewrite_model refused an object");
  check_json(out.view(), "rewrite_model output is not JSON");
  out.clear();
  forward_info info;
  check(build_chat_forward(data, "up\"model", out, info), "chat forward refused an object");
  check_json(out.view(), "chat forward is not JSON");
  {
    json::parse_result f = checker().parse(out.view());
    json::value model = f.root.find("model");
    check(model && model.is_string() && model.get_string() == "up\"model", "model not mapped");
  }
  out.clear();
  check(build_responses_forward(data, "up", out, info), "responses forward refused an object");
  check_json(out.view(), "responses forward is not JSON");
  // The parser's document is still `data`'s: translations read it.
  out.clear();
  history_message h{message_role::assistant, "earlier"};
  if (!responses_to_chat(r.root, "up", {&h, 1}, out)) check_json(out.view(), "responses_to_chat is not JSON");
  out.clear();
  if (!chat_to_responses(r.root, "up", out)) check_json(out.view(), "chat_to_responses is not JSON");
}

std::vector<std::string> decode(const std::vector<std::string_view>& chunks) {
  sse::decoder d({.line_bytes_max = 4096, .event_bytes_max = 16384});
  std::vector<std::string> data;
  for (std::string_view c : chunks) {
    if (d.feed(c, [&](const sse::decoded_event& e) { data.emplace_back(e.data); }) !=
        sse::decode_error::none)
      break;
  }
  return data;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  fuzz::split_input in;
  if (!fuzz::parse_split_input(bytes, size, in)) return 0;
  std::vector<std::string> whole = decode({in.payload});
  check(decode(in.chunks) == whole, "split stream decodes differently");
  // Flag bit 0: the payload is one JSON value (a non-streamed answer or a request body).
  if (in.flags & 1) {
    exercise(in.payload);
    return 0;
  }
  for (const std::string& data : whole) exercise(data);
  return 0;
}
