// ws::session with permessage-deflate negotiated (session_options::inflate).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proto/ws_deflate.h"
#include "proto/ws_session.h"

namespace rc::ws {
namespace {

using namespace std::literals;

const mask_key key = {0x11, 0x22, 0x33, 0x44};

struct server_side {
  explicit server_side(inflater* inf, size_t message_bytes_max = 1 << 20)
      : s(role::server, bind_handler<&server_side::on>(this), out,
          session_options{.message_bytes_max = message_bytes_max, .inflate = inf}) {}
  void on(message_kind kind, std::string_view payload) {
    if (kind == message_kind::text || kind == message_kind::binary) {
      got.push_back((kind == message_kind::text ? "t:" : "b:") + std::string(payload));
    } else if (kind == message_kind::ping) {
      got.push_back("ping");
    }
  }
  std::vector<std::string> got;
  byte_buffer out;
  session s;
};

std::string deflated(std::string_view m) {
  static deflater d(15, 8);
  byte_buffer out;
  d.compress(m, out, deflate_context::reset);
  return std::string(out.view());
}

// A client frame with the given RSV bits (in the header's first byte).
std::string cframe(opcode op, std::string_view payload, fin f = fin::yes, uint8_t rsv = 0) {
  byte_buffer b;
  write_frame(b, op, payload, f, key);
  std::string s(b.view());
  s[0] = static_cast<char>(s[0] | rsv);
  return s;
}

std::string ctext_z(std::string_view m) {
  return cframe(opcode::text, deflated(m), fin::yes, rsv1_bit);
}

TEST(WsSessionDeflate, WholeCompressedMessagesOnTheFastPath) {
  inflater inf;
  server_side srv(&inf);
  std::string big(5000, 'q');
  srv.s.feed(ctext_z("hello") + cframe(opcode::text, "plain") +
             cframe(opcode::binary, deflated(big), fin::yes, rsv1_bit));
  EXPECT_EQ(srv.got, (std::vector<std::string>{"t:hello", "t:plain", "b:" + big}));
  EXPECT_EQ(srv.s.error_code(), 0);
  EXPECT_EQ(srv.s.state(), session_state::open);
}

TEST(WsSessionDeflate, FragmentedAndSplitCompressedMessagesGoThroughWslay) {
  inflater inf;
  server_side srv(&inf);
  std::string m = "{\"action\":\"publish\",\"payload\":\"" + std::string(3000, 'x') + "\"}";
  std::string z = deflated(m);
  std::string a = z.substr(0, z.size() / 3), b = z.substr(z.size() / 3);
  // RSV1 on the first fragment only; a ping between the fragments.
  std::string wire = cframe(opcode::text, a, fin::no, rsv1_bit) + cframe(opcode::ping, "p") +
                     cframe(opcode::continuation, b);
  for (size_t i = 0; i < wire.size(); i += 7) srv.s.feed(std::string_view(wire).substr(i, 7));
  EXPECT_EQ(srv.got, (std::vector<std::string>{"ping", "t:" + m}));
  // And a whole compressed frame split across reads.
  std::string one = ctext_z("split in two");
  srv.s.feed(one.substr(0, 5));
  srv.s.feed(one.substr(5));
  EXPECT_EQ(srv.got.back(), "t:split in two");
  EXPECT_EQ(srv.s.error_code(), 0);
}

// wslay reads ahead of the messages it delivers: whether a message is compressed must follow
// the message, not the last header taken (found by the fuzz target).
TEST(WsSessionDeflate, CompressionIsPerMessageWhenWslayReadsAhead) {
  inflater inf;
  server_side srv(&inf);
  std::string wire = cframe(opcode::text, "one") + cframe(opcode::binary, "two") +
                     ctext_z("three") + cframe(opcode::text, "four") +
                     cframe(opcode::binary, deflated("five"), fin::yes, rsv1_bit) +
                     cframe(opcode::text, "\xff not compressed, not UTF-8");
  srv.s.feed(wire.substr(0, 1));  // a header cut in two: wslay takes the rest
  srv.s.feed(wire.substr(1));
  EXPECT_EQ(srv.got,
            (std::vector<std::string>{"t:one", "b:two", "t:three", "t:four", "b:five"}));
  EXPECT_EQ(srv.s.error_code(), close_code::invalid_payload);  // wslay still checks plain text
}

TEST(WsSessionDeflate, Rsv1WhereItDoesNotBelongIsAProtocolError) {
  inflater inf;
  {
    server_side srv(nullptr);  // not negotiated
    srv.s.feed(ctext_z("x"));
    EXPECT_EQ(srv.s.error_code(), close_code::protocol_error);
    EXPECT_TRUE(srv.got.empty());
  }
  {
    server_side srv(&inf);  // on a continuation frame
    srv.s.feed(cframe(opcode::text, "a", fin::no) +
               cframe(opcode::continuation, deflated("b"), fin::yes, rsv1_bit));
    EXPECT_EQ(srv.s.error_code(), close_code::protocol_error);
  }
  {
    server_side srv(&inf);  // on a control frame
    srv.s.feed(cframe(opcode::ping, "", fin::yes, rsv1_bit));
    EXPECT_EQ(srv.s.error_code(), close_code::protocol_error);
  }
  {
    server_side srv(&inf);  // RSV2 is still nobody's
    srv.s.feed(cframe(opcode::text, "a", fin::yes, 0x20));
    EXPECT_EQ(srv.s.error_code(), close_code::protocol_error);
  }
}

TEST(WsSessionDeflate, BombClosesWith1009OnBothPaths) {
  inflater inf;
  std::string bomb = deflated(std::string(4 << 20, 'a'));
  ASSERT_LT(bomb.size(), 64u * 1024);
  {
    server_side srv(&inf, 1 << 20);
    srv.s.feed(cframe(opcode::binary, bomb, fin::yes, rsv1_bit) + ctext_z("after"));
    EXPECT_EQ(srv.s.error_code(), close_code::message_too_big);
    EXPECT_EQ(srv.s.state(), session_state::closed);
    EXPECT_TRUE(srv.got.empty());
    EXPECT_GT(srv.out.size(), 0u);  // the close frame
  }
  {
    server_side srv(&inf, 1 << 20);
    std::string wire = cframe(opcode::binary, bomb.substr(0, 100), fin::no, rsv1_bit) +
                       cframe(opcode::continuation, bomb.substr(100));
    srv.s.feed(wire.substr(0, 50));
    srv.s.feed(wire.substr(50));
    EXPECT_EQ(srv.s.error_code(), close_code::message_too_big);
    EXPECT_TRUE(srv.got.empty());
  }
}

TEST(WsSessionDeflate, BadCompressedDataAndBadUtf8Close1007) {
  inflater inf;
  for (std::string wire : {cframe(opcode::text, "\xff\xfe\xfd\xfc garbage", fin::yes, rsv1_bit),
                           ctext_z("\xc3\x28 not utf-8"),
                           cframe(opcode::text, "\xff\xfe", fin::no, rsv1_bit) +
                               cframe(opcode::continuation, "junk")}) {
    server_side srv(&inf);
    srv.s.feed(wire);
    EXPECT_EQ(srv.s.error_code(), close_code::invalid_payload);
    EXPECT_TRUE(srv.got.empty());
  }
  // A binary message need not be UTF-8.
  server_side srv(&inf);
  srv.s.feed(cframe(opcode::binary, deflated("\xc3\x28"), fin::yes, rsv1_bit));
  EXPECT_EQ(srv.got, (std::vector<std::string>{"b:\xc3\x28"}));
}

}  // namespace
}  // namespace rc::ws
