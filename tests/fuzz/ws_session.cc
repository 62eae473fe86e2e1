// Fuzz target: ws::session fed arbitrary bytes (server role, or client role with flag bit 0).
// Invariants: the same messages, output, state and error however the input is split; the output
// is a sequence of whole, well-formed frames of the right masking, with at most one close frame,
// last; text messages are valid UTF-8 and no message exceeds the limit; the output never grows
// beyond what the pings asked for plus one close frame; nothing is delivered or sent after
// `closed`.
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_split.h"
#include "proto/utf8.h"
#include "proto/ws_session.h"

namespace {

using namespace rc::ws;

void check(bool ok) {
  if (!ok) std::abort();
}

struct run_result {
  std::vector<std::pair<message_kind, std::string>> messages;
  std::string output;
  session_state state = session_state::open;
  uint16_t error = 0;
  uint16_t peer_code = 0;
  bool operator==(const run_result&) const = default;
};

struct collector {
  void on(message_kind kind, std::string_view payload) {
    if (kind == message_kind::ping || kind == message_kind::pong) {
      check(payload.size() <= control_payload_bytes_max);  // not counted against the limit
    } else {
      check(payload.size() <= limit);
    }
    if (kind == message_kind::text) check(rc::utf8::valid(payload));
    messages.emplace_back(kind, std::string(payload));
  }
  size_t limit;
  std::vector<std::pair<message_kind, std::string>> messages;
};

run_result run(role r, const std::vector<std::string_view>& chunks, size_t limit) {
  collector c{limit, {}};
  rc::byte_buffer out;
  session s(r, bind_handler<&collector::on>(&c), out, {.message_bytes_max = limit});
  run_result res;
  for (std::string_view chunk : chunks) {
    bool was_closed = s.state() == session_state::closed;
    size_t messages_before = c.messages.size(), out_before = out.size();
    res.state = s.feed(chunk);
    if (was_closed) check(c.messages.size() == messages_before && out.size() == out_before);
  }
  res.messages = std::move(c.messages);
  res.output = std::string(out.view());
  res.error = s.error_code();
  res.peer_code = s.peer_close_code();
  return res;
}

void check_output(std::string_view out, role r, size_t input_bytes) {
  // Pongs are no larger than their pings, except that a client masks them: 4 bytes more for a
  // ping of at least 2 bytes. Then at most one close frame.
  size_t pong_bytes_max = r == role::client ? 3 * input_bytes : input_bytes;
  check(out.size() <= pong_bytes_max + frame_header_bytes_max + control_payload_bytes_max);
  bool closed = false;
  while (!out.empty()) {
    frame_header h;
    check(parse_frame_header(out.data(), out.size(), h) == parse_status::complete);
    check(h.header_bytes + h.payload_bytes <= out.size());
    check(h.fin && h.rsv == 0 && h.masked == (r == role::client));
    check(h.opcode == 0x8 || h.opcode == 0xa);  // only close frames and pongs are sent
    check(h.payload_bytes <= control_payload_bytes_max);
    check(!closed);  // nothing after a close frame
    if (h.opcode == 0x8) {
      check(h.payload_bytes != 1);
      closed = true;
    }
    out.remove_prefix(h.header_bytes + h.payload_bytes);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rc::fuzz::split_input in;
  if (!rc::fuzz::parse_split_input(data, size, in)) return 0;
  role r = (in.flags & 1) ? role::client : role::server;
  size_t limit = (in.flags & 2) ? 1 << 20 : 64;
  run_result whole = run(r, {in.payload}, limit);
  check_output(whole.output, r, in.payload.size());
  // Client frames are masked with keys from the session's generator, seeded alike in every run,
  // so outputs compare byte for byte in both roles.
  run_result split = run(r, in.chunks, limit);
  check(split == whole);
  if (in.payload.size() <= 256) {
    std::vector<std::string_view> bytes;
    for (size_t i = 0; i < in.payload.size(); ++i) bytes.push_back(in.payload.substr(i, 1));
    check(run(r, bytes, limit) == whole);
  }
  return 0;
}
