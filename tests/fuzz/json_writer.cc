// Fuzz target: the JSON writer's string escaping and the reader's re-encoding.
//
// Invariants:
// * write_string() of any bytes is one valid JSON string without raw CR/LF; when the input is
//   valid UTF-8 (which the reader decides independently), it decodes back to the same bytes;
// * for input that parses as JSON, value::write_to() is valid JSON and idempotent (encoding
//   the re-parsed encoding gives the same bytes).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "proto/json_reader.h"
#include "proto/json_writer.h"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rc;
  static json::parser p;
  std::string_view in(reinterpret_cast<const char*>(data), size);

  byte_buffer quoted;
  json::write_string(quoted, in);
  check(quoted.view().find('\n') == std::string_view::npos, "raw LF in output");
  check(quoted.view().find('\r') == std::string_view::npos, "raw CR in output");
  json::parse_result r = p.parse(quoted.view());
  check(r.ok() && r.root.is_string(), "write_string output does not parse as a string");
  std::string decoded(r.root.get_string());

  // Ask the reader whether the raw input was valid UTF-8 (a JSON string with the bytes inside
  // is rejected exactly when it is not, once the bytes that need escaping are ruled out).
  bool plain = true;
  for (unsigned char c : in) plain = plain && c >= 0x20 && c != '"' && c != '\\';
  if (plain) {
    std::string raw = "\"" + std::string(in) + "\"";
    bool valid_utf8 = p.parse(raw).ok();
    check(valid_utf8 == (decoded == in), "valid UTF-8 must round-trip, invalid must not");
  }

  json::parse_result doc = p.parse(in);
  if (doc.ok()) {
    std::string once = doc.root.to_json();
    json::parse_result again = p.parse(once);
    check(again.ok(), "re-encoded document does not parse");
    check(again.root.to_json() == once, "re-encoding is not idempotent");
  }
  return 0;
}
