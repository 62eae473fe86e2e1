// parse_head on valid requests: fields, framing, connection rules, target forms, pipelining, and
// results that do not depend on how the input is split.
#include "proto/http1_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "http1_test_util.h"

namespace rc::http1 {
namespace {

using test::guard_page;

struct parse_fixture {
  request req;
  result res;
  explicit parse_fixture(std::string_view s, const limits& lim = {}) {
    res = parse_head(s.data(), s.size(), lim, req);
  }
};

TEST(Http1Parser, SmallGet) {
  std::string s = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  parse_fixture p(s);
  ASSERT_EQ(p.res.status, status::complete);
  EXPECT_EQ(p.res.consumed, s.size());
  EXPECT_EQ(p.req.method, method::get);
  EXPECT_EQ(p.req.method_name, "GET");
  EXPECT_EQ(p.req.version, version::http_1_1);
  EXPECT_EQ(p.req.target, "/healthz");
  EXPECT_EQ(p.req.form, target_form::origin);
  EXPECT_EQ(p.req.path, "/healthz");
  EXPECT_EQ(p.req.query, "");
  EXPECT_EQ(p.req.host, "x");
  ASSERT_EQ(p.req.header_count, 1u);
  EXPECT_EQ(p.req.headers[0].name, "Host");
  EXPECT_EQ(p.req.body, body_kind::none);
  EXPECT_TRUE(p.req.keep_alive);
  EXPECT_FALSE(p.req.expect_continue);
  EXPECT_FALSE(p.req.upgrade);
  EXPECT_EQ(p.req.head_bytes, s.size());
  // The views point into the input: zero-copy.
  EXPECT_EQ(p.req.path.data(), s.data() + 4);
}

TEST(Http1Parser, PostWithContentLength) {
  std::string s =
      "POST /v1/chat/completions?stream=1 HTTP/1.1\r\nHost: api.example:8080\r\n"
      "Content-Type: application/json\r\nContent-Length: 13\r\nExpect: 100-Continue\r\n\r\n"
      "{\"a\":\"hello\"}";
  parse_fixture p(s);
  ASSERT_EQ(p.res.status, status::complete);
  EXPECT_EQ(s.substr(p.res.consumed), "{\"a\":\"hello\"}");
  EXPECT_EQ(p.req.method, method::post);
  EXPECT_EQ(p.req.path, "/v1/chat/completions");
  EXPECT_EQ(p.req.query, "stream=1");
  EXPECT_EQ(p.req.host, "api.example:8080");
  EXPECT_EQ(p.req.body, body_kind::content_length);
  EXPECT_EQ(p.req.content_length, 13u);
  EXPECT_TRUE(p.req.expect_continue);
  EXPECT_EQ(p.req.find("content-type"), "application/json");
  EXPECT_EQ(p.req.find("CONTENT-LENGTH"), "13");
  EXPECT_EQ(p.req.find("missing"), "");
}

TEST(Http1Parser, ChunkedHead) {
  parse_fixture p("PUT /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n");
  ASSERT_EQ(p.res.status, status::complete);
  EXPECT_EQ(p.req.method, method::put);
  EXPECT_EQ(p.req.body, body_kind::chunked);
}

TEST(Http1Parser, EveryMethod) {
  const std::pair<std::string_view, method> cases[] = {
      {"GET", method::get},        {"HEAD", method::head},      {"POST", method::post},
      {"PUT", method::put},        {"DELETE", method::delete_}, {"OPTIONS", method::options},
      {"PATCH", method::patch},    {"TRACE", method::trace},    {"PURGE", method::other},
      {"get", method::other},      {"GETS", method::other},     {"POSTS", method::other},
      {"M-SEARCH", method::other}, {"X", method::other},
  };
  for (auto [name, m] : cases) {
    std::string s = std::string(name) + " /x HTTP/1.1\r\nHost: h\r\n\r\n";
    parse_fixture p(s);
    ASSERT_EQ(p.res.status, status::complete) << name;
    EXPECT_EQ(p.req.method, m) << name;
    EXPECT_EQ(p.req.method_name, name);
  }
  parse_fixture c("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  ASSERT_EQ(c.res.status, status::complete);
  EXPECT_EQ(c.req.method, method::connect);
}

TEST(Http1Parser, Http10KeepAliveRules) {
  parse_fixture plain("GET / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(plain.res.status, status::complete);
  EXPECT_EQ(plain.req.version, version::http_1_0);
  EXPECT_FALSE(plain.req.keep_alive);
  EXPECT_EQ(plain.req.host, "");

  parse_fixture ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
  ASSERT_EQ(ka.res.status, status::complete);
  EXPECT_TRUE(ka.req.keep_alive);

  parse_fixture both("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n");
  EXPECT_FALSE(both.req.keep_alive);

  // 100-continue means nothing to a 1.0 client (RFC 9110 §10.1.1).
  parse_fixture expect("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
  ASSERT_EQ(expect.res.status, status::complete);
  EXPECT_FALSE(expect.req.expect_continue);
}

TEST(Http1Parser, Http11ConnectionTokens) {
  auto keep = [](std::string_view conn) {
    std::string s = "GET / HTTP/1.1\r\nHost: h\r\nConnection: " + std::string(conn) + "\r\n\r\n";
    parse_fixture p(s);
    EXPECT_EQ(p.res.status, status::complete) << conn;
    return p.req.keep_alive;
  };
  EXPECT_TRUE(keep("keep-alive"));
  EXPECT_FALSE(keep("close"));
  EXPECT_FALSE(keep("CLOSE"));
  EXPECT_FALSE(keep("foo, Close"));
  EXPECT_FALSE(keep("foo,close,bar"));
  EXPECT_FALSE(keep(" \tclose\t "));
  EXPECT_TRUE(keep("closed"));
  EXPECT_TRUE(keep("close-ish, x"));
  EXPECT_TRUE(keep(""));

  parse_fixture two("GET / HTTP/1.1\r\nHost: h\r\nConnection: x\r\nConnection: close\r\n\r\n");
  EXPECT_FALSE(two.req.keep_alive);
  EXPECT_TRUE(two.req.has_token("connection", "CLOSE"));
  EXPECT_TRUE(two.req.has_token("Connection", "x"));
  EXPECT_FALSE(two.req.has_token("Connection", "clos"));
}

TEST(Http1Parser, UpgradeNeedsBothFields) {
  parse_fixture ws(
      "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Version: 13\r\n\r\n");
  ASSERT_EQ(ws.res.status, status::complete);
  EXPECT_TRUE(ws.req.upgrade);
  EXPECT_TRUE(ws.req.has_token("upgrade", "WebSocket"));
  parse_fixture no_field("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n");
  EXPECT_FALSE(no_field.req.upgrade);
  parse_fixture no_token("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n");
  EXPECT_FALSE(no_token.req.upgrade);
}

TEST(Http1Parser, TargetForms) {
  parse_fixture abs("GET http://Example.com:8080/a/b?x=1&y=%20 HTTP/1.1\r\nHost: e\r\n\r\n");
  ASSERT_EQ(abs.res.status, status::complete);
  EXPECT_EQ(abs.req.form, target_form::absolute);
  EXPECT_EQ(abs.req.authority, "Example.com:8080");
  EXPECT_EQ(abs.req.path, "/a/b");
  EXPECT_EQ(abs.req.query, "x=1&y=%20");

  parse_fixture abs_bare("GET HTTPS://[::1]:8443 HTTP/1.1\r\nHost: e\r\n\r\n");
  ASSERT_EQ(abs_bare.res.status, status::complete);
  EXPECT_EQ(abs_bare.req.authority, "[::1]:8443");
  EXPECT_EQ(abs_bare.req.path, "");

  parse_fixture star("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(star.res.status, status::complete);
  EXPECT_EQ(star.req.form, target_form::asterisk);
  EXPECT_EQ(star.req.path, "*");

  parse_fixture conn("CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n");
  ASSERT_EQ(conn.res.status, status::complete);
  EXPECT_EQ(conn.req.form, target_form::authority);
  EXPECT_EQ(conn.req.authority, "db.internal:5432");

  // Split at the first '?', never percent-decoded; browsers' raw "unwise" bytes are accepted.
  parse_fixture q("GET /a%2Fb?c?d=/{x}|^`[] HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(q.res.status, status::complete);
  EXPECT_EQ(q.req.path, "/a%2Fb");
  EXPECT_EQ(q.req.query, "c?d=/{x}|^`[]");
  parse_fixture empty_query("GET /p? HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(empty_query.req.path, "/p");
  EXPECT_EQ(empty_query.req.query, "");
}

TEST(Http1Parser, FieldValuesAreTrimmedNotAltered) {
  parse_fixture p(
      "GET / HTTP/1.1\r\nHost:h\r\nX-A: \t a \t b \t\r\nX-Empty:\r\nX-Blank:   \r\n"
      "X-Obs: caf\xc3\xa9\r\nX-Punct: !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\r\n\r\n");
  ASSERT_EQ(p.res.status, status::complete);
  EXPECT_EQ(p.req.host, "h");
  EXPECT_EQ(p.req.find("x-a"), "a \t b");
  EXPECT_EQ(p.req.find("X-Empty"), "");
  EXPECT_EQ(p.req.find("X-Blank"), "");
  EXPECT_EQ(p.req.find("X-Obs"), "caf\xc3\xa9");
  EXPECT_EQ(p.req.find("X-Punct"), "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");
  EXPECT_EQ(p.req.header_count, 6u);
}

TEST(Http1Parser, BareLfLineEndsAndLeadingEmptyLines) {
  std::string s = "\r\n\n\r\nGET / HTTP/1.1\nHost: h\nX: 1\n\n";
  parse_fixture p(s);
  ASSERT_EQ(p.res.status, status::complete);
  EXPECT_EQ(p.res.consumed, s.size());
  EXPECT_EQ(p.req.head_bytes, s.size() - 5);
  EXPECT_EQ(p.req.find("x"), "1");
  EXPECT_EQ(parse_fixture("GET / HTTP/1.1\r\nHost: h\n\r\n").res.status, status::complete);
  EXPECT_EQ(parse_fixture("GET / HTTP/1.1\nHost: h\r\n\n").res.status, status::complete);
}

TEST(Http1Parser, HigherMinorVersionIsHttp11) {
  parse_fixture p("GET / HTTP/1.9\r\nHost: h\r\n\r\n");
  ASSERT_EQ(p.res.status, status::complete);
  EXPECT_EQ(p.req.version, version::http_1_1);
}

TEST(Http1Parser, IdenticalContentLengthsAreOneValue) {
  for (std::string_view fields :
       {"Content-Length: 5, 5", "Content-Length: 5,5 ,  5",
        "Content-Length: 5\r\ncontent-length: 5", "Content-Length: 005"}) {
    std::string s = "POST / HTTP/1.1\r\nHost: h\r\n" + std::string(fields) + "\r\n\r\n";
    parse_fixture p(s);
    ASSERT_EQ(p.res.status, status::complete) << fields;
    EXPECT_EQ(p.req.content_length, 5u);
  }
  parse_fixture zero("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(zero.req.body, body_kind::content_length);
  EXPECT_EQ(zero.req.content_length, 0u);
}

TEST(Http1Parser, IncompleteHeadsReportScannedBytes) {
  std::string s = "GET / HTTP/1.1\r\nHost: h\r\n\r";
  parse_fixture p(s);
  EXPECT_EQ(p.res.status, status::incomplete);
  EXPECT_EQ(p.res.consumed, s.size());
  EXPECT_EQ(parse_fixture("").res.status, status::incomplete);
  EXPECT_EQ(parse_fixture("\r\n\r\n").res.status, status::incomplete);
  EXPECT_EQ(parse_fixture("GET").res.status, status::incomplete);
}

// Mixed requests back to back in one buffer, each head followed by its body; the caller takes
// the body by Content-Length or through a chunked_decoder and continues after it.
TEST(Http1Parser, PipelinedRequests) {
  std::string batch =
      "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
      "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
      "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n"
      "\r\nGET /d?q HTTP/1.0\r\n\r\n"
      "HEAD /e HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  std::vector<std::string> seen;
  size_t pos = 0;
  while (pos < batch.size()) {
    request req;
    result r = parse_head(batch.data() + pos, batch.size() - pos, {}, req);
    ASSERT_EQ(r.status, status::complete) << pos;
    pos += r.consumed;
    std::string entry = std::string(req.method_name) + " " + std::string(req.target);
    if (req.body == body_kind::content_length) {
      entry.append(" ").append(batch, pos, req.content_length);
      pos += req.content_length;
    } else if (req.body == body_kind::chunked) {
      chunked_decoder dec({});
      byte_buffer body;
      result b = dec.feed(batch.data() + pos, batch.size() - pos, body);
      ASSERT_EQ(b.status, status::complete);
      entry.append(" ").append(body.view());
      pos += b.consumed;
    }
    entry += req.keep_alive ? " ka" : " close";
    seen.push_back(entry);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"GET /a ka", "POST /b hello ka", "POST /c abcde ka",
                                            "GET /d?q close", "HEAD /e close"}));
}

const std::vector<std::string>& sample_heads() {
  static const std::vector<std::string> heads = {
      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
      "\r\nPOST /v1/x?y=1 HTTP/1.1\r\nHost: h:1\r\nContent-Length: 5, 5\r\nExpect: 100-continue\r\n"
      "\r\n",
      "GET / HTTP/1.0\nConnection: keep-alive\n\n",
      "OPTIONS * HTTP/1.1\r\nHost: h\r\nX:\t\r\n\r\n",
      "GET http://a.b/c?d HTTP/1.1\r\nHost: a.b\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
      "PUT /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
      // Errors, both in the request line and in fields, must also not depend on the split.
      "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
      "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\n\r\r\n",
      "GET / HTTP/1.1\r\n\r\n",
  };
  return heads;
}

TEST(Http1Parser, SplitAtEveryByteGivesTheSameResult) {
  for (const std::string& s : sample_heads()) test::expect_split_invariant(s);
}

TEST(Http1Parser, SplitInvariantHoldsAtTheLimits) {
  limits lim;
  lim.request_line_bytes_max = 40;
  lim.header_bytes_max = 80;
  lim.headers_max = 3;
  const std::string cases[] = {
      "GET /" + std::string(26, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n",  // line of 40 bytes
      "GET /" + std::string(27, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n",  // 41
      "GET /" + std::string(26, 'a') + " HTTP/1.1\r\r\nHost: h\r\n\r\n",
      "GET /" + std::string(26, 'a') + " HTTP/1.1\nHost: h\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(48, 'v') + "\r\n\r\n",  // 80 bytes
      "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(49, 'v') + "\r\n\r\n",  // 81 bytes
      "GET / HTTP/1.1\r\nHost: h\r\nX\x01: " + std::string(60, 'v') + "\r\n\r\n",
      std::string(70, '\n') + "GET / HTTP/1.1\r\n\r\n",
      // A method token longer than the line limit: the limit is proven before the bad byte.
      std::string(41, 'M') + "\x01 / HTTP/1.1\r\n\r\n",
      std::string(40, 'M') + "\x01 / HTTP/1.1\r\n\r\n",
      std::string(40, 'M') + "\r\x01 / HTTP/1.1\r\n\r\n",
      std::string(40, 'M') + "\r\n\r\n",
  };
  for (const std::string& s : cases) test::expect_split_invariant(s, lim);
}

// A head arriving in many reads, each parse given the previous hint, is not rescanned from the
// start: the hint moves forward and the final result matches a whole parse.
TEST(Http1Parser, HintAdvancesWithTheInput) {
  std::string s = "GET / HTTP/1.1\r\nHost: h\r\nCookie: " + std::string(3000, 'c') + "\r\n\r\n";
  request req;
  size_t hint = 0;
  for (size_t n = 100; n < s.size(); n += 100) {
    result r = parse_head(s.data(), n, {}, req, hint);
    ASSERT_EQ(r.status, status::incomplete);
    EXPECT_EQ(r.consumed, n);
    hint = r.consumed;
  }
  result r = parse_head(s.data(), s.size(), {}, req, hint);
  ASSERT_EQ(r.status, status::complete);
  EXPECT_EQ(r.consumed, s.size());
  EXPECT_EQ(req.find("cookie").size(), 3000u);
}

TEST(Http1Parser, GuardPageCompleteAndTruncated) {
  guard_page guard;
  for (const std::string& s : sample_heads()) {
    for (size_t n = 0; n <= s.size(); ++n) {
      request req;
      result r = parse_head(guard.place(std::string_view(s).substr(0, n)), n, {}, req);
      EXPECT_LE(r.consumed, n);
    }
  }
  // Long runs exercise the 16-byte SIMD loops right up to the guard.
  for (size_t pad = 0; pad < 40; ++pad) {
    std::string s = "GET /" + std::string(pad, 'p') +
                    " HTTP/1.1\r\nHost: h\r\nX: " + std::string(pad, 'v') + "\r\n\r\n";
    for (size_t cut : {s.size(), s.size() - 1, s.size() - 2, s.size() - 3}) {
      request req;
      result r = parse_head(guard.place(std::string_view(s).substr(0, cut)), cut, {}, req);
      EXPECT_EQ(r.status, cut == s.size() ? status::complete : status::incomplete);
    }
  }
}

TEST(Http1Parser, HeadersMaxBeyondCapacityIsAProgrammerError) {
  limits lim;
  lim.headers_max = header_capacity + 1;
  request req;
  EXPECT_DEATH(parse_head("GET", 3, lim, req), "headers_max");
}

}  // namespace
}  // namespace rc::http1
