#include "proto/ws.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "guarded_input.h"

namespace rc::ws {
namespace {

using namespace std::literals;

std::string bytes(std::initializer_list<int> list) {
  std::string s;
  for (int b : list) s.push_back(static_cast<char>(b));
  return s;
}

const mask_key rfc_mask = {0x37, 0xfa, 0x21, 0x3d};

// ---- handshake ----

handshake_request chrome_request() {
  return {.method = "GET",
          .upgrade = "websocket",
          .connection = "Upgrade",
          .key = "dGhlIHNhbXBsZSBub25jZQ==",
          .ws_version = "13",
          .protocol = "chat, superchat",
          .origin = "http://example.com"};
}

TEST(WsHandshake, Rfc6455AcceptVector) {
  handshake_result r = check_handshake(chrome_request());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.status, 101);
  EXPECT_EQ(r.accept_key(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  char accept[28];
  compute_accept("dGhlIHNhbXBsZSBub25jZQ==", accept);
  EXPECT_EQ(std::string_view(accept, 28), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WsHandshake, AcceptsClientVariants) {
  handshake_request req = chrome_request();
  req.upgrade = "WebSocket";                // case-insensitive
  req.connection = "keep-alive, Upgrade";   // Firefox
  req.key = " dGhlIHNhbXBsZSBub25jZQ==\t";  // surrounding whitespace is not part of the key
  EXPECT_TRUE(check_handshake(req).ok());
  req.connection = "upgrade,keep-alive";
  req.upgrade = "h2c, websocket";
  req.ws_version = " 13 ";
  EXPECT_TRUE(check_handshake(req).ok());
}

struct rejection {
  handshake_request req;
  handshake_error error;
  uint16_t status;
};

TEST(WsHandshake, RejectsEachInvalidField) {
  auto with = [](auto&& edit) {
    handshake_request r = chrome_request();
    edit(r);
    return r;
  };
  const rejection cases[] = {
      {with([](auto& r) { r.method = "POST"; }), handshake_error::method_not_get, 405},
      {with([](auto& r) { r.method = "get"; }), handshake_error::method_not_get, 405},
      {with([](auto& r) { r.version = http_version::http_1_0; }), handshake_error::http_1_0, 400},
      {with([](auto& r) { r.upgrade = ""; }), handshake_error::bad_upgrade, 400},
      {with([](auto& r) { r.upgrade = "h2c"; }), handshake_error::bad_upgrade, 400},
      {with([](auto& r) { r.upgrade = "websockets"; }), handshake_error::bad_upgrade, 400},
      {with([](auto& r) { r.upgrade = "websocket/13"; }), handshake_error::bad_upgrade, 400},
      {with([](auto& r) { r.connection = ""; }), handshake_error::bad_connection, 400},
      {with([](auto& r) { r.connection = "keep-alive"; }), handshake_error::bad_connection, 400},
      {with([](auto& r) { r.connection = "upgrades"; }), handshake_error::bad_connection, 400},
      {with([](auto& r) { r.ws_version = "8"; }), handshake_error::unsupported_version, 426},
      {with([](auto& r) { r.ws_version = ""; }), handshake_error::unsupported_version, 426},
      {with([](auto& r) { r.ws_version = "13, 8"; }), handshake_error::unsupported_version, 426},
      {with([](auto& r) { r.key = ""; }), handshake_error::bad_key, 400},
      {with([](auto& r) { r.key = "abc"; }), handshake_error::bad_key, 400},
      // 24 characters but not canonical (non-zero padding bits).
      {with([](auto& r) { r.key = "dGhlIHNhbXBsZSBub25jZR=="; }), handshake_error::bad_key, 400},
      // Valid base64 of 15 bytes, and 24-character encodings of 17 and 18 bytes.
      {with([](auto& r) { r.key = "dGhlIHNhbXBsZSBub25j"; }), handshake_error::bad_key, 400},
      {with([](auto& r) { r.key = "dGhlIHNhbXBsZSBub25jZSE="; }), handshake_error::bad_key, 400},
      {with([](auto& r) { r.key = "dGhlIHNhbXBsZSBub25jZSEh"; }), handshake_error::bad_key, 400},
      {with([](auto& r) { r.key = "dGhlIHNhbXBsZSBub25jZQ!="; }), handshake_error::bad_key, 400},
  };
  for (const rejection& c : cases) {
    handshake_result r = check_handshake(c.req);
    EXPECT_EQ(r.error, c.error) << c.req.method << ' ' << c.req.upgrade << ' ' << c.req.key;
    EXPECT_EQ(r.status, c.status);
    EXPECT_FALSE(r.message.empty());
  }
  handshake_result r = check_handshake(with([](auto& req) { req.method = "POST"; }));
  EXPECT_EQ(r.header_name, "Allow");
  EXPECT_EQ(r.header_value, "GET");
  r = check_handshake(with([](auto& req) { req.ws_version = "8"; }));
  EXPECT_EQ(r.header_name, "Sec-WebSocket-Version");
  EXPECT_EQ(r.header_value, "13");
  r = check_handshake(with([](auto& req) { req.key = ""; }));
  EXPECT_TRUE(r.header_name.empty());
}

TEST(WsHandshake, SelectsFirstOfferedSupportedSubprotocol) {
  const std::string_view supported[] = {"superchat", "chat"};
  EXPECT_EQ(select_subprotocol("chat, superchat", supported), "chat");  // the client's order
  EXPECT_EQ(select_subprotocol("soap,superchat", supported), "superchat");
  EXPECT_EQ(select_subprotocol(" , ,chat ", supported), "chat");
  EXPECT_EQ(select_subprotocol("Chat", supported), "");  // case-sensitive
  EXPECT_EQ(select_subprotocol("", supported), "");
  EXPECT_EQ(select_subprotocol("chat", {}), "");
  // The result is the server's string, which outlives the request.
  EXPECT_EQ(select_subprotocol("chat", supported).data(), supported[1].data());
}

TEST(WsHandshake, UpgradeResponseBytes) {
  byte_buffer b;
  write_upgrade_response(b, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(b.view(),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
  b.clear();
  write_upgrade_response(b, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "chat", "x-request-id: r1\r\n");
  EXPECT_EQ(b.view(),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n"
            "x-request-id: r1\r\n\r\n");
}

TEST(WsHandshake, UpgradeRequestBytes) {
  byte_buffer b;
  write_upgrade_request(b, "localhost:8080", "/ws", "dGhlIHNhbXBsZSBub25jZQ==", "chat",
                        "Authorization: Bearer k\r\n");
  EXPECT_EQ(b.view(),
            "GET /ws HTTP/1.1\r\nHost: localhost:8080\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n"
            "Authorization: Bearer k\r\n\r\n");
}

TEST(WsHandshakeDeathTest, RejectsHeaderInjection) {
  byte_buffer b;
  EXPECT_DEATH(write_upgrade_response(b, "x", "chat\r\nSet-Cookie: a=b"), "single_line");
  EXPECT_DEATH(write_upgrade_response(b, "x", "", "x-a: b"), "header_lines");
}

// ---- frames ----

std::string frame(opcode op, std::string_view payload, fin f = fin::yes,
                  std::optional<mask_key> mask = std::nullopt) {
  byte_buffer b;
  write_frame(b, op, payload, f, mask);
  return std::string(b.view());
}

// RFC 6455 §5.7.
TEST(WsFrame, Rfc6455Examples) {
  EXPECT_EQ(frame(opcode::text, "Hello"), bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
  EXPECT_EQ(frame(opcode::text, "Hello", fin::yes, rfc_mask),
            bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));
  EXPECT_EQ(frame(opcode::text, "Hel", fin::no), bytes({0x01, 0x03, 0x48, 0x65, 0x6c}));
  EXPECT_EQ(frame(opcode::continuation, "lo"), bytes({0x80, 0x02, 0x6c, 0x6f}));
  byte_buffer b;
  write_ping(b, "Hello");
  EXPECT_EQ(b.view(), bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
  b.clear();
  write_pong(b, "Hello", rfc_mask);
  EXPECT_EQ(b.view(), bytes({0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));
  std::string f256 = frame(opcode::binary, std::string(256, 'x'));
  EXPECT_EQ(f256.substr(0, 4), bytes({0x82, 0x7e, 0x01, 0x00}));
  EXPECT_EQ(f256.size(), 4u + 256);
  std::string f64k = frame(opcode::binary, std::string(65536, 'x'));
  EXPECT_EQ(f64k.substr(0, 10), bytes({0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0}));
  EXPECT_EQ(f64k.size(), 10u + 65536);
}

TEST(WsFrame, LengthEncodingBoundaries) {
  for (uint64_t len :
       {0ull, 125ull, 126ull, 65535ull, 65536ull, (1ull << 32) + 5, (1ull << 63) - 1}) {
    for (bool masked : {false, true}) {
      char buf[frame_header_bytes_max];
      std::optional<mask_key> mask;
      if (masked) mask = rfc_mask;
      size_t n = encode_frame_header(buf, opcode::binary, len, fin::yes, mask);
      EXPECT_EQ(n, frame_header_size(len, masked));
      frame_header h;
      ASSERT_EQ(parse_frame_header(buf, n, h), parse_status::complete) << len;
      EXPECT_EQ(h.payload_bytes, len);
      EXPECT_EQ(h.header_bytes, n);
      EXPECT_EQ(h.masked, masked);
      EXPECT_TRUE(h.fin);
      EXPECT_EQ(h.opcode, 2);
      if (masked) {
        EXPECT_EQ(h.mask, rfc_mask);
      }
      for (size_t k = 0; k < n; ++k) {
        EXPECT_EQ(parse_frame_header(buf, k, h), parse_status::incomplete) << len << ' ' << k;
      }
    }
  }
}

TEST(WsFrame, HeaderWriterMatchesFrameWriter) {
  const std::string payload(4096, 'p');
  byte_buffer b;
  write_frame_header(b, opcode::text, payload.size());
  b.append(payload);
  EXPECT_EQ(b.view(), frame(opcode::text, payload));
  EXPECT_EQ(frame(opcode::text, std::string(20, 'a')).size(), 22u);
}

TEST(WsFrame, ParseRejectsNonMinimalAndHugeLengths) {
  frame_header h;
  std::string s = bytes({0x82, 0x7e, 0x00, 0x7d});  // 125 in the 16-bit form
  EXPECT_EQ(parse_frame_header(s.data(), s.size(), h), parse_status::error);
  s = bytes({0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff});  // 65535 in the 64-bit form
  EXPECT_EQ(parse_frame_header(s.data(), s.size(), h), parse_status::error);
  s = bytes({0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0});  // top bit set
  EXPECT_EQ(parse_frame_header(s.data(), s.size(), h), parse_status::error);
  s = bytes({0x7a, 0x7e, 0x00, 0x7e});  // RSV bits and a reserved opcode parse; judged later
  ASSERT_EQ(parse_frame_header(s.data(), s.size(), h), parse_status::complete);
  EXPECT_EQ(h.rsv, 7);
  EXPECT_EQ(h.opcode, 0xa);
  EXPECT_FALSE(h.fin);
}

TEST(WsFrame, ParseNeverReadsPastTheEnd) {
  test::guarded_input g;
  std::string full = frame(opcode::text, "x", fin::yes, rfc_mask);
  for (std::string s : {bytes({0x82}), bytes({0x82, 0xfe, 0x01}), bytes({0x82, 0xff, 0, 0, 0}),
                        bytes({0x82, 0x85, 1, 2, 3}), full.substr(0, 5)}) {
    std::string_view p = g.place(s);
    frame_header h;
    EXPECT_EQ(parse_frame_header(p.data(), p.size(), h), parse_status::incomplete);
  }
}

TEST(WsFrame, Close) {
  byte_buffer b;
  write_close(b, close_code::normal, "bye");
  EXPECT_EQ(b.view(), bytes({0x88, 0x05, 0x03, 0xe8, 'b', 'y', 'e'}));
  b.clear();
  write_close(b, 0, "");
  EXPECT_EQ(b.view(), bytes({0x88, 0x00}));
  b.clear();
  write_close(b, close_code::policy_violation, std::string(123, 'r'));
  EXPECT_EQ(b.size(), 2u + 125);
}

TEST(WsFrame, ValidCloseCodes) {
  for (uint16_t c : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000,
                     3999, 4000, 4999}) {
    EXPECT_TRUE(valid_close_code(c)) << c;
  }
  for (uint16_t c : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    EXPECT_FALSE(valid_close_code(c)) << c;
  }
}

TEST(WsFrameDeathTest, RejectsInvalidControlFrames) {
  byte_buffer b;
  EXPECT_DEATH(write_ping(b, std::string(126, 'x')), "control_payload_bytes_max");
  EXPECT_DEATH(write_frame(b, opcode::ping, "x", fin::no), "fin::yes");
  EXPECT_DEATH(write_close(b, 1005, ""), "valid_close_code");
  EXPECT_DEATH(write_close(b, 1000, std::string(124, 'r')), "close_reason_bytes_max");
  EXPECT_DEATH(write_close(b, 1000, "\xff"), "utf8::valid");
}

TEST(WsFrame, MaskMatchesNaiveAtEveryOffsetAndLength) {
  std::mt19937 rng(3);
  for (size_t len = 0; len <= 100; ++len) {
    std::string src(len, '\0');
    for (char& c : src) c = static_cast<char>(rng());
    mask_key key = {static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng()),
                    static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng())};
    for (uint64_t offset = 0; offset < 8; ++offset) {
      std::string naive = src;
      for (size_t i = 0; i < len; ++i)
        naive[i] = static_cast<char>(naive[i] ^ key[(offset + i) % 4]);
      std::string fast = src;
      apply_mask(fast.data(), fast.size(), key, offset);
      ASSERT_EQ(fast, naive) << len << ' ' << offset;
      apply_mask(fast.data(), fast.size(), key, offset);
      ASSERT_EQ(fast, src);  // masking twice is the identity
    }
    // Unmasking in two pieces with the running offset equals unmasking whole.
    std::string whole(len, '\0');
    copy_masked(whole.data(), src.data(), len, key);
    for (size_t cut = 0; cut <= len; ++cut) {
      std::string pieces = whole;
      apply_mask(pieces.data(), cut, key, 0);
      apply_mask(pieces.data() + cut, len - cut, key, cut);
      ASSERT_EQ(pieces, src) << len << ' ' << cut;
    }
  }
}

}  // namespace
}  // namespace rc::ws
