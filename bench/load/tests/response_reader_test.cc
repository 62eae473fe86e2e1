#include "load/response_reader.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "guard_page.h"

namespace rc::load {
namespace {

// What a reader made of a byte stream: one line per step, bodies concatenated per response.
struct transcript {
  std::vector<std::string> steps;
  bool operator==(const transcript&) const = default;
};

// Feeds `chunks` in order; body pieces are merged so that any split gives the same transcript.
transcript read_all(const std::vector<std::string_view>& chunks) {
  response_reader r;
  transcript t;
  std::string body;
  for (std::string_view chunk : chunks) {
    std::string_view in = chunk, piece;
    for (bool more = true; more;) {
      switch (r.next(in, piece)) {
        case response_reader::step::need_more:
          more = false;
          break;
        case response_reader::step::head:
          t.steps.push_back("head " + std::to_string(r.status()) + (r.chunked() ? " chunked" : ""));
          break;
        case response_reader::step::body:
          body.append(piece);
          break;
        case response_reader::step::done:
          t.steps.push_back("body " + body);
          t.steps.push_back("done");
          body.clear();
          break;
        case response_reader::step::error:
          t.steps.push_back("error " + std::string(describe(r.error())));
          return t;
      }
    }
  }
  if (!body.empty()) t.steps.push_back("body " + body);
  return t;
}

transcript read_whole(std::string_view s) {
  return read_all({s});
}

// Every split into two pieces, and byte by byte, read the same as the whole.
void expect_split_invariant(std::string_view s) {
  transcript whole = read_whole(s);
  for (size_t i = 0; i <= s.size(); ++i)
    ASSERT_EQ(read_all({s.substr(0, i), s.substr(i)}), whole) << "split at " << i;
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < s.size(); ++i) bytes.push_back(s.substr(i, 1));
  ASSERT_EQ(read_all(bytes), whole);
}

constexpr std::string_view two_responses =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n"
    "{\"status\":\"ok\"}"
    "HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nno";

constexpr std::string_view chunked =
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5\r\nhello\r\n"
    "A;ext=1\r\n, world!!!\r\n"
    "1a\r\n abcdefghijklmnopqrstuvwxy\r\n"
    "0\r\nX-Trailer: yes\r\n\r\n"
    "HTTP/1.1 204 No Content\r\n\r\n";

TEST(ResponseReader, ReadsPipelinedLengthDelimitedResponses) {
  transcript t = read_whole(two_responses);
  EXPECT_EQ(t.steps, (std::vector<std::string>{"head 200", "body {\"status\":\"ok\"}", "done",
                                               "head 404", "body no", "done"}));
  expect_split_invariant(two_responses);
}

TEST(ResponseReader, ReadsChunkedBodiesWithExtensionsAndTrailers) {
  transcript t = read_whole(chunked);
  EXPECT_EQ(t.steps, (std::vector<std::string>{"head 200 chunked",
                                               "body hello, world!!! abcdefghijklmnopqrstuvwxy",
                                               "done", "head 204", "body ", "done"}));
  expect_split_invariant(chunked);
}

TEST(ResponseReader, StopsAtUpgradeAndLeavesTheRest) {
  std::string s =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
      "sec-websocket-accept:  abc= \r\n\r\n\x81\x02hi";
  response_reader r;
  std::string_view in = s, body;
  ASSERT_EQ(r.next(in, body), response_reader::step::head);
  EXPECT_EQ(r.status(), 101);
  EXPECT_EQ(r.header("Sec-WebSocket-Accept"), "abc=");
  EXPECT_EQ(r.header("Missing"), "");
  EXPECT_EQ(in, "\x81\x02hi");
  EXPECT_EQ(r.next(in, body), response_reader::step::error);
  EXPECT_EQ(r.error(), response_error::upgraded);
}

TEST(ResponseReader, KeepsAHeadSplitAcrossReadsForHeaderLookups) {
  std::string s = "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: xyz\r\n\r\n";
  response_reader r;
  std::string_view a = std::string_view(s).substr(0, 20), b = std::string_view(s).substr(20), body;
  ASSERT_EQ(r.next(a, body), response_reader::step::need_more);
  ASSERT_EQ(r.next(b, body), response_reader::step::head);
  EXPECT_EQ(r.header("sec-websocket-accept"), "xyz");
}

TEST(ResponseReader, BodyUntilCloseWithoutFraming) {
  transcript t = read_all({"HTTP/1.0 200 OK\r\n\r\nevent", "s go on"});
  EXPECT_EQ(t.steps, (std::vector<std::string>{"head 200", "body events go on"}));
}

TEST(ResponseReader, RejectsMalformedInput) {
  EXPECT_EQ(read_whole("HTTP/2 200 OK\r\n\r\n").steps.back(), "error malformed status line");
  EXPECT_EQ(read_whole("HTTP/1.1 2x0 OK\r\n\r\n").steps.back(), "error malformed status line");
  EXPECT_EQ(read_whole("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n").steps.back(),
            "error malformed Content-Length");
  EXPECT_EQ(read_whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").steps.back(),
            "error malformed chunked framing");
  EXPECT_EQ(
      read_whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n").steps.back(),
      "error malformed chunked framing");
  EXPECT_EQ(read_whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "fffffffffffffffffff\r\n")
                .steps.back(),
            "error malformed chunked framing");
  std::string huge = "HTTP/1.1 200 OK\r\nX: " + std::string(20000, 'a');
  EXPECT_EQ(read_whole(huge).steps.back(), "error response head too large");
  EXPECT_EQ(read_all({huge.substr(0, 10000), huge.substr(10000)}).steps.back(),
            "error response head too large");
}

TEST(ResponseReader, NeverReadsPastTheInput) {
  for (std::string_view s : {two_responses, chunked}) {
    for (size_t n = 0; n <= s.size(); ++n) {
      testing::guarded_bytes g(s.substr(0, n));
      read_whole(g.view());
    }
  }
}

}  // namespace
}  // namespace rc::load
