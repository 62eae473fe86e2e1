// Fuzz target: the permessage-deflate inflate path (ws_deflate.h) and its negotiation parser.
// flags bit 0 clear: a ws::session (server role, permessage-deflate negotiated) fed the stream in
//   fuzzer-chosen chunks. Invariants: the same messages, output, state and error however the
//   input is split; no message exceeds the limit (inflated size); text messages are valid UTF-8;
//   errors are only the codes the session may send.
// flags bit 0 set: the payload is one compressed message for the inflater, and a
//   Sec-WebSocket-Extensions header for the negotiation. Invariants: ok output fits the limit and
//   survives a deflate/inflate round trip (also through a stored-block prefix, as fan-out sends
//   it); a failure leaves the inflater usable; a negotiated answer parses back as the same
//   agreement.
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_split.h"
#include "proto/utf8.h"
#include "proto/ws_deflate.h"
#include "proto/ws_session.h"

namespace {

using namespace rc::ws;

void check(bool ok) {
  if (!ok) std::abort();
}

constexpr size_t limit = 64 * 1024;

struct collector {
  void on(message_kind kind, std::string_view payload) {
    if (kind == message_kind::text || kind == message_kind::binary) check(payload.size() <= limit);
    if (kind == message_kind::text) check(rc::utf8::valid(payload));
    messages.emplace_back(kind, std::string(payload));
  }
  std::vector<std::pair<message_kind, std::string>> messages;
};

struct run_result {
  std::vector<std::pair<message_kind, std::string>> messages;
  std::string output;
  uint16_t error = 0;
  session_state state = session_state::open;
  bool operator==(const run_result&) const = default;
};

run_result run(inflater& inf, const std::vector<std::string_view>& chunks) {
  collector c;
  rc::byte_buffer out;
  session s(role::server, bind_handler<&collector::on>(&c), out,
            {.message_bytes_max = limit, .inflate = &inf});
  run_result r;
  for (std::string_view chunk : chunks) r.state = s.feed(chunk);
  r.messages = std::move(c.messages);
  r.output = std::string(out.view());
  r.error = s.error_code();
  check(r.error == 0 || r.error == close_code::protocol_error ||
        r.error == close_code::invalid_payload || r.error == close_code::message_too_big ||
        r.error == close_code::policy_violation || r.error == close_code::internal_error);
  return r;
}

void fuzz_session(const rc::fuzz::split_input& in) {
  static inflater inf;
  run_result whole = run(inf, {in.payload});
  run_result split = run(inf, in.chunks);
  check(whole == split);
}

void fuzz_codec(std::string_view payload) {
  static inflater inf;
  static deflater def(15, 8);
  inflate_status st = inf.inflate(payload, limit);
  if (st == inflate_status::ok) {
    std::string plain(inf.output());
    check(plain.size() <= limit);
    rc::byte_buffer z;
    def.compress(plain, z, deflate_context::reset);
    check(inf.inflate(z.view(), limit) == inflate_status::ok && inf.output() == plain);
    // Fan-out's shape: a stored block, then a separately compressed stream.
    rc::byte_buffer two;
    write_stored_block(two, std::string_view(plain).substr(0, plain.size() / 2));
    rc::byte_buffer tail;
    def.compress(std::string_view(plain).substr(plain.size() / 2), tail, deflate_context::reset);
    two.append(tail.view());
    check(inf.inflate(two.view(), limit) == inflate_status::ok && inf.output() == plain);
  } else {
    // RFC 7692 §7.2.3.6: an empty message compresses to one 0x00 byte.
    check(inf.inflate(std::string_view("\0", 1), limit) == inflate_status::ok &&
          inf.output().empty());
  }

  auto a = negotiate_deflate(payload, {.window_bits = 12});
  if (a) {
    check(a->client_no_context_takeover);
    check(a->server_window_bits >= deflate_window_bits_min && a->server_window_bits <= 12);
    rc::byte_buffer answer;
    write_deflate_answer(answer, *a);
    auto back = parse_deflate_answer(answer.view());
    check(back.has_value());
    check(back->server_no_context_takeover == a->server_no_context_takeover);
    check(back->client_no_context_takeover);
    if (a->answer_server_max_window_bits) check(back->server_window_bits == a->server_window_bits);
  }
  (void)parse_deflate_answer(payload);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rc::fuzz::split_input in;
  if (!rc::fuzz::parse_split_input(data, size, in)) return 0;
  if (in.flags & 1) {
    fuzz_codec(in.payload);
  } else {
    fuzz_session(in);
  }
  return 0;
}
