// response_writer, date_cache and chunk framing: byte-exact output.
#include "proto/http1_writer.h"

#include <gtest/gtest.h>

#include <string>

namespace rc::http1 {
namespace {

constexpr std::time_t rfc_example_s = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT

TEST(Http1Writer, DateCacheFormatsImfFixdate) {
  date_cache d;
  EXPECT_EQ(d.value().size(), 29u);
  EXPECT_TRUE(d.refresh(rfc_example_s));
  EXPECT_EQ(d.value(), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_FALSE(d.refresh(rfc_example_s));  // same second: nothing to do
  EXPECT_TRUE(d.refresh(rfc_example_s + 1));
  EXPECT_EQ(d.value(), "Sun, 06 Nov 1994 08:49:38 GMT");
  EXPECT_TRUE(d.refresh(0));
  EXPECT_EQ(d.value(), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_TRUE(d.refresh(951782400));  // leap day
  EXPECT_EQ(d.value(), "Tue, 29 Feb 2000 00:00:00 GMT");
  EXPECT_TRUE(d.refresh(253402300799));
  EXPECT_EQ(d.value(), "Fri, 31 Dec 9999 23:59:59 GMT");
}

TEST(Http1Writer, ReasonPhrases) {
  const std::pair<int, std::string_view> cases[] = {
      {100, "Continue"},
      {101, "Switching Protocols"},
      {200, "OK"},
      {201, "Created"},
      {202, "Accepted"},
      {204, "No Content"},
      {206, "Partial Content"},
      {301, "Moved Permanently"},
      {302, "Found"},
      {304, "Not Modified"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {408, "Request Timeout"},
      {409, "Conflict"},
      {411, "Length Required"},
      {413, "Content Too Large"},
      {414, "URI Too Long"},
      {415, "Unsupported Media Type"},
      {422, "Unprocessable Content"},
      {426, "Upgrade Required"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
      {505, "HTTP Version Not Supported"},
      {299, "Unknown"},
      {999, "Unknown"},
  };
  for (auto [code, phrase] : cases) EXPECT_EQ(reason_phrase(code), phrase) << code;
}

struct writer_fixture {
  date_cache date;
  byte_buffer out;
  response_writer w{out, date};
  writer_fixture() { date.refresh(rfc_example_s); }
  std::string text() const { return std::string(out.view()); }
};

constexpr std::string_view date_line = "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";

TEST(Http1Writer, ResponseWithBody) {
  writer_fixture f;
  f.w.start(200);
  f.w.header("Content-Type", "text/plain");
  f.w.header("x-request-id", "abc");
  f.w.end_with_body("ok");
  EXPECT_EQ(f.text(), "HTTP/1.1 200 OK\r\n" + std::string(date_line) +
                          "Content-Type: text/plain\r\nx-request-id: abc\r\n"
                          "Content-Length: 2\r\n\r\nok");
}

TEST(Http1Writer, NumbersConnectionAndEmptyBody) {
  writer_fixture f;
  f.w.start(429);
  f.w.header("Retry-After", uint64_t{1});
  f.w.header("x-big", uint64_t{18446744073709551615u});
  f.w.header("x-zero", uint64_t{0});
  f.w.connection(connection_header::close);
  f.w.end_with_body("");
  EXPECT_EQ(f.text(), "HTTP/1.1 429 Too Many Requests\r\n" + std::string(date_line) +
                          "Retry-After: 1\r\nx-big: 18446744073709551615\r\nx-zero: 0\r\n"
                          "Connection: close\r\nContent-Length: 0\r\n\r\n");
}

TEST(Http1Writer, ControlBytesThatCannotSplitAreAllowed) {
  writer_fixture f;
  f.w.header("X", "a\tb\x0b\x01 \x7f\xc3\xa9 0123456789");
  EXPECT_EQ(f.text(), "X: a\tb\x0b\x01 \x7f\xc3\xa9 0123456789\r\n");
}

TEST(Http1Writer, ConnectionHeaders) {
  writer_fixture f;
  f.w.connection(connection_header::none);
  f.w.connection(connection_header::keep_alive);
  f.w.connection(connection_header::upgrade);
  f.w.connection(connection_header::close);
  EXPECT_EQ(f.text(), "Connection: keep-alive\r\nConnection: Upgrade\r\nConnection: close\r\n");
}

TEST(Http1Writer, SwitchingProtocolsAndNoBody) {
  writer_fixture f;
  f.w.start(101);
  f.w.header("Upgrade", "websocket");
  f.w.connection(connection_header::upgrade);
  f.w.end_head_no_body();
  EXPECT_EQ(f.text(), "HTTP/1.1 101 Switching Protocols\r\n" + std::string(date_line) +
                          "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
}

TEST(Http1Writer, LengthOnlyAndUnknownStatus) {
  writer_fixture f;
  f.w.start(599);
  f.w.end_with_length(1234567);
  EXPECT_EQ(f.text(), "HTTP/1.1 599 Unknown\r\n" + std::string(date_line) +
                          "Content-Length: 1234567\r\n\r\n");
}

TEST(Http1Writer, ChunkedStream) {
  writer_fixture f;
  f.w.start(200);
  f.w.header("Content-Type", "text/event-stream");
  f.w.end_chunked_head();
  write_chunk(f.out, "data: hi\n\n");
  write_chunk(f.out, "");
  write_chunk_header(f.out, 255);
  f.out.append(std::string(255, 'x'));
  f.out.append("\r\n");
  write_chunk_header(f.out, 0x10000);
  write_last_chunk(f.out);
  EXPECT_EQ(f.text(), "HTTP/1.1 200 OK\r\n" + std::string(date_line) +
                          "Content-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "a\r\ndata: hi\n\n\r\nff\r\n" +
                          std::string(255, 'x') + "\r\n10000\r\n0\r\n\r\n");
}

TEST(Http1Writer, PipelinedResponsesAppend) {
  writer_fixture f;
  for (int i = 0; i < 3; ++i) {
    f.w.start(204);
    f.w.end_head_no_body();
  }
  std::string one = "HTTP/1.1 204 No Content\r\n" + std::string(date_line) + "\r\n";
  EXPECT_EQ(f.text(), one + one + one);
  EXPECT_EQ(continue_response, "HTTP/1.1 100 Continue\r\n\r\n");
}

TEST(Http1Writer, ResponseSplittingIsAProgrammerError) {
  writer_fixture f;
  EXPECT_DEATH(f.w.header("X", "a\r\nSet-Cookie: x"), "safe_field_text");
  EXPECT_DEATH(f.w.header("X\n", "a"), "safe_field_text");
  EXPECT_DEATH(f.w.header("X", std::string_view("long value with a NUL\0 in it", 29)),
               "safe_field_text");
  EXPECT_DEATH(f.w.header("X", "0123456789abcdef\r"), "safe_field_text");
  EXPECT_DEATH(write_chunk_header(f.out, 0), "n > 0");
  EXPECT_DEATH(f.w.start(42), "status");
}

}  // namespace
}  // namespace rc::http1
