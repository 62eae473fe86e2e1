#include "proto/ws_deflate.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <string>

namespace rc::ws {
namespace {

using namespace std::literals;

std::string answer(std::string_view header, deflate_policy p = {}) {
  auto a = negotiate_deflate(header, p);
  if (!a) return "<none>";
  byte_buffer out;
  write_deflate_answer(out, *a);
  return std::string(out.view());
}

// ---- negotiation ----

TEST(WsDeflateNegotiate, PlainOfferGetsClientNoContextTakeover) {
  EXPECT_EQ(answer("permessage-deflate"), "permessage-deflate; client_no_context_takeover");
  auto a = negotiate_deflate("permessage-deflate", {.window_bits = 12});
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->server_no_context_takeover);
  EXPECT_EQ(a->server_window_bits, 12);
}

TEST(WsDeflateNegotiate, ParametersAreHonoured) {
  EXPECT_EQ(answer("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
  // Python websockets' and browsers' default offers.
  EXPECT_EQ(answer("permessage-deflate; client_max_window_bits"),
            "permessage-deflate; client_no_context_takeover");
  EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=10", {.window_bits = 12}),
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=10");
  EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=15", {.window_bits = 12}),
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=12");
  EXPECT_EQ(answer("permessage-deflate;server_max_window_bits=\"9\""),
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=9");
  EXPECT_EQ(answer("permessage-deflate; client_max_window_bits=8"),
            "permessage-deflate; client_no_context_takeover");
  EXPECT_EQ(answer("PerMessage-Deflate; Server_No_Context_Takeover"),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
}

TEST(WsDeflateNegotiate, PolicyCanRefuseContextTakeover) {
  EXPECT_EQ(answer("permessage-deflate", {.context_takeover = false}),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
}

TEST(WsDeflateNegotiate, BadOffersAreDeclinedAndTheNextOneIsTried) {
  for (std::string_view bad : {
           "permessage-deflate; server_no_context_takeover=1"sv,
           "permessage-deflate; server_no_context_takeover; server_no_context_takeover"sv,
           "permessage-deflate; server_max_window_bits"sv,
           "permessage-deflate; server_max_window_bits=16"sv,
           "permessage-deflate; server_max_window_bits=7"sv,
           "permessage-deflate; server_max_window_bits=08"sv,
           "permessage-deflate; server_max_window_bits=8"sv,  // zlib can't: declined
           "permessage-deflate; server_max_window_bits=\"1\\5\""sv,
           "permessage-deflate; client_max_window_bits=0"sv,
           "permessage-deflate; client_max_window_bits=abc"sv,
           "permessage-deflate; unknown"sv,
           "permessage-deflate; ;"sv,
           "permessage-deflate; ="sv,
           "permessage-deflate; a=b; c=d; e=f; g=h; i=j; k=l; m=n; o=p; q=r"sv,
           "permessage-deflate x"sv,
       }) {
    EXPECT_EQ(answer(bad), "<none>") << bad;
    std::string two(bad);
    two += ", permessage-deflate; server_no_context_takeover";
    EXPECT_EQ(answer(two),
              "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        << two;
  }
}

TEST(WsDeflateNegotiate, OtherExtensionsAndHostileHeaders) {
  EXPECT_EQ(answer(""), "<none>");
  EXPECT_EQ(answer("x-webkit-deflate-frame"), "<none>");
  EXPECT_EQ(answer("foo; a=\"x, permessage-deflate\", permessage-deflate"),
            "permessage-deflate; client_no_context_takeover");
  EXPECT_EQ(answer(" , ,permessage-deflate ,"), "permessage-deflate; client_no_context_takeover");
  // An unterminated quoted string ends the scan: nothing after it can be split reliably.
  EXPECT_EQ(answer("foo; a=\"x, permessage-deflate"), "<none>");
  EXPECT_EQ(answer("foo; a=\"x\\"), "<none>");
  EXPECT_EQ(answer("\"\"\"\""), "<none>");
  EXPECT_EQ(answer(";;;,,,===,permessage-deflate"),
            "permessage-deflate; client_no_context_takeover");
  // Random bytes never crash, and a valid offer after them is still found if they end cleanly.
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string h(rng() % 40, '\0');
    for (char& c : h) c = "permessage-deflate;=\", \t\\xserv_1589"[rng() % 36];
    (void)negotiate_deflate(h, {});
  }
}

TEST(WsDeflateNegotiate, ClientParsesTheAnswer) {
  auto a = parse_deflate_answer(
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->server_no_context_takeover);
  EXPECT_TRUE(a->client_no_context_takeover);
  EXPECT_EQ(a->server_window_bits, 15);
  a = parse_deflate_answer("permessage-deflate; server_max_window_bits=10");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->server_window_bits, 10);
  EXPECT_FALSE(parse_deflate_answer("permessage-deflate, permessage-deflate"));
  EXPECT_FALSE(parse_deflate_answer("permessage-deflate; bogus"));
  EXPECT_FALSE(parse_deflate_answer("x-other"));
  EXPECT_FALSE(parse_deflate_answer(""));
}

// ---- codec ----

std::string sample_text(size_t n, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  static constexpr std::string_view words[] = {"{\"event\":", "\"delta\"", "token", ",", " the ",
                                               "stream", "}", "ringcast", "\"seq\":", "42"};
  std::string s;
  while (s.size() < n) s += words[rng() % std::size(words)];
  s.resize(n);
  return s;
}

std::string compress(deflater& d, std::string_view m, deflate_context c = deflate_context::reset) {
  byte_buffer out;
  d.compress(m, out, c);
  return std::string(out.view());
}

TEST(WsDeflateCodec, RoundTripsWithAndWithoutContext) {
  inflater inf;
  for (uint8_t bits : {9, 12, 15}) {
    deflater d(bits, 5);
    for (size_t n : {0ul, 1ul, 100ul, 5000ul, 200000ul}) {
      std::string m = sample_text(n, static_cast<uint32_t>(n + bits));
      std::string z = compress(d, m);
      ASSERT_EQ(inf.inflate(z, 1 << 20), inflate_status::ok) << n;
      EXPECT_EQ(inf.output(), m);
      if (n >= 5000) {
        EXPECT_LT(z.size(), n / 2);
      }
    }
    // Context takeover: the second copy of a message costs almost nothing, and a reader that
    // keeps its context too decodes both.
    inflater keeping;
    std::string m = sample_text(3000, bits);
    std::string z1 = compress(d, m, deflate_context::keep);
    std::string z2 = compress(d, m, deflate_context::keep);
    if (bits >= 12) {  // the window holds the first copy
      EXPECT_LT(z2.size(), z1.size() / 4);
    }
    ASSERT_EQ(keeping.inflate(z1, 1 << 20, deflate_context::keep), inflate_status::ok);
    EXPECT_EQ(keeping.output(), m);
    ASSERT_EQ(keeping.inflate(z2, 1 << 20, deflate_context::keep), inflate_status::ok);
    EXPECT_EQ(keeping.output(), m);
    // ... while a reader that resets can't: the back-reference points nowhere.
    if (bits >= 12) {
      EXPECT_NE(inf.inflate(z2, 1 << 20), inflate_status::ok);
    }
  }
}

// An empty message after another one with the context kept: zlib writes nothing for a second
// sync flush, so the codec must make the empty block itself (this aborted the server).
TEST(WsDeflateCodec, EmptyMessagesBetweenOthersWithTheContextKept) {
  for (deflate_context c : {deflate_context::keep, deflate_context::reset}) {
    deflater d(12, 5);
    inflater reader;
    for (std::string_view m : {"a", "", "", "hello hello hello", "", "a"}) {
      std::string z = compress(d, m, c);
      ASSERT_FALSE(z.empty());
      ASSERT_EQ(reader.inflate(z, 1 << 20, c), inflate_status::ok) << m.size();
      EXPECT_EQ(reader.output(), m);
    }
    byte_buffer out;  // several empty parts are an empty message too
    std::string_view parts[] = {"", ""};
    d.compress(parts, out, c);
    ASSERT_EQ(reader.inflate(out.view(), 1 << 20, c), inflate_status::ok);
    EXPECT_EQ(reader.output(), "");
  }
}

TEST(WsDeflateCodec, PartsDecodeAsOneMessage) {
  deflater d(15, 8);
  inflater inf;
  std::string_view parts[] = {"{\"id\":\"r1\",", "\"event\":\"message\"}"};
  byte_buffer out;
  d.compress(parts, out, deflate_context::reset);
  ASSERT_EQ(inf.inflate(out.view(), 1000), inflate_status::ok);
  EXPECT_EQ(inf.output(), "{\"id\":\"r1\",\"event\":\"message\"}");
}

TEST(WsDeflateCodec, InflaterCountsMessagesBytesAndFailures) {
  deflater d(15, 8);
  inflater inf;
  std::string text = sample_text(3000, 5);
  std::string z = compress(d, text);
  ASSERT_EQ(inf.inflate(z, 1 << 20), inflate_status::ok);
  ASSERT_EQ(inf.inflate(z, 100), inflate_status::too_big);
  ASSERT_EQ(inf.inflate("\xff\xff\xff\xff", 1 << 20), inflate_status::bad_data);
  const inflate_stats& s = inf.stats();
  EXPECT_EQ(s.messages, 1u);
  EXPECT_EQ(s.bytes_in, z.size());
  EXPECT_EQ(s.bytes_out, text.size());
  EXPECT_EQ(s.too_big, 1u);
  EXPECT_EQ(s.bad_data, 1u);
}

TEST(WsDeflateCodec, StoredPrefixThenSharedCompressedTail) {
  deflater d(15, 8);
  inflater inf;
  std::string tail = sample_text(2000, 3);
  std::string shared = compress(d, tail);
  for (std::string_view prefix : {""sv, "{\"id\":\"a\","sv}) {
    byte_buffer msg;
    write_stored_block(msg, prefix);
    msg.append(shared);
    ASSERT_EQ(inf.inflate(msg.view(), 1 << 20), inflate_status::ok);
    EXPECT_EQ(inf.output(), std::string(prefix) + tail);
  }
  std::string big(70000, 'x');  // more than one stored block
  byte_buffer msg;
  write_stored_block(msg, big);
  msg.append(shared);
  ASSERT_EQ(inf.inflate(msg.view(), 1 << 20), inflate_status::ok);
  EXPECT_EQ(inf.output(), big + tail);
}

TEST(WsDeflateCodec, BombStopsAtTheLimit) {
  deflater d(15, 8);
  inflater inf;
  std::string zeros(10 << 20, '\0');
  std::string z = compress(d, zeros);
  EXPECT_LT(z.size(), 20000u);
  EXPECT_EQ(inf.inflate(z, 1 << 20), inflate_status::too_big);
  EXPECT_LE(inf.output().size(), (1u << 20) + 1);
  // Exactly at the limit is fine; the inflater is usable again after a failure.
  std::string exact(4096, 'a');
  EXPECT_EQ(inf.inflate(compress(d, exact), 4096), inflate_status::ok);
  EXPECT_EQ(inf.inflate(compress(d, exact), 4095), inflate_status::too_big);
  EXPECT_EQ(inf.inflate(compress(d, exact), 4096), inflate_status::ok);
  EXPECT_EQ(inf.output(), exact);
}

TEST(WsDeflateCodec, CorruptTruncatedAndTrailingDataAreBad) {
  deflater d(15, 8);
  inflater inf;
  std::string m = sample_text(3000, 9);
  std::string z = compress(d, m);
  EXPECT_EQ(inf.inflate("\xff\xff\xff\xff"sv, 1 << 20), inflate_status::bad_data);
  // Cut inside a block.
  EXPECT_EQ(inf.inflate(std::string_view(z).substr(0, z.size() / 2), 1 << 20),
            inflate_status::bad_data);
  // A final block followed by junk.
  z_stream zs{};
  ASSERT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string fin(200, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(m.data());
  zs.avail_in = 100;
  zs.next_out = reinterpret_cast<Bytef*>(fin.data());
  zs.avail_out = static_cast<uInt>(fin.size());
  ASSERT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  fin.resize(fin.size() - zs.avail_out);
  deflateEnd(&zs);
  ASSERT_EQ(inf.inflate(fin, 1 << 20), inflate_status::ok);  // a final block is allowed (§7.2.3.4)
  EXPECT_EQ(inf.output(), m.substr(0, 100));
  EXPECT_EQ(inf.inflate(fin + "junk", 1 << 20), inflate_status::bad_data);
  // Still usable.
  ASSERT_EQ(inf.inflate(z, 1 << 20), inflate_status::ok);
  EXPECT_EQ(inf.output(), m);
}

TEST(WsDeflateCodec, RandomInputNeverCrashes) {
  inflater inf;
  std::mt19937 rng(11);
  for (int i = 0; i < 5000; ++i) {
    std::string junk(rng() % 300, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    auto st = inf.inflate(junk, 4096);
    if (st == inflate_status::ok) {
      EXPECT_LE(inf.output().size(), 4096u);
    }
  }
}

}  // namespace
}  // namespace rc::ws
