// Fuzz target: the SSE decoder. Invariants: any split of the stream decodes to the same events
// and the same error as the whole stream; events respect the limits and contain no CR; an event
// re-encoded with the SSE encoder decodes to itself.
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_split.h"
#include "proto/sse.h"

namespace {

using rc::sse::decoded_event;
using rc::sse::decoder;
using rc::sse::decoder_limits;

struct event_copy {
  std::string type, data, id;
  bool operator==(const event_copy&) const = default;
};

struct outcome {
  std::vector<event_copy> events;
  rc::sse::decode_error error = rc::sse::decode_error::none;
  std::string last_id;
  bool operator==(const outcome&) const = default;
};

void check(bool ok) {
  if (!ok) std::abort();
}

outcome run(const std::vector<std::string_view>& chunks, decoder_limits limits) {
  decoder d(limits);
  outcome o;
  for (std::string_view c : chunks) {
    o.error = d.feed(c, [&](const decoded_event& e) {
      check(e.data.size() < limits.event_bytes_max);
      check(e.data.find('\r') == std::string_view::npos);
      check(e.type.find_first_of("\r\n") == std::string_view::npos);
      check(e.id.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos);
      o.events.push_back({std::string(e.type), std::string(e.data), std::string(e.id)});
    });
    if (o.error != rc::sse::decode_error::none) break;
  }
  o.last_id = std::string(d.last_event_id());
  return o;
}

// Encodes e and decodes it again with a fresh decoder.
void check_round_trip(const event_copy& e) {
  if (!rc::sse::valid_field(e.type)) return;  // a type may hold NUL, which we never send
  rc::byte_buffer b;
  rc::sse::write_event(b, {.id = e.id, .type = e.type == "message" ? "" : e.type, .data = e.data});
  outcome again = run({b.view()}, {.line_bytes_max = 1 << 20, .event_bytes_max = 1 << 20});
  check(again.events.size() == 1 && again.events[0] == e);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rc::fuzz::split_input in;
  if (!rc::fuzz::parse_split_input(data, size, in)) return 0;
  // Small limits so the fuzzer reaches the error paths; flag bit 0 picks generous ones.
  decoder_limits limits = (in.flags & 1)
                              ? decoder_limits{.line_bytes_max = 4096, .event_bytes_max = 8192}
                              : decoder_limits{.line_bytes_max = 64, .event_bytes_max = 128};
  outcome whole = run({in.payload}, limits);
  outcome split = run(in.chunks, limits);
  check(whole == split);
  std::vector<std::string_view> bytes;
  if (in.payload.size() <= 512) {
    for (size_t i = 0; i < in.payload.size(); ++i) bytes.push_back(in.payload.substr(i, 1));
    check(run(bytes, limits) == whole);
  }
  for (const event_copy& e : whole.events) check_round_trip(e);
  return 0;
}
