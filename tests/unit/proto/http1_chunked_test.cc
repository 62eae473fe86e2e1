// chunked_decoder: valid bodies with extensions and trailers, every framing error, limits, and
// results that do not depend on how the body is split.
#include <gtest/gtest.h>

#include <string>

#include "http1_test_util.h"
#include "proto/http1_parser.h"

namespace rc::http1 {
namespace {

struct decoded {
  result res;
  std::string body;
  std::string summary() const { return test::describe(res) + " " + body; }
};

// Decodes `s` in one feed, placed against the guard page.
decoded decode(std::string_view s, const limits& lim = {}) {
  static test::guard_page guard;
  chunked_decoder dec(lim);
  byte_buffer body;
  decoded d;
  d.res = dec.feed(guard.place(s), s.size(), body);
  d.body = std::string(body.view());
  return d;
}

// Decodes `s` fed in pieces cut at `cuts` (increasing offsets), each piece against the guard.
decoded decode_pieces(std::string_view s, const std::vector<size_t>& cuts, const limits& lim) {
  static test::guard_page guard;
  chunked_decoder dec(lim);
  byte_buffer body;
  decoded d;
  size_t pos = 0;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    size_t next = i < cuts.size() ? cuts[i] : s.size();
    std::string_view piece = s.substr(pos, next - pos);
    d.res = dec.feed(guard.place(piece), piece.size(), body);
    if (d.res.status != status::incomplete) {
      d.res.consumed += pos;
      break;
    }
    pos = next;
  }
  d.body = std::string(body.view());
  if (d.res.status == status::error) d.res.consumed = 0;
  return d;
}

void expect_split_invariant(std::string_view s, const limits& lim = {}) {
  decoded whole = decode(s, lim);
  if (whole.res.status == status::error) whole.res.consumed = 0;
  std::vector<size_t> every;
  for (size_t k = 1; k < s.size(); ++k) every.push_back(k);
  EXPECT_EQ(decode_pieces(s, every, lim).summary(), whole.summary()) << s;
  for (size_t k = 0; k <= s.size(); ++k) {
    EXPECT_EQ(decode_pieces(s, {k}, lim).summary(), whole.summary()) << "split at " << k << s;
  }
}

void expect_error(std::string_view s, error e, const limits& lim = {}) {
  decoded d = decode(s, lim);
  EXPECT_EQ(d.res.status, status::error) << s;
  EXPECT_EQ(name_of(d.res.error), name_of(e)) << s;
  expect_split_invariant(s, lim);
}

TEST(Http1Chunked, SimpleBody) {
  std::string s = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET /next";
  decoded d = decode(s);
  ASSERT_EQ(d.res.status, status::complete);
  EXPECT_EQ(d.body, "hello world");
  EXPECT_EQ(s.substr(d.res.consumed), "GET /next");
  expect_split_invariant(s);
}

TEST(Http1Chunked, ExtensionsAndTrailers) {
  const std::string cases[] = {
      "A;name\r\n0123456789\r\n0\r\n\r\n",
      "a;n=v\r\n0123456789\r\n0;last\r\n\r\n",
      "0000a ; n = v ;m=\"q \\\" ; \\\\ x\"\t;k\r\n0123456789\r\n0\r\n\r\n",
      "a;n=\"\"\r\n0123456789\r\n0\r\nX-Trailer: v\r\nChecksum:abc \t\r\nEmpty:\r\n\r\n",
      "a;n=\"caf\xc3\xa9\"\r\n0123456789\r\n0\r\n\r\n",
  };
  for (const std::string& s : cases) {
    decoded d = decode(s);
    ASSERT_EQ(d.res.status, status::complete) << s;
    EXPECT_EQ(d.res.consumed, s.size());
    EXPECT_EQ(d.body, "0123456789");
    expect_split_invariant(s);
  }
}

TEST(Http1Chunked, FeedAfterTheEndAndAfterAnError) {
  chunked_decoder dec({});
  byte_buffer body;
  EXPECT_EQ(dec.feed("0\r\n\r\n", 5, body).status, status::complete);
  result again = dec.feed("1\r\n", 3, body);
  EXPECT_EQ(again.status, status::complete);
  EXPECT_EQ(again.consumed, 0u);
  dec.reset();
  EXPECT_EQ(dec.feed("x", 1, body).error, error::bad_chunk);
  EXPECT_EQ(dec.feed("0\r\n\r\n", 5, body).error, error::bad_chunk);
  dec.reset();
  EXPECT_EQ(dec.feed("2\r\nok\r\n0\r\n\r\n", 12, body).status, status::complete);
  EXPECT_EQ(body.view(), "ok");
  EXPECT_EQ(dec.body_bytes(), 2u);
}

TEST(Http1Chunked, BadSizes) {
  for (std::string_view s :
       {"\r\n", "g\r\n", "-1\r\n", "+1\r\n", "0x1\r\n", " 1\r\n", "1 \r\n", "1\t\r\n", "1\n",
        "1\n\n", ";a\r\n", "1.5\r\n", "00000000000000001\r\n"}) {
    expect_error(s, error::bad_chunk);
  }
  EXPECT_EQ(status_of(error::bad_chunk), 400);
}

TEST(Http1Chunked, BadExtensions) {
  for (std::string_view ext : {";", "; ", ";=v", ";a=", ";a= ", ";a b", ";a=b c", ";a=\"x",
                               ";a=\"x\"y", ";a\x01", ";a=b\x7f", ";a=\"\x01\"", ";a=\"\\\x01\"",
                               ";a=b\nx", ";a=\"\r\n\"", ";a,b", ";a=b;", ";a=\"x\" ", ";a "}) {
    std::string s = std::string("1").append(ext).append("\r\nx\r\n0\r\n\r\n");
    expect_error(s, error::bad_chunk);
  }
}

TEST(Http1Chunked, DataMustEndWithCrlf) {
  expect_error("1\r\nab\r\n0\r\n\r\n", error::bad_chunk);
  expect_error("1\r\na\n0\r\n\r\n", error::bad_chunk);
  expect_error("1\r\na\r0\r\n\r\n", error::bare_cr);
  expect_error("1\rx", error::bare_cr);
  expect_error("0\r\n\rx", error::bare_cr);
}

TEST(Http1Chunked, BadTrailers) {
  expect_error("0\r\nX: a\r\n b\r\n\r\n", error::obs_fold);
  expect_error("0\r\n v\r\n\r\n", error::obs_fold);
  expect_error("0\r\nX : a\r\n\r\n", error::space_before_colon);
  expect_error("0\r\n: a\r\n\r\n", error::bad_header_name);
  expect_error("0\r\nX(: a\r\n\r\n", error::bad_header_name);
  expect_error("0\r\nX\r\n\r\n", error::bad_header_name);
  expect_error("0\r\nX: a\x01\r\n\r\n", error::bad_header_value);
  expect_error("0\r\nX: a\x7f\r\n\r\n", error::bad_header_value);
  expect_error("0\r\nX: a\rb\r\n\r\n", error::bare_cr);
  expect_error("0\r\nX: a\n\r\n", error::bad_chunk);
  expect_error("0\r\n\n", error::bad_chunk);
}

// Decoded size may reach body_bytes_max; a chunk size that would pass it is refused at once.
TEST(Http1Chunked, BodyLimit) {
  limits lim;
  lim.body_bytes_max = 10;
  std::string ten(10, 'x');
  decoded ok = decode("4\r\nxxxx\r\n6\r\nxxxxxx\r\n0\r\n\r\n", lim);
  EXPECT_EQ(ok.res.status, status::complete);
  EXPECT_EQ(decode("a\r\n" + ten + "\r\n0\r\n\r\n", lim).res.status, status::complete);
  expect_error("b\r\n", error::body_too_large, lim);
  expect_error("4\r\nxxxx\r\n7\r\n", error::body_too_large, lim);
  expect_error("a\r\n" + ten + "\r\n1\r\n", error::body_too_large, lim);
  expect_error("ffffffffffffffff\r\n", error::body_too_large);
  EXPECT_EQ(status_of(error::body_too_large), 413);
}

TEST(Http1Chunked, TrailerLimits) {
  limits lim;
  lim.header_bytes_max = 20;
  lim.headers_max = 2;
  // The trailer section, final CRLF included, may be header_bytes_max bytes.
  std::string exact = "0\r\nX: " + std::string(13, 'v') + "\r\n\r\n";
  decoded d = decode(exact, lim);
  EXPECT_EQ(d.res.status, status::complete);
  expect_error("0\r\nX: " + std::string(14, 'v') + "\r\n\r\n", error::header_section_too_large,
               lim);
  expect_error("0\r\nX: " + std::string(18, 'v'), error::header_section_too_large, lim);
  EXPECT_EQ(decode("0\r\nA: 1\r\nB: 2\r\n\r\n", lim).res.status, status::complete);
  expect_error("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", error::too_many_headers, lim);
}

TEST(Http1Chunked, ExtensionBytesAreBounded) {
  limits lim;
  lim.header_bytes_max = 12;
  // Extension bytes over all chunk lines of one body may total header_bytes_max.
  EXPECT_EQ(decode("1;abcdefghi\r\nx\r\n0;z\r\n\r\n", lim).res.status, status::complete);
  expect_error("1;abcdefghi\r\nx\r\n0;yz\r\n\r\n", error::bad_chunk, lim);
}

TEST(Http1Chunked, GuardPageTruncated) {
  const std::string body = "3;e=\"v\"\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\n";
  for (size_t n = 0; n <= body.size(); ++n) {
    decoded d = decode(std::string_view(body).substr(0, n));
    EXPECT_EQ(d.res.status, n == body.size() ? status::complete : status::incomplete) << n;
  }
}

}  // namespace
}  // namespace rc::http1
