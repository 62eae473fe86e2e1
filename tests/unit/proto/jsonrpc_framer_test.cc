#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "guarded_input.h"
#include "proto/jsonrpc.h"

namespace rc::jsonrpc {
namespace {

struct outcome {
  std::vector<std::string> messages;
  framer::status last = framer::status::need_more;
};

// Feeds `chunks` in order, draining every message after each feed.
outcome run(framing f, size_t max, const std::vector<std::string_view>& chunks) {
  framer fr(f, max);
  outcome o;
  test::guarded_input guard(1 << 20);
  for (std::string_view c : chunks) {
    fr.feed(guard.place(c));  // the framer must not read past the chunk
    std::string_view m;
    for (;;) {
      o.last = fr.next(m);
      if (o.last != framer::status::message) break;
      o.messages.emplace_back(m);
    }
    if (o.last != framer::status::need_more) break;
  }
  return o;
}

// Every split of `stream` into two chunks, and byte by byte, gives the same outcome as the whole.
void expect_split_invariant(framing f, size_t max, std::string_view stream, const outcome& want) {
  for (size_t i = 0; i <= stream.size(); ++i) {
    outcome got = run(f, max, {stream.substr(0, i), stream.substr(i)});
    EXPECT_EQ(got.messages, want.messages) << "split at " << i;
    EXPECT_EQ(got.last, want.last) << "split at " << i;
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < stream.size(); ++i) bytes.push_back(stream.substr(i, 1));
  outcome got = run(f, max, bytes);
  EXPECT_EQ(got.messages, want.messages) << "byte by byte";
  EXPECT_EQ(got.last, want.last) << "byte by byte";
}

TEST(JsonrpcFramer, LinesSplitAtEveryByte) {
  std::string stream = "{\"a\":1}\n\n{\"b\":\"x\\ny\"}\r\n  \r\n{}\n{\"partial\":";
  outcome want{{"{\"a\":1}", "{\"b\":\"x\\ny\"}", "{}"}, framer::status::need_more};
  EXPECT_EQ(run(framing::lines, 64, {stream}).messages, want.messages);
  expect_split_invariant(framing::lines, 64, stream, want);
}

TEST(JsonrpcFramer, LinesOverMaxAreTooLargeAndSticky) {
  std::string line(65, 'x');
  outcome o = run(framing::lines, 64, {"{}\n" + line + "\n{}\n"});
  EXPECT_EQ(o.messages, std::vector<std::string>{"{}"});
  EXPECT_EQ(o.last, framer::status::too_large);
  // Without the newline yet: detected as soon as the partial line cannot fit.
  expect_split_invariant(framing::lines, 64, "{}\n" + line, {{"{}"}, framer::status::too_large});
  framer fr(framing::lines, 4);
  fr.feed("123456");
  std::string_view m;
  EXPECT_EQ(fr.next(m), framer::status::too_large);
  fr.feed("\n{}\n");
  EXPECT_EQ(fr.next(m), framer::status::too_large);  // never resynchronizes
}

TEST(JsonrpcFramer, LinesExactlyMaxFitsWithCrlf) {
  std::string line(64, 'x');
  expect_split_invariant(framing::lines, 64, line + "\r\n" + line + "\n",
                         {{line, line}, framer::status::need_more});
  expect_split_invariant(framing::lines, 64, line + "\r\r\n", {{}, framer::status::too_large});
}

TEST(JsonrpcFramer, ContentLengthSplitAtEveryByte) {
  std::string stream =
      "Content-Length: 7\r\n\r\n{\"a\":1}"
      "content-length:2\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{}"
      "\r\nCONTENT-LENGTH:  3 \n\n[1]"
      "Content-Length: 10\r\n\r\n{\"b\"";
  outcome want{{"{\"a\":1}", "{}", "[1]"}, framer::status::need_more};
  EXPECT_EQ(run(framing::content_length, 64, {stream}).messages, want.messages);
  expect_split_invariant(framing::content_length, 64, stream, want);
}

TEST(JsonrpcFramer, ContentLengthBodyMayHoldNewlines) {
  std::string body = "{\n  \"a\": \"\\r\\n\"\n}\n";
  std::string stream = "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  expect_split_invariant(framing::content_length, 64, stream, {{body}, framer::status::need_more});
}

TEST(JsonrpcFramer, ContentLengthBadHeaders) {
  for (std::string_view h : {
           "Content-Type: x\r\n\r\n{}",                         // missing length
           "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",  // duplicated
           "Content-Length: -2\r\n\r\n{}", "Content-Length: 2x\r\n\r\n{}",
           "Content-Length:\r\n\r\n{}", "Content-Length 2\r\n\r\n{}",  // no colon
           ": 2\r\n\r\n{}", "{\"jsonrpc\":\"2.0\"}\n\n",               // a line-framed message
       }) {
    outcome o = run(framing::content_length, 64, {h});
    EXPECT_TRUE(o.messages.empty()) << h;
    EXPECT_EQ(o.last, framer::status::bad_header) << h;
  }
}

TEST(JsonrpcFramer, ContentLengthOversized) {
  for (std::string_view h :
       {"Content-Length: 65\r\n\r\n", "Content-Length: 99999999999999999999999\r\n\r\n",
        "Content-Length: 18446744073709551616\r\n\r\n"}) {
    outcome o = run(framing::content_length, 64, {h});
    EXPECT_EQ(o.last, framer::status::too_large) << h;
  }
  // Exactly the maximum is fine, leading zeros too.
  std::string body(64, ' ');
  outcome o = run(framing::content_length, 64, {"Content-Length: 00064\r\n\r\n" + body});
  EXPECT_EQ(o.messages, std::vector<std::string>{body});
}

TEST(JsonrpcFramer, ContentLengthHeaderBlockIsBounded) {
  std::string endless = "X-Junk: " + std::string(header_bytes_max, 'a');
  outcome o = run(framing::content_length, 64, {endless});
  EXPECT_EQ(o.last, framer::status::bad_header);
  std::string many;
  while (many.size() <= header_bytes_max) many += "X: y\r\n";
  o = run(framing::content_length, 64, {"Content-Length: 2\r\n" + many + "\r\n{}"});
  EXPECT_EQ(o.last, framer::status::bad_header);
}

TEST(JsonrpcFramer, FrameRoundTrips) {
  for (framing f : {framing::lines, framing::content_length}) {
    std::string out;
    frame(f, "{\"a\":1}", out);
    frame(f, "{}", out);
    outcome o = run(f, 64, {out});
    EXPECT_EQ(o.messages, (std::vector<std::string>{"{\"a\":1}", "{}"}));
    EXPECT_EQ(o.last, framer::status::need_more);
  }
  std::string out;
  frame(framing::content_length, "{}", out);
  EXPECT_EQ(out, "Content-Length: 2\r\n\r\n{}");
}

TEST(JsonrpcFramer, ManySmallFeedsOfOneLargeMessageStayLinear) {
  // 1 MiB in 1-byte feeds: the scan resumes where it stopped (a quadratic rescan would time out).
  framer fr(framing::lines, 2 << 20);
  std::string_view m;
  std::string big(1 << 20, 'x');
  for (char c : big) {
    fr.feed(std::string_view(&c, 1));
    ASSERT_EQ(fr.next(m), framer::status::need_more);
  }
  fr.feed("\n");
  ASSERT_EQ(fr.next(m), framer::status::message);
  EXPECT_EQ(m.size(), big.size());
}

}  // namespace
}  // namespace rc::jsonrpc
