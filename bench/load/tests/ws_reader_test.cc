#include "load/ws_reader.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "guard_page.h"
#include "proto/ws.h"

namespace rc::load {
namespace {

struct collector {
  std::vector<std::string> events;
  void on(ws_event kind, std::string_view payload) {
    static const char* names[] = {"text", "binary", "ping", "pong", "close"};
    events.push_back(std::string(names[static_cast<int>(kind)]) + ":" + std::string(payload));
  }
};

std::string frame(ws::opcode op, std::string_view payload, ws::fin f = ws::fin::yes) {
  byte_buffer b;
  ws::write_frame(b, op, payload, f);
  return std::string(b.view());
}

// Feeds the chunks; returns the events, or "error:<what>" last on failure.
std::vector<std::string> read_all(const std::vector<std::string_view>& chunks,
                                  uint64_t max = 1 << 20) {
  ws_reader r(max);
  collector c;
  for (std::string_view chunk : chunks) {
    if (!r.feed(chunk, bind_sink<&collector::on>(&c))) {
      c.events.push_back("error:" + std::string(describe(r.error())));
      break;
    }
  }
  return c.events;
}

// A subscriber's stream: a fragmented delivery, a ping in between, a large binary message.
std::string sample_stream() {
  return frame(ws::opcode::text, "{\"id\":\"s\",", ws::fin::no) + frame(ws::opcode::ping, "p") +
         frame(ws::opcode::continuation, "\"event\":\"message\"}") +
         frame(ws::opcode::binary, std::string(70000, 'b')) + frame(ws::opcode::text, "end");
}

TEST(WsReader, ReassemblesFragmentsAroundControlFrames) {
  auto events = read_all({sample_stream()});
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0], "ping:p");
  EXPECT_EQ(events[1], "text:{\"id\":\"s\",\"event\":\"message\"}");
  EXPECT_EQ(events[2], "binary:" + std::string(70000, 'b'));
  EXPECT_EQ(events[3], "text:end");
}

TEST(WsReader, AnySplitReadsTheSame) {
  std::string s = sample_stream();
  auto whole = read_all({s});
  std::string_view v = s;
  for (size_t i = 0; i <= s.size(); i += (i < 100 || i > s.size() - 100) ? 1 : 997)
    ASSERT_EQ(read_all({v.substr(0, i), v.substr(i)}), whole) << "split at " << i;
  std::vector<std::string_view> small;
  for (size_t i = 0; i < s.size(); i += 7) small.push_back(v.substr(i, 7));
  EXPECT_EQ(read_all(small), whole);
}

TEST(WsReader, RejectsWhatAServerMustNotSend) {
  byte_buffer masked;
  ws::write_frame(masked, ws::opcode::text, "hi", ws::fin::yes, ws::mask_key{1, 2, 3, 4});
  EXPECT_EQ(read_all({masked.view()}).back(), "error:masked frame from the server");
  EXPECT_EQ(read_all({frame(ws::opcode::continuation, "x")}).back(),
            "error:unexpected continuation or data frame");
  EXPECT_EQ(
      read_all({frame(ws::opcode::text, "a", ws::fin::no) + frame(ws::opcode::text, "b")}).back(),
      "error:unexpected continuation or data frame");
  std::string rsv = frame(ws::opcode::text, "x");
  rsv[0] = static_cast<char>(rsv[0] | 0x40);
  EXPECT_EQ(read_all({rsv}).back(), "error:RSV bits set");
  std::string reserved = frame(ws::opcode::text, "x");
  reserved[0] = static_cast<char>((reserved[0] & 0xf0) | 0x3);
  EXPECT_EQ(read_all({reserved}).back(), "error:reserved opcode");
  std::string fragmented_ping = frame(ws::opcode::text, "x");
  fragmented_ping[0] = 0x09;  // ping without FIN
  EXPECT_EQ(read_all({fragmented_ping}).back(), "error:fragmented or oversized control frame");
  EXPECT_EQ(read_all({frame(ws::opcode::binary, std::string(100, 'x'))}, 99).back(),
            "error:message too big");
  EXPECT_EQ(read_all({frame(ws::opcode::text, std::string(60, 'x'), ws::fin::no) +
                      frame(ws::opcode::continuation, std::string(60, 'x'))},
                     100)
                .back(),
            "error:message too big");
  // A 16-bit length used for a payload that fits in 7 bits is not minimal.
  EXPECT_EQ(read_all({std::string("\x81\x7e\x00\x05hello", 9)}).back(),
            "error:malformed frame header");
}

TEST(WsReader, StaysFailedAfterAnError) {
  ws_reader r;
  collector c;
  EXPECT_FALSE(r.feed(frame(ws::opcode::continuation, "x"), bind_sink<&collector::on>(&c)));
  EXPECT_FALSE(r.feed(frame(ws::opcode::text, "x"), bind_sink<&collector::on>(&c)));
  EXPECT_TRUE(c.events.empty());
}

TEST(WsReader, NeverReadsPastTheInput) {
  std::string s = frame(ws::opcode::text, "{\"id\":\"s\",", ws::fin::no) +
                  frame(ws::opcode::continuation, "tail") + frame(ws::opcode::text, "x");
  for (size_t n = 0; n <= s.size(); ++n) {
    testing::guarded_bytes g(std::string_view(s).substr(0, n));
    read_all({g.view()});
  }
}

// --deflate: RSV1 messages are inflated, whole or fragmented, with or without server context;
// bad compressed data and inflated sizes over the limit are errors.
std::string zframe(std::string_view compressed, ws::opcode op = ws::opcode::text,
                   ws::fin f = ws::fin::yes) {
  byte_buffer b;
  ws::write_compressed_frame(b, op, compressed, f);
  return std::string(b.view());
}

std::vector<std::string> read_inflating(const std::vector<std::string>& chunks,
                                        ws::deflate_context c, uint64_t max = 1 << 20) {
  ws_reader r(max);
  ws::inflater inf;
  r.set_inflate(&inf, c);
  collector col;
  for (const std::string& chunk : chunks) {
    if (!r.feed(chunk, bind_sink<&collector::on>(&col))) {
      col.events.push_back("error:" + std::string(describe(r.error())));
      break;
    }
  }
  return col.events;
}

TEST(WsReader, InflatesPermessageDeflate) {
  ws::deflater d(15, 8);
  auto z = [&](std::string_view m, ws::deflate_context c) {
    byte_buffer out;
    d.compress(m, out, c);
    return std::string(out.view());
  };
  std::string msg = "{\"id\":\"s\",\"event\":\"message\",\"data\":\"" + std::string(500, 'q') + "\"}";
  std::string once = z(msg, ws::deflate_context::reset);
  std::string stream = zframe(once) + frame(ws::opcode::text, "plain") +
                       zframe(once.substr(0, 7), ws::opcode::text, ws::fin::no) +
                       frame(ws::opcode::ping, "p") +
                       frame(ws::opcode::continuation, once.substr(7));
  EXPECT_EQ(read_inflating({stream}, ws::deflate_context::reset),
            (std::vector<std::string>{"text:" + msg, "text:plain", "ping:p", "text:" + msg}));
  // A server that keeps its context: the second message refers to the first.
  std::string a = z(msg, ws::deflate_context::keep), b = z(msg, ws::deflate_context::keep);
  EXPECT_EQ(read_inflating({zframe(a), zframe(b)}, ws::deflate_context::keep),
            (std::vector<std::string>{"text:" + msg, "text:" + msg}));
  EXPECT_EQ(read_inflating({zframe("\xff\xff\xff")}, ws::deflate_context::reset).back(),
            "error:bad compressed message (permessage-deflate)");
  EXPECT_EQ(read_inflating({zframe(once)}, ws::deflate_context::reset, 100).back(),
            "error:bad compressed message (permessage-deflate)");
  // RSV1 on a continuation is still an error.
  std::string cont = frame(ws::opcode::text, "a", ws::fin::no) + frame(ws::opcode::continuation, once);
  cont[3] = static_cast<char>(cont[3] | 0x40);
  EXPECT_EQ(read_inflating({cont}, ws::deflate_context::reset).back(), "error:RSV bits set");
}

}  // namespace
}  // namespace rc::load
