// HTTP/1.1 client side: response heads and bodies as they arrive from an upstream (RFC 9112
// §4-§6, RFC 9110 §15), and the requests ringcast sends (RFC 9112 §3).
//
// parse_response_head() is a pure function over bytes with the three-way result of
// parse_head(): complete (the head's length), incomplete (feed more) or error (a code). It
// decides the body's framing with the rules of RFC 9112 §6.3, in this order:
//   1. a response to HEAD, 1xx, 204 and 304 have no body (the caller passes whether the request
//      was HEAD); a 1xx other than 101 is an interim response the caller skips before parsing
//      the final head from the bytes after it; 101 means the connection now speaks the
//      protocol named in Upgrade, and every byte after the head belongs to it;
//   2. Transfer-Encoding must be exactly "chunked" (one final chunked, no other coding: we
//      decode nothing else), and may not come with Content-Length (§6.3 calls that a likely
//      smuggling attempt that "ought to be handled as an error"; we do);
//   3. Content-Length (a list of identical values counts as one);
//   4. otherwise the body runs until the server closes the connection, which is then not
//      reusable.
// keep_alive is false for "Connection: close", for HTTP/1.0 without "keep-alive", and for
// close-delimited bodies. Field syntax is checked as strictly as for requests (bare CR,
// obs-fold, whitespace before a colon, control bytes are errors): a malformed upstream is
// reported as such, never guessed at. Limits: head bytes and field count.
//
// body_decoder turns the body bytes that follow a head into decoded bytes whatever the framing
// (chunked via chunked_decoder), and says where the body ended; the rest of the input is the
// next response or, after 101, the upgraded protocol's bytes.
//
// request_writer appends a request head to a byte_buffer: request line, fields, and
// Content-Length (or nothing for a bodiless request). Field names and values must not contain
// CR, LF or NUL (checked with RC_ASSERT; callers that forward untrusted values check them with
// field_text_ok() first).
//
// Determinism: results depend only on the bytes, never on how they were split across calls.
//
// Thread-safety: none needed; everything is on the caller's stack or buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/byte_buffer.h"
#include "proto/http1_parser.h"

namespace rc::http1 {

enum class response_body : uint8_t { none, content_length, chunked, until_close };

enum class response_error : uint8_t {
  none,
  bad_status_line,           // not "HTTP/1.x SP 3DIGIT SP reason"
  version_not_supported,     // HTTP/2.0, HTTP/0.9 and friends
  header_section_too_large,  // head over header_bytes_max
  too_many_headers,          // more than headers_max fields
  bad_header_name,           // empty name or a non-token byte in a field name
  space_before_colon,        // whitespace between field name and colon
  obs_fold,                  // a field line starting with SP/HTAB
  bad_header_value,          // control byte (other than HTAB) in a field value
  bare_cr,                   // CR not followed by LF
  bad_content_length,        // non-numeric, empty, overflowing or differing values
  bad_transfer_encoding,     // anything but exactly one "chunked", or together with CL
  bad_chunk,                 // malformed chunked framing
  body_too_large,            // body over body_bytes_max
};
// "bad_status_line" and so on: for error messages and metrics labels.
std::string_view name_of(response_error e);

struct response_limits {
  uint32_t header_bytes_max = 64 * 1024;
  uint32_t headers_max = 100;  // REQUIRES: <= header_capacity
  uint64_t body_bytes_max = UINT64_MAX;
};

struct response {
  http1::version version = version::http_1_1;
  int status = 0;           // 100..999
  std::string_view reason;  // may be empty
  header headers[header_capacity];
  uint32_t header_count = 0;
  response_body body = response_body::none;
  uint64_t content_length = 0;  // valid when body == content_length
  bool keep_alive = true;
  bool upgrade = false;   // status 101
  size_t head_bytes = 0;  // status line + fields + the empty line

  bool interim() const { return status >= 100 && status < 200 && status != 101; }
  // First field with this name (ASCII case-insensitive), or an empty view.
  std::string_view find(std::string_view name) const;
  // Whether a comma-separated field (all occurrences) contains `token`, case-insensitively.
  bool has_token(std::string_view name, std::string_view token) const;
};

struct response_result {
  http1::status status = status::incomplete;
  response_error error = response_error::none;
  size_t consumed = 0;  // complete: bytes of the head; otherwise 0
};

enum class request_method_kind : uint8_t { other, head };

// REQUIRES: data points at the first byte of a response head. On error `out` is unspecified.
response_result parse_response_head(const char* data, size_t len, const response_limits& lim,
                                    request_method_kind method, response& out);

// Decodes one response body after its head. For until_close bodies, finish_at_eof() tells
// whether the body may end where the connection ended (always), for the others whether it had.
class body_decoder {
 public:
  body_decoder(const response& head, const response_limits& lim);

  // Appends decoded body bytes from `data` to `body`. complete: the body ended after `consumed`
  // bytes (the rest is not the body's); incomplete: all of `data` was consumed; error: see
  // `error` (bad_chunk or body_too_large).
  response_result feed(const char* data, size_t len, byte_buffer& body);
  // The connection ended here: true if that completes the body (close-delimited bodies, or a
  // body already complete).
  bool finish_at_eof() const;
  bool done() const { return done_; }
  uint64_t body_bytes() const { return body_bytes_; }

 private:
  response_body kind_;
  uint64_t left_ = 0;  // content_length: bytes to go
  uint64_t body_bytes_ = 0;
  uint64_t body_bytes_max_;
  bool done_ = false;
  chunked_decoder chunked_;
};

// Whether `s` may be written as a field name (a non-empty token) or value (no CR, LF or NUL,
// no leading or trailing whitespace required).
bool field_name_ok(std::string_view s);
bool field_text_ok(std::string_view s);

class request_writer {
 public:
  explicit request_writer(byte_buffer& out) : out_(out) {}

  // "<method> <target> HTTP/1.1". REQUIRES: method is a token; target has no SP, CR, LF, NUL.
  void start(std::string_view method, std::string_view target);
  // REQUIRES (checked): field_name_ok(name) && field_text_ok(value).
  void header(std::string_view name, std::string_view value);
  // Content-Length: n and the empty line; the caller sends exactly n body bytes.
  void end_with_length(uint64_t n);
  // Just the empty line (GET, or an upgrade request).
  void end_no_body();

 private:
  byte_buffer& out_;
};

}  // namespace rc::http1
