// HTTP/1.1 response writing: status line, a cached Date field, headers, and either a
// Content-Length body or chunked framing (for streams).
//
// Writers append to a byte_buffer and never fail (the buffer grows). A response is written in
// one go: start(), header()..., then exactly one of end_with_body() / end_chunked_head() /
// end_head_no_body(). Pipelined responses are simply appended one after another to the same
// buffer, so a batch of them leaves in one send.
//
// date_cache keeps the IMF-fixdate for the current second; the owning shard calls refresh()
// once per loop turn with the coarse wall clock, so formatting happens once a second, not per
// response. It starts out holding the time of its construction.
//
// Header names and values must not contain CR, LF or NUL (that would split the response); this
// is checked with RC_ASSERT, since the parser never lets such bytes in from a client.
//
// Thread-safety: none; a writer and a date_cache belong to one shard.
#pragma once

#include <cstdint>
#include <ctime>
#include <string_view>

#include "base/byte_buffer.h"

namespace rc::http1 {

// "200 OK" style reason phrases; unknown codes get "Unknown".
std::string_view reason_phrase(int status);

class date_cache {
 public:
  date_cache();
  // Reformats only when the second changed. Returns true if it did.
  bool refresh(std::time_t now_s);
  // "Sun, 06 Nov 1994 08:49:37 GMT" (29 bytes).
  std::string_view value() const { return {buf_, 29}; }

 private:
  std::time_t second_ = -1;
  char buf_[32];
};

enum class connection_header : uint8_t {
  none,        // nothing written: the HTTP/1.1 default (keep-alive)
  keep_alive,  // "Connection: keep-alive" (what an HTTP/1.0 client needs to hear)
  close,       // "Connection: close"
  upgrade,     // "Connection: Upgrade" (101 responses)
};

class response_writer {
 public:
  explicit response_writer(byte_buffer& out, const date_cache& date) : out_(out), date_(date) {}

  // Writes the status line ("HTTP/1.1 <code> <reason>") and the Date field.
  void start(int status);
  // Asserts (always on) that neither contains CR, LF or NUL: a header value carrying one would
  // split the response.
  void header(std::string_view name, std::string_view value);
  void header(std::string_view name, uint64_t value);
  // The same without the check, for the hot path. REQUIRES: name and value are constants of the
  // server, or bytes the request parser already validated as a field value.
  void header_trusted(std::string_view name, std::string_view value);
  void connection(connection_header c);

  // Content-Length: body.size(), the empty line, and the body.
  void end_with_body(std::string_view body);
  // Content-Length: n and the empty line; the caller appends exactly n body bytes itself.
  void end_with_length(uint64_t n);
  // Transfer-Encoding: chunked and the empty line; then use write_chunk()/write_last_chunk().
  void end_chunked_head();
  // Just the empty line: for 1xx, 101, 204 and 304, and close-delimited bodies.
  void end_head_no_body();

 private:
  byte_buffer& out_;
  const date_cache& date_;
};

// One chunk: hex size, CRLF, data, CRLF. An empty `data` writes nothing (an empty chunk would
// end the body).
void write_chunk(byte_buffer& out, std::string_view data);
// The chunk-size line alone for a chunk of n bytes ("<hex>\r\n"), for callers that place the
// data themselves; they must follow the data with "\r\n". REQUIRES: n > 0.
void write_chunk_header(byte_buffer& out, uint64_t n);
// "0\r\n\r\n": the end of a chunked body.
void write_last_chunk(byte_buffer& out);

// "HTTP/1.1 100 Continue\r\n\r\n".
inline constexpr std::string_view continue_response = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace rc::http1
