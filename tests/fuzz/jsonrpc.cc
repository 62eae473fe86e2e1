// Fuzz target: the JSON-RPC framer (both framings) and parser. Invariants: any split of the
// stream frames to the same messages and the same final status as the whole stream; messages
// respect the limit (and hold no '\n' in line framing); messages re-framed read back the same;
// every message the parser accepts, re-encoded with the writers, parses to the same message.
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_split.h"
#include "proto/jsonrpc.h"

namespace {

using rc::jsonrpc::framer;
using rc::jsonrpc::framing;

void check(bool ok) {
  if (!ok) std::abort();
}

struct outcome {
  std::vector<std::string> messages;
  framer::status last = framer::status::need_more;
  bool operator==(const outcome&) const = default;
};

outcome run(framing f, size_t max, const std::vector<std::string_view>& chunks) {
  framer fr(f, max);
  outcome o;
  for (std::string_view c : chunks) {
    fr.feed(c);
    std::string_view m;
    while ((o.last = fr.next(m)) == framer::status::message) {
      check(m.size() <= max);
      if (f == framing::lines) check(m.find('\n') == std::string_view::npos && !m.empty());
      o.messages.emplace_back(m);
    }
    if (o.last != framer::status::need_more) break;
  }
  return o;
}

void check_reframe(framing f, size_t max, const outcome& o) {
  std::string stream;
  std::vector<std::string> expect;
  for (const std::string& m : o.messages) {
    // Line framing cannot carry a trailing '\r' or a blank line; skip those.
    if (f == framing::lines && (m.back() == '\r' || m.find_first_not_of(" \t\r") == m.npos)) {
      continue;
    }
    rc::jsonrpc::frame(f, m, stream);
    expect.push_back(m);
  }
  outcome again = run(f, max, {stream});
  check(again.messages == expect && again.last == framer::status::need_more);
}

void check_parse(rc::jsonrpc::parser& p, std::string_view text) {
  rc::jsonrpc::message m, back;
  std::string error;
  if (!p.parse(text, m, error)) {
    check(!error.empty());
    return;
  }
  std::string out;
  using rc::jsonrpc::kind;
  switch (m.type) {
    case kind::request:
      if (!m.id_number) return;
      rc::jsonrpc::write_request(out, *m.id_number, m.method, m.params);
      break;
    case kind::notification:
      rc::jsonrpc::write_notification(out, m.method, m.params, false);
      break;
    case kind::response:
      rc::jsonrpc::write_result(out, m.id, m.result);
      break;
    case kind::error:
      rc::jsonrpc::write_error(out, m.id, m.error_code, m.error_message, m.error_data);
      break;
  }
  // Copy what we compare: the views die with the next parse.
  std::string id(m.id), method(m.method), params(m.params.empty() ? "{}" : m.params),
      result(m.result), message(m.error_message), data(m.error_data);
  check(p.parse(out, back, error));
  check(back.type == m.type && back.id_number == m.id_number && back.method == method);
  if (m.type != kind::notification) check(back.id == id);
  if (m.type == kind::request || m.type == kind::notification) check(back.params == params);
  check(back.result == result && back.error_message == message && back.error_data == data);
  check(back.error_code == m.error_code);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rc::fuzz::split_input in;
  if (!rc::fuzz::parse_split_input(data, size, in)) return 0;
  framing f = (in.flags & 1) ? framing::content_length : framing::lines;
  size_t max = (in.flags & 2) ? 4096 : 48;
  outcome whole = run(f, max, {in.payload});
  check(run(f, max, in.chunks) == whole);
  if (in.payload.size() <= 256) {
    std::vector<std::string_view> bytes;
    for (size_t i = 0; i < in.payload.size(); ++i) bytes.push_back(in.payload.substr(i, 1));
    check(run(f, max, bytes) == whole);
  }
  check_reframe(f, max, whole);
  rc::jsonrpc::parser p;
  for (const std::string& m : whole.messages) check_parse(p, m);
  // The whole payload as one message, too: the parser sees inputs the framer would cut.
  check_parse(p, in.payload);
  return 0;
}
