// parse_head on hostile and malformed input: every request-smuggling vector and limit maps to its
// exact error code and status, whole and split at every byte.
#include <gtest/gtest.h>

#include <string>

#include "http1_test_util.h"
#include "proto/http1_parser.h"

namespace rc::http1 {
namespace {

void expect_error(std::string_view s, error e, const limits& lim = {}) {
  test::parsed p = test::parse(s, lim);
  EXPECT_EQ(p.res.status, status::error) << s;
  EXPECT_EQ(name_of(p.res.error), name_of(e)) << s;
  test::expect_split_invariant(s, lim);
}

std::string with_fields(std::string_view fields, std::string_view version = "HTTP/1.1") {
  return "POST /p " + std::string(version) + "\r\n" + std::string(fields) + "\r\n";
}

TEST(Http1Reject, ErrorTableIsComplete) {
  for (int i = 0; i <= static_cast<int>(error::body_too_large); ++i) {
    auto e = static_cast<error>(i);
    EXPECT_FALSE(name_of(e).empty());
    EXPECT_FALSE(message_of(e).empty());
    EXPECT_EQ(message_of(e).find('\n'), std::string_view::npos);
  }
  EXPECT_EQ(status_of(error::bad_request_line), 400);
  EXPECT_EQ(status_of(error::version_not_supported), 505);
  EXPECT_EQ(status_of(error::uri_too_long), 414);
  EXPECT_EQ(status_of(error::header_section_too_large), 431);
  EXPECT_EQ(status_of(error::too_many_headers), 431);
  EXPECT_EQ(status_of(error::unsupported_transfer_coding), 501);
  EXPECT_EQ(status_of(error::body_too_large), 413);
  EXPECT_EQ(status_of(error::bare_cr), 400);
  EXPECT_EQ(name_of(error::bare_cr), "bare_cr");
  EXPECT_EQ(name_of(error::body_too_large), "body_too_large");
  EXPECT_EQ(message_of(error::content_length_with_transfer_encoding),
            "Content-Length and Transfer-Encoding must not both be present");
}

TEST(Http1Reject, ContentLengthWithTransferEncoding) {
  expect_error(with_fields("Host: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n"),
               error::content_length_with_transfer_encoding);
  expect_error(with_fields("Host: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n"),
               error::content_length_with_transfer_encoding);
  EXPECT_EQ(status_of(error::content_length_with_transfer_encoding), 400);
}

TEST(Http1Reject, ConflictingContentLength) {
  expect_error(with_fields("Host: h\r\nContent-Length: 5, 6\r\n"),
               error::conflicting_content_length);
  expect_error(with_fields("Host: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n"),
               error::conflicting_content_length);
  expect_error(with_fields("Host: h\r\nContent-Length: 5\r\nContent-Length: 05, 6\r\n"),
               error::conflicting_content_length);
}

TEST(Http1Reject, MalformedContentLength) {
  for (std::string_view v :
       {"", " ", "abc", "-5", "+5", "5 5", "0x5", "5.0", "5,", ",5", "5,,5", "1e3",
        "18446744073709551616", "99999999999999999999999", "\xd9\xa5", "5;x"}) {
    expect_error(with_fields("Host: h\r\nContent-Length: " + std::string(v) + "\r\n"),
                 error::bad_content_length);
  }
  EXPECT_EQ(status_of(error::bad_content_length), 400);
}

TEST(Http1Reject, DeclaredBodyOverTheLimit) {
  limits lim;
  lim.body_bytes_max = 100;
  test::parsed ok = test::parse(with_fields("Host: h\r\nContent-Length: 100\r\n"), lim);
  EXPECT_EQ(ok.res.status, status::complete);
  expect_error(with_fields("Host: h\r\nContent-Length: 101\r\n"), error::body_too_large, lim);
  expect_error(with_fields("Host: h\r\nContent-Length: 18446744073709551615\r\n"),
               error::body_too_large);
}

TEST(Http1Reject, TransferCodings) {
  auto te = [](std::string_view v) {
    return with_fields("Host: h\r\nTransfer-Encoding: " + std::string(v) + "\r\n");
  };
  expect_error(te("gzip, chunked"), error::unsupported_transfer_coding);
  expect_error(te("x-custom;q=1 , chunked"), error::unsupported_transfer_coding);
  EXPECT_EQ(status_of(error::unsupported_transfer_coding), 501);
  // chunked missing, not final, repeated, with parameters, or a malformed list: 400.
  for (std::string_view v :
       {"gzip", "identity", "chunked, gzip", "chunked, chunked", "chunked,", ", chunked", "",
        "chunked;a=b", "chunk", "xchunked", "\"chunked\"", "chunked x", "gzip x, chunked"}) {
    expect_error(te(v), error::bad_transfer_encoding);
  }
  expect_error(
      with_fields("Host: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
      error::bad_transfer_encoding);
  expect_error(with_fields("Host: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"),
               error::bad_transfer_encoding);
  EXPECT_EQ(status_of(error::bad_transfer_encoding), 400);
}

TEST(Http1Reject, TransferEncodingInHttp10) {
  expect_error(with_fields("Transfer-Encoding: chunked\r\n", "HTTP/1.0"),
               error::transfer_encoding_in_http_1_0);
  EXPECT_EQ(status_of(error::transfer_encoding_in_http_1_0), 400);
}

TEST(Http1Reject, FieldLineSyntax) {
  expect_error(with_fields("Host: h\r\nX: a\r\n b\r\n"), error::obs_fold);
  expect_error(with_fields("Host: h\r\nX: a\r\n\tb\r\n"), error::obs_fold);
  expect_error(with_fields(" Host: h\r\n"), error::obs_fold);
  expect_error(with_fields("Host : h\r\n"), error::space_before_colon);
  expect_error(with_fields("Host\t: h\r\n"), error::space_before_colon);
  expect_error(with_fields("Host: h\r\nTransfer-Encoding : chunked\r\n"),
               error::space_before_colon);
  expect_error(with_fields("Host: h\r\nX Y: v\r\n"), error::space_before_colon);
  for (std::string_view line :
       {": v", "Ho(st: h", "Host", "X\x80: v", "X\x7f: v", "X@: v", "X/y: v", "X\x01: v"}) {
    expect_error(with_fields("Host: h\r\n" + std::string(line) + "\r\n"), error::bad_header_name);
  }
  for (char c : {'\0', '\x01', '\x08', '\x0b', '\x0c', '\x1b', '\x1f', '\x7f'}) {
    std::string v = "a";
    v += c;
    v += "b";
    expect_error(with_fields("Host: h\r\nX: " + v + "\r\n"), error::bad_header_value);
  }
  EXPECT_EQ(status_of(error::obs_fold), 400);
  EXPECT_EQ(status_of(error::space_before_colon), 400);
  EXPECT_EQ(status_of(error::bad_header_name), 400);
  EXPECT_EQ(status_of(error::bad_header_value), 400);
}

TEST(Http1Reject, BareCrAnywhere) {
  const std::string cases[] = {
      "GET\r / HTTP/1.1\r\nHost: h\r\n\r\n",        "GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET / HTTP/1.1\rX\r\nHost: h\r\n\r\n",       "GET / HTTP/1.1\r\r\nHost: h\r\n\r\n",
      "GET / HTTP/1.1\r\nHo\rst: h\r\n\r\n",        "GET / HTTP/1.1\r\nHost: h\rx\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\r\n\r\n",        "GET / HTTP/1.1\r\nHost: h\r\n\rX\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX: \r\r\n\r\n", "\rGET / HTTP/1.1\r\nHost: h\r\n\r\n",
  };
  for (const std::string& s : cases) expect_error(s, error::bare_cr);
}

TEST(Http1Reject, Host) {
  expect_error("GET / HTTP/1.1\r\nX: y\r\n\r\n", error::missing_host);
  expect_error("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", error::duplicate_host);
  expect_error("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", error::duplicate_host);
  for (std::string_view v : {"a/b", "a@b", "a?b", "a b", "a#b", "h\xc3\xa9", "a\"b", "a\\b"}) {
    expect_error("GET / HTTP/1.1\r\nHost: " + std::string(v) + "\r\n\r\n", error::bad_host);
  }
  EXPECT_EQ(test::parse("GET / HTTP/1.1\r\nHost:\r\n\r\n").res.status, status::complete);
  EXPECT_EQ(test::parse("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n").res.status, status::complete);
}

TEST(Http1Reject, RequestLine) {
  expect_error("G(T / HTTP/1.1\r\n\r\n", error::bad_method);
  expect_error("GET\x7f / HTTP/1.1\r\n\r\n", error::bad_method);
  expect_error("GE\xc3\x89T / HTTP/1.1\r\n\r\n", error::bad_method);
  expect_error("GET/ HTTP/1.1\r\n\r\n", error::bad_method);
  expect_error(" GET / HTTP/1.1\r\n\r\n", error::bad_request_line);
  expect_error("GET\r\n\r\n", error::bad_request_line);
  expect_error("GET\n\n", error::bad_request_line);
  expect_error("GET /\r\n\r\n", error::bad_request_line);
  expect_error("GET  HTTP/1.1\r\n\r\n", error::bad_request_line);
  expect_error("GET /HTTP/1.1\r\n\r\n", error::bad_request_line);
  // A TLS ClientHello (or anything binary) fails on its first byte, without waiting for more.
  expect_error("\x16\x03\x01\x02\x00\x01", error::bad_method);
  expect_error("\x16", error::bad_method);
}

TEST(Http1Reject, Versions) {
  for (std::string_view v : {"HTTP/2.0", "HTTP/3.0", "HTTP/0.9", "HTTP/9.9"}) {
    expect_error("GET / " + std::string(v) + "\r\nHost: h\r\n\r\n", error::version_not_supported);
  }
  expect_error("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", error::version_not_supported);
  EXPECT_EQ(status_of(error::version_not_supported), 505);
  for (std::string_view v : {"HTTP/1.10", "http/1.1", "HTTP/1", "HTTP/2", "HTTP/1.1 ", "HTTP/1. ",
                             "HTTP/1.x", "HTTP/a.b", "HTTPS/1.1", "HTTP/1,1", "HTTP/11"}) {
    expect_error("GET / " + std::string(v) + "\r\nHost: h\r\n\r\n", error::bad_version);
  }
}

TEST(Http1Reject, Targets) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"GET", "*"},           {"POST", "*"},           {"GET", "example.com:443"},
      {"GET", "example.com"}, {"CONNECT", "/"},        {"CONNECT", "example.com"},
      {"CONNECT", ":443"},    {"CONNECT", "a.b:"},     {"CONNECT", "a.b:44x"},
      {"GET", "/a\x7f"},      {"GET", "/caf\xc3\xa9"}, {"GET", "/a#frag"},
      {"GET", "/<script>"},   {"GET", "/\"q\""},       {"GET", "/a\tb"},
      {"GET", "/a\x01"},      {"GET", "ftp://a/b"},    {"GET", "http://"},
      {"GET", "http:///p"},   {"GET", "http://u@h/"},  {"GET", "http:/h/"},
      {"OPTIONS", "**"},      {"GET", " /"},           {"GET", "/a b"},
  };
  for (auto [m, t] : cases) {
    expect_error(std::string(m) + " " + std::string(t) + " HTTP/1.1\r\nHost: h\r\n\r\n",
                 error::bad_target);
  }
  EXPECT_EQ(status_of(error::bad_target), 400);
}

// The request line may be request_line_bytes_max bytes plus its CRLF.
TEST(Http1Reject, RequestLineLimit) {
  auto line = [](size_t n) {
    std::string l = "GET /";
    l += std::string(n - l.size() - 9, 'a');
    return l + " HTTP/1.1";
  };
  ASSERT_EQ(line(8192).size(), 8192u);
  std::string host = "\r\nHost: h\r\n\r\n";
  EXPECT_EQ(test::parse(line(8192) + host).res.status, status::complete);
  EXPECT_EQ(test::parse(line(8192) + "\nHost: h\r\n\r\n").res.status, status::complete);
  expect_error(line(8193) + host, error::uri_too_long);
  // Incomplete input is rejected as soon as it proves the line too long.
  expect_error(line(8193), error::uri_too_long);
  expect_error(line(8192) + "x", error::uri_too_long);
  EXPECT_EQ(test::parse(line(8192) + "\r").res.status, status::incomplete);
  EXPECT_EQ(test::parse(line(8192)).res.status, status::incomplete);
  expect_error(line(8192) + "\rx", error::uri_too_long);
  expect_error("GET /" + std::string(20000, 'a'), error::uri_too_long);
  EXPECT_EQ(status_of(error::uri_too_long), 414);
}

// The head, from the first byte through the empty line, may be header_bytes_max bytes.
TEST(Http1Reject, HeaderSectionLimit) {
  auto head = [](size_t n) {
    std::string h = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
    h += std::string(n - h.size() - 4, 'v');
    return h + "\r\n\r\n";
  };
  ASSERT_EQ(head(16384).size(), 16384u);
  EXPECT_EQ(test::parse(head(16384)).res.status, status::complete);
  EXPECT_EQ(test::parse(head(16384) + "next").res.status, status::complete);
  expect_error(head(16385), error::header_section_too_large);
  std::string over = head(16385);
  expect_error(over.substr(0, 16384), error::header_section_too_large);
  EXPECT_EQ(test::parse(over.substr(0, 16383)).res.status, status::incomplete);
  // Leading empty lines count toward the limit.
  expect_error("\r\n" + head(16383), error::header_section_too_large);
  expect_error(std::string(16384, '\n'), error::header_section_too_large);
  EXPECT_EQ(test::parse(std::string(16383, '\n')).res.status, status::incomplete);
  // A field error beyond the limit is not reported: the limit is what the bytes prove first.
  expect_error(over.substr(0, 16384) + "\x01\r\n\r\n", error::header_section_too_large);
}

TEST(Http1Reject, HeaderCountLimit) {
  auto fields = [](int n) {
    std::string s = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (int i = 1; i < n; ++i) s += "X-" + std::to_string(i) + ": v\r\n";
    return s + "\r\n";
  };
  EXPECT_EQ(test::parse(fields(100)).res.status, status::complete);
  expect_error(fields(101), error::too_many_headers);
  limits lim;
  lim.headers_max = header_capacity;
  EXPECT_EQ(test::parse(fields(128), lim).res.status, status::complete);
  expect_error(fields(129), error::too_many_headers, lim);
}

// Field errors wait for the complete head; the request line's do not.
TEST(Http1Reject, FieldErrorsWaitForTheCompleteHead) {
  EXPECT_EQ(test::parse("GET / HTTP/1.1\r\nHost : h\r\n").res.status, status::incomplete);
  EXPECT_EQ(test::parse("GET / HTTP/1.1\r\nX: \x01\r\nY").res.status, status::incomplete);
  EXPECT_EQ(test::parse("GET / HTTP/1.7\r\n").res.status, status::incomplete);
  EXPECT_EQ(test::parse("GET / HTTP/2.0\r\n").res.error, error::version_not_supported);
  EXPECT_EQ(test::parse("GET /\x01 HTTP/1.1\r\nHost").res.error, error::bad_target);
}

}  // namespace
}  // namespace rc::http1
