// Response heads, body framing and the request writer of proto/http1_response.h: valid heads of
// each framing, every error code, limits, and results that do not depend on how input is split.
#include "proto/http1_response.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "http1_test_util.h"

namespace rc::http1 {
namespace {

response_result parse(std::string_view s, response& r, const response_limits& lim = {},
                      request_method_kind m = request_method_kind::other) {
  static test::guard_page guard;
  return parse_response_head(guard.place(s), s.size(), lim, m, r);
}

response_error error_of(std::string_view s, const response_limits& lim = {}) {
  response r;
  response_result res = parse(s, r, lim);
  EXPECT_EQ(res.status, status::error) << s;
  return res.error;
}

// Parses a head and decodes its body from a stream fed in pieces of `piece` bytes; returns
// "status|body|error|bytes after the body".
std::string run_stream(std::string_view s, size_t piece) {
  response_limits lim;
  std::string buf;
  response head;
  size_t pos = 0;
  bool have_head = false;
  byte_buffer body;
  std::unique_ptr<body_decoder> dec;
  while (true) {
    if (pos < s.size()) {
      size_t n = std::min(piece, s.size() - pos);
      buf.append(s.substr(pos, n));
      pos += n;
    }
    if (!have_head) {
      response_result r =
          parse_response_head(buf.data(), buf.size(), lim, request_method_kind::other, head);
      if (r.status == status::error) return std::string("error|") + std::string(name_of(r.error));
      if (r.status == status::incomplete) {
        if (pos == s.size()) return "incomplete";
        continue;
      }
      have_head = true;
      buf.erase(0, r.consumed);
      dec = std::make_unique<body_decoder>(head, lim);
    }
    response_result r = dec->feed(buf.data(), buf.size(), body);
    if (r.status == status::error)
      return std::string("body_error|") + std::string(name_of(r.error));
    buf.erase(0, r.consumed);
    if (r.status == status::complete) {
      buf.append(s.substr(pos));
      return std::to_string(head.status) + "|" + std::string(body.view()) + "|" + buf;
    }
    if (pos == s.size()) {
      return std::to_string(head.status) + "|" + std::string(body.view()) + "|" +
             (dec->finish_at_eof() ? "eof-ok" : "eof-short");
    }
  }
}

TEST(Http1Response, ParsesContentLengthResponse) {
  response r;
  std::string s = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
  response_result res = parse(s, r);
  ASSERT_EQ(res.status, status::complete);
  EXPECT_EQ(res.consumed, s.size() - 5);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.reason, "OK");
  EXPECT_EQ(r.body, response_body::content_length);
  EXPECT_EQ(r.content_length, 5u);
  EXPECT_TRUE(r.keep_alive);
  EXPECT_EQ(r.find("content-type"), "text/plain");
}

TEST(Http1Response, FramingRules) {
  response r;
  ASSERT_EQ(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", r).status,
            status::complete);
  EXPECT_EQ(r.body, response_body::chunked);
  ASSERT_EQ(parse("HTTP/1.1 200 OK\r\n\r\n", r).status, status::complete);
  EXPECT_EQ(r.body, response_body::until_close);
  EXPECT_FALSE(r.keep_alive);
  ASSERT_EQ(parse("HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n", r).status,
            status::complete);
  EXPECT_EQ(r.body, response_body::none);
  ASSERT_EQ(parse("HTTP/1.1 304 Not Modified\r\n\r\n", r).status, status::complete);
  EXPECT_EQ(r.body, response_body::none);
  ASSERT_EQ(parse("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", r, {}, request_method_kind::head)
                .status,
            status::complete);
  EXPECT_EQ(r.body, response_body::none);
  ASSERT_EQ(parse("HTTP/1.1 100 Continue\r\n\r\n", r).status, status::complete);
  EXPECT_TRUE(r.interim());
  ASSERT_EQ(parse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                  "Upgrade\r\n\r\n",
                  r)
                .status,
            status::complete);
  EXPECT_TRUE(r.upgrade);
  EXPECT_FALSE(r.interim());
  EXPECT_EQ(r.body, response_body::none);
}

TEST(Http1Response, KeepAliveRules) {
  response r;
  parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", r);
  EXPECT_FALSE(r.keep_alive);
  parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", r);
  EXPECT_FALSE(r.keep_alive);
  parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", r);
  EXPECT_TRUE(r.keep_alive);
  EXPECT_EQ(r.version, version::http_1_0);
}

TEST(Http1Response, LenientStatusLines) {
  response r;
  ASSERT_EQ(parse("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", r).status, status::complete);
  EXPECT_EQ(r.reason, "");
  ASSERT_EQ(parse("HTTP/1.1 404 \n\n", r).status, status::complete);  // bare LF line ends
  EXPECT_EQ(r.status, 404);
}

TEST(Http1Response, Errors) {
  EXPECT_EQ(error_of("HTTP/1.1 20 OK\r\n\r\n"), response_error::bad_status_line);
  EXPECT_EQ(error_of("HTTP/1.1 099 x\r\n\r\n"), response_error::bad_status_line);
  EXPECT_EQ(error_of("HTTP/1.1  200 OK\r\n\r\n"), response_error::bad_status_line);
  EXPECT_EQ(error_of("http/1.1 200 OK\r\n\r\n"), response_error::bad_status_line);
  EXPECT_EQ(error_of("HTTP/1.1 200OK\r\n\r\n"), response_error::bad_status_line);
  EXPECT_EQ(error_of("\r\n\r\n"), response_error::bad_status_line);
  EXPECT_EQ(error_of("HTTP/2.0 200 OK\r\n\r\n"), response_error::version_not_supported);
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nA\rB: c\r\n\r\n"), response_error::bare_cr);
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nA : c\r\n\r\n"), response_error::space_before_colon);
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\n: c\r\n\r\n"), response_error::bad_header_name);
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nA(b: c\r\n\r\n"), response_error::bad_header_name);
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n"), response_error::bad_header_name);
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n"), response_error::obs_fold);
  EXPECT_EQ(error_of(std::string("HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n")),
            response_error::bad_header_value);
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            response_error::bad_content_length);
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            response_error::bad_content_length);
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            response_error::bad_transfer_encoding);
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
            response_error::bad_transfer_encoding);
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
            response_error::bad_transfer_encoding);
  response_limits small;
  small.body_bytes_max = 4;
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", small),
            response_error::body_too_large);
}

TEST(Http1Response, IdenticalContentLengthListIsOneValue) {
  response r;
  ASSERT_EQ(parse("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", r).status, status::complete);
  EXPECT_EQ(r.content_length, 3u);
}

TEST(Http1Response, Limits) {
  response_limits lim;
  lim.header_bytes_max = 64;
  response r;
  std::string big = "HTTP/1.1 200 OK\r\nX: " + std::string(80, 'a');
  EXPECT_EQ(parse(big, r, lim).error, response_error::header_section_too_large);
  EXPECT_EQ(parse(big.substr(0, 40), r, lim).status, status::incomplete);
  lim = {};
  lim.headers_max = 2;
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", lim),
            response_error::too_many_headers);
}

TEST(Http1Response, IncompleteUntilTheEmptyLine) {
  std::string s = "HTTP/1.1 200 OK\r\nA: b\r\n\r\n";
  response r;
  for (size_t k = 0; k < s.size(); ++k)
    EXPECT_EQ(parse(s.substr(0, k), r).status, status::incomplete) << k;
  EXPECT_EQ(parse(s, r).status, status::complete);
}

TEST(Http1Response, StreamsDecodeTheSameHoweverSplit) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloNEXT", "200|hello|NEXT"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n"
       "T: v\r\n\r\nREST",
       "200|abcde|REST"},
      {"HTTP/1.1 200 OK\r\n\r\nall of it", "200|all of it|eof-ok"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "200|short|eof-short"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "body_error|bad_chunk"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nX", "200||X"},
  };
  for (const auto& [input, want] : cases) {
    for (size_t piece = 1; piece <= input.size(); ++piece)
      EXPECT_EQ(run_stream(input, piece), want) << input << " piece " << piece;
  }
}

TEST(Http1Response, WriterProducesParseableRequests) {
  byte_buffer out;
  request_writer w(out);
  w.start("POST", "/v1/chat/completions");
  w.header("Host", "127.0.0.1:8000");
  w.header("Content-Type", "application/json");
  w.end_with_length(2);
  out.append("{}");
  EXPECT_EQ(out.view(),
            "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: "
            "application/json\r\nContent-Length: 2\r\n\r\n{}");
  request req;
  result r = parse_head(out.data(), out.size(), limits{}, req);
  ASSERT_EQ(r.status, status::complete);
  EXPECT_EQ(req.content_length, 2u);
  byte_buffer get;
  request_writer g(get);
  g.start("GET", "/");
  g.header("Host", "x");
  g.end_no_body();
  EXPECT_EQ(get.view(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
}

TEST(Http1Response, FieldChecks) {
  EXPECT_TRUE(field_name_ok("X-Request-Id"));
  EXPECT_FALSE(field_name_ok(""));
  EXPECT_FALSE(field_name_ok("a b"));
  EXPECT_TRUE(field_text_ok("anything \t goes"));
  EXPECT_FALSE(field_text_ok("a\r\nInjected: 1"));
  EXPECT_FALSE(field_text_ok(std::string("a\0b", 3)));
}

}  // namespace
}  // namespace rc::http1
