// response_reader: an incremental HTTP/1.1 response reader for the load generator.
//
// proto/ parses requests (what a server reads); a client reads responses, and a load generator
// must read them faster than the server writes them. This reader does what our clients need and
// no more: the status line, the two framing fields (Content-Length, Transfer-Encoding: chunked),
// and the body framing — a length, chunks (extensions and trailers skipped), nothing (1xx, 204,
// 304), or everything until the connection closes. 101 ends HTTP on the connection: after its
// head the reader is `upgraded` and the caller hands the rest of the bytes to the new protocol.
// Any other field is only looked at on request (header()), e.g. Sec-WebSocket-Accept.
//
// Three-way, like the parsers in proto/: next() consumes bytes from the front of its input and
// returns need_more (all consumed, call again with more), head (a response head was read: see
// status() and header()), body (`body` holds the next piece of the body, a view into the input),
// done (the response ended; the reader expects the next one, so pipelined responses are read
// back to back) or error (malformed; the reader stays failed). Any split of the input gives the
// same steps and body bytes. Nothing is copied except a response head split across reads.
//
// Thread-safety: one reader per connection, on its shard.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/byte_buffer.h"

namespace rc::load {

enum class response_error : uint8_t {
  none,
  head_too_large,
  bad_status_line,
  bad_content_length,
  bad_chunk,
  upgraded,  // next() called after a 101 head
};

std::string_view describe(response_error e);

class response_reader {
 public:
  enum class step : uint8_t { need_more, head, body, done, error };

  explicit response_reader(size_t head_bytes_max = 16 * 1024) : head_bytes_max_(head_bytes_max) {}

  step next(std::string_view& in, std::string_view& body);

  // The last head read. status() and chunked() stay valid until the next head; head() and
  // header() only until the next call of next() (the view may point into the caller's input).
  int status() const { return status_; }
  bool chunked() const { return framing_ == framing::chunked; }
  std::string_view head() const { return head_; }
  // The value of the first field called `name` (ASCII case-insensitive), trimmed; empty if none.
  std::string_view header(std::string_view name) const;

  response_error error() const { return error_; }
  // True between responses (nothing of the next response has been read yet).
  bool idle() const { return state_ == state::head && head_buf_.empty(); }

 private:
  enum class framing : uint8_t { none, length, chunked, until_close };
  enum class state : uint8_t {
    head,
    length_body,
    chunk_size,
    chunk_ext,
    chunk_size_lf,
    chunk_data,
    chunk_data_cr,
    chunk_data_lf,
    trailer_line_start,
    trailer_line,
    final_lf,
    until_close,
    message_end,  // a head without a body was returned; `done` comes next
    upgraded,
    failed,
  };

  step read_head(std::string_view& in);
  response_error parse_head(std::string_view head);
  step read_chunk_framing(std::string_view& in);
  step fail(response_error e);

  size_t head_bytes_max_;
  state state_ = state::head;
  framing framing_ = framing::none;
  response_error error_ = response_error::none;
  int status_ = 0;
  uint64_t remaining_ = 0;  // body or chunk bytes still to come
  uint8_t size_digits_ = 0;
  bool head_owned_ = false;  // head_ points into head_buf_
  std::string_view head_;
  byte_buffer head_buf_;  // a head split across reads
};

}  // namespace rc::load
