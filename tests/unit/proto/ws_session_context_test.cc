// ws::session's wslay context exists only while a frame the fast path can't take is in progress
// (control frames, fragments, a close, an error). These tests check when it exists, and that a
// session switching between the fast path and wslay produces exactly the bytes the session
// produced when every session kept a context for its whole life (golden output recorded from
// that implementation), however the input is split.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "proto/ws_session.h"

namespace rc::ws {
namespace {

using namespace std::literals;

const mask_key key = {0x11, 0x22, 0x33, 0x44};

std::string frame(opcode op, std::string_view payload, fin f, bool masked) {
  byte_buffer b;
  if (masked) {
    write_frame(b, op, payload, f, key);
  } else {
    write_frame(b, op, payload, f);
  }
  return std::string(b.view());
}

std::string close_frame(uint16_t code, std::string_view reason, bool masked) {
  std::string payload = {static_cast<char>(code >> 8), static_cast<char>(code)};
  return frame(opcode::close, payload + std::string(reason), fin::yes, masked);
}

std::string hex(std::string_view s) {
  static const char digits[] = "0123456789abcdef";
  std::string h;
  for (unsigned char c : s) h += {digits[c >> 4], digits[c & 15]};
  return h;
}

// An echo peer: every data message is sent back through the session, and the order of what was
// delivered and what the output held at that moment is recorded.
struct echo {
  explicit echo(role r) : s(r, bind_handler<&echo::on>(this), out, {.mask_seed = 42}) {}
  void on(message_kind kind, std::string_view payload) {
    log += std::to_string(static_cast<int>(kind)) + ":" + std::string(payload) + "@" +
           std::to_string(out.size()) + ";";
    if (kind == message_kind::text || kind == message_kind::binary) s.send(kind, payload);
  }
  std::string log;
  byte_buffer out;
  session s;
};

// A conversation that moves between the fast path and wslay: pings between messages, a
// fragmented message with a ping inside, a pong, an empty continuation, then a close.
std::string conversation(bool masked) {
  return frame(opcode::text, "hello", fin::yes, masked) +
         frame(opcode::ping, "p1", fin::yes, masked) +
         frame(opcode::binary, "\x00\x01"s, fin::yes, masked) +
         frame(opcode::text, "frag", fin::no, masked) +
         frame(opcode::ping, "p2", fin::yes, masked) +
         frame(opcode::continuation, "ment", fin::yes, masked) +
         frame(opcode::text, "after", fin::yes, masked) +
         frame(opcode::pong, "x", fin::yes, masked) +
         frame(opcode::binary, "ab", fin::no, masked) +
         frame(opcode::continuation, "", fin::no, masked) +
         frame(opcode::ping, "", fin::yes, masked) +
         frame(opcode::continuation, "cd", fin::yes, masked) +
         frame(opcode::text, std::string(300, 'L'), fin::yes, masked) +
         frame(opcode::text, "bye", fin::yes, masked) + close_frame(1000, "done", masked) +
         frame(opcode::text, "ignored", fin::yes, masked);
}

struct result {
  std::string out;
  std::string log;
  session_state state;
};

// Feeds `in` in pieces cut at `cuts` (offsets, ascending).
result run(role r, std::string_view in, const std::vector<size_t>& cuts) {
  echo e(r);
  size_t at = 0;
  for (size_t cut : cuts) {
    e.s.feed(in.substr(at, cut - at));
    at = cut;
  }
  session_state st = e.s.feed(in.substr(at));
  return {std::string(e.out.view()), e.log, st};
}

// What the session produced for conversation(true) at the server and conversation(false) at a
// client (mask keys from mask_seed 42) before contexts were made on demand.
// The 300-byte text message is its header (0x7e: 16-bit length, masked at the client: its key)
// and 300 'L's (masked: the key's 4-byte pattern 75 times).
std::string repeat(std::string_view s, int n) {
  std::string r;
  for (int i = 0; i < n; ++i) r += s;
  return r;
}
const std::string golden_server_out =
    "810568656c6c6f8a027031820200018a0270328108667261676d656e74810561667465728a0082046162636481"
    "7e012c" +
    repeat("4c", 300) + "8103627965880203e8";
const std::string golden_client_out =
    "8185956eeb2ffd0b8743fa8a8203f166b273c08282529f0f13529e8a8294e34a0ee4d18188f223482494512943"
    "9f462650818506db803c67bdf459748a805d6d37458284a42f9e9ec54dfdfa81fe012cd57d3d0b" +
    repeat("99317147", 75) + "8183ae777f29cc0e1a8882bf195b77bcf1";

void expect_same_for_every_split(role r, std::string_view golden) {
  std::string in = conversation(r == role::server);
  result whole = run(r, in, {});
  EXPECT_EQ(hex(whole.out), golden);
  EXPECT_EQ(whole.state, session_state::closed);
  // Pongs come before the echo of the message they arrived inside.
  EXPECT_NE(whole.log.find("2:p2@"), std::string::npos) << whole.log;
  std::vector<size_t> bytewise;
  for (size_t i = 1; i < in.size(); ++i) bytewise.push_back(i);
  result by_byte = run(r, in, bytewise);
  EXPECT_EQ(by_byte.out, whole.out);
  EXPECT_EQ(by_byte.log, whole.log);
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<size_t> cuts;
    for (size_t i = 1; i < in.size(); ++i) {
      if (rng() % 9 == 0) cuts.push_back(i);
    }
    result split = run(r, in, cuts);
    ASSERT_EQ(split.out, whole.out) << "round " << round;
    ASSERT_EQ(split.log, whole.log) << "round " << round;
  }
}

TEST(WsSessionContext, ServerOutputIsUnchangedForEverySplit) {
  expect_same_for_every_split(role::server, golden_server_out);
}

TEST(WsSessionContext, ClientOutputIsUnchangedForEverySplit) {
  expect_same_for_every_split(role::client, golden_client_out);
}

// The pong for a ping received inside a fragmented message is in the output before that
// message is delivered (an owner that sends data on another lane flushes it first).
TEST(WsSessionContext, PongForPingBetweenFragmentsPrecedesTheMessage) {
  for (bool one_feed : {true, false}) {
    echo e(role::server);
    std::string parts[] = {frame(opcode::text, "Hel", fin::no, true),
                           frame(opcode::ping, "p", fin::yes, true),
                           frame(opcode::continuation, "lo", fin::yes, true)};
    if (one_feed) {
      e.s.feed(parts[0] + parts[1] + parts[2]);
    } else {
      for (auto& p : parts) e.s.feed(p);
    }
    // The ping was delivered with nothing in the output yet; the message after its pong (3 bytes).
    EXPECT_EQ(e.log, "2:p@0;0:Hello@3;");
    EXPECT_EQ(std::string(e.out.view()), frame(opcode::pong, "p", fin::yes, false) +
                                             frame(opcode::text, "Hello", fin::yes, false));
  }
}

TEST(WsSessionContext, WholeMessagesNeedNoContext) {
  echo e(role::server);
  EXPECT_FALSE(e.s.has_context());
  e.s.feed(frame(opcode::text, "a", fin::yes, true) + frame(opcode::binary, "b", fin::yes, true));
  EXPECT_FALSE(e.s.has_context());
  EXPECT_EQ(e.s.buffered_bytes(), 0u);
  // A client's sends don't need one either.
  echo c(role::client);
  EXPECT_TRUE(c.s.send(message_kind::text, "hi"));
  EXPECT_TRUE(c.s.send(message_kind::ping, "p"));
  EXPECT_FALSE(c.s.has_context());
}

TEST(WsSessionContext, MadeForFragmentsAndDroppedAtTheMessageBoundary) {
  echo e(role::server);
  e.s.feed(frame(opcode::text, "Hel", fin::no, true));
  EXPECT_TRUE(e.s.has_context());
  EXPECT_GT(e.s.buffered_bytes(), 0u);
  e.s.feed(frame(opcode::continuation, "lo", fin::yes, true));
  EXPECT_FALSE(e.s.has_context());
  EXPECT_EQ(e.s.buffered_bytes(), 0u);
  EXPECT_EQ(e.log, "0:Hello@0;");
}

TEST(WsSessionContext, MadeForAPingAndDroppedAfterItsPong) {
  echo e(role::server);
  e.s.feed(frame(opcode::ping, "p", fin::yes, true));
  EXPECT_FALSE(e.s.has_context());
  EXPECT_EQ(std::string(e.out.view()), frame(opcode::pong, "p", fin::yes, false));
  // Half a ping keeps it until the rest arrives.
  std::string ping = frame(opcode::ping, "q", fin::yes, true);
  e.s.feed(ping.substr(0, 3));
  EXPECT_TRUE(e.s.has_context());
  e.s.feed(ping.substr(3) + frame(opcode::text, "t", fin::yes, true));
  EXPECT_FALSE(e.s.has_context());
  // A data frame cut by the end of the input goes through wslay too, and is let go once whole.
  std::string text = frame(opcode::text, "cut in two", fin::yes, true);
  e.s.feed(text.substr(0, 8));
  EXPECT_TRUE(e.s.has_context());
  e.s.feed(text.substr(8));
  EXPECT_FALSE(e.s.has_context());
  EXPECT_EQ(e.log, "2:p@0;2:q@3;0:t@6;0:cut in two@9;");
}

TEST(WsSessionContext, KeptOnceClosingOrFailed) {
  echo closing(role::server);
  closing.s.close(1001, "going away");
  EXPECT_TRUE(closing.s.has_context());
  EXPECT_EQ(closing.s.state(), session_state::closing);
  EXPECT_EQ(closing.s.sent_close_code(), 1001);
  closing.s.feed(close_frame(1001, "", true));
  EXPECT_EQ(closing.s.state(), session_state::closed);
  EXPECT_TRUE(closing.s.has_context());

  echo failed(role::server);
  EXPECT_EQ(failed.s.sent_close_code(), close_code::abnormal);
  EXPECT_FALSE(failed.s.close_sent());
  failed.s.feed(frame(opcode::text, "\xff", fin::yes, true));  // invalid UTF-8
  EXPECT_EQ(failed.s.state(), session_state::closed);
  EXPECT_EQ(failed.s.error_code(), close_code::invalid_payload);
  EXPECT_TRUE(failed.s.close_sent());
  EXPECT_EQ(failed.s.sent_close_code(), close_code::invalid_payload);
  EXPECT_FALSE(failed.s.send(message_kind::text, "no"));
}

}  // namespace
}  // namespace rc::ws
