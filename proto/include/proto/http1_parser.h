// HTTP/1.1 request parsing (RFC 9112), strict enough to close every request-smuggling door.
//
// parse_head() is a pure function over bytes: it never allocates and never copies; the views in
// `request` point into the caller's buffer and live as long as it does. It returns one of three
// results, like picohttpparser: complete (the head is `consumed` bytes long), incomplete (feed
// more bytes and call again from the start of the head), or error (with a code that maps to a
// status and a message). The caller passes how many bytes it had already scanned without finding
// the end of the head (`scanned_hint`), so a head arriving in many small reads is not rescanned
// from the start each time.
//
// Bodies: for Content-Length the caller takes `content_length` bytes after the head; for chunked
// bodies it feeds the bytes after the head to a chunked_decoder, which is incremental and
// stateful (a chunk may be split at any byte).
//
// Policy (why each rule exists is in the .cc):
// * line ends are CRLF; a bare LF is accepted as a line end (RFC 9112 §2.2 allows it) but a bare
//   CR anywhere is an error;
// * whitespace between a field name and its colon, obs-fold, bytes outside token / field-value
//   grammar, Content-Length together with Transfer-Encoding, differing or malformed
//   Content-Length values, and transfer codings other than a final "chunked" are errors;
// * HTTP/1.1 requires exactly one Host field; HTTP/1.0 may omit it;
// * the request line may not exceed request_line_bytes_max (414), the head header_bytes_max
//   (431), nor contain more than headers_max fields (431).
//
// Thread-safety: none needed; everything is on the caller's stack or buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/byte_buffer.h"

namespace rc::http1 {

enum class method : uint8_t { other, get, head, post, put, delete_, options, patch, connect, trace };
enum class version : uint8_t { http_1_0, http_1_1 };
enum class body_kind : uint8_t { none, content_length, chunked };

enum class error : uint8_t {
  none,
  bad_request_line,         // 400 malformed request line
  bad_method,               // 400 method is not a token
  bad_target,               // 400 request-target has invalid bytes or form
  bad_version,              // 400 malformed HTTP-version
  version_not_supported,    // 505 HTTP/2.0, HTTP/3 and other majors on an HTTP/1 port
  uri_too_long,             // 414 request line over request_line_bytes_max
  header_section_too_large, // 431 head over header_bytes_max
  too_many_headers,         // 431 more than headers_max fields
  bad_header_name,          // 400 empty name or non-token byte in a field name
  space_before_colon,       // 400 whitespace between field name and colon
  obs_fold,                 // 400 line folding (a field line starting with SP/HTAB)
  bad_header_value,         // 400 control byte (other than HTAB) in a field value
  bare_cr,                  // 400 CR not followed by LF
  missing_host,             // 400 HTTP/1.1 request without Host
  duplicate_host,           // 400 more than one Host field
  bad_content_length,       // 400 non-numeric, empty or overflowing Content-Length
  conflicting_content_length,          // 400 Content-Length values that differ
  content_length_with_transfer_encoding,  // 400 both framing headers present
  unsupported_transfer_coding,         // 501 a coding other than a final "chunked"
  bad_chunk,                // 400 malformed chunk size, extension, CRLF or trailer
  body_too_large,           // 413 declared or decoded body over body_bytes_max
};

// The HTTP status a server answers an error with, and a one-line, client-facing message.
int status_of(error e);
std::string_view message_of(error e);
// A stable identifier for metrics labels, e.g. "bare_cr".
std::string_view name_of(error e);

struct limits {
  uint32_t request_line_bytes_max = 8 * 1024;
  uint32_t header_bytes_max = 16 * 1024;
  uint32_t headers_max = 100;
  uint64_t body_bytes_max = 1024 * 1024;
};

// The array in `request` holds at most this many fields; limits::headers_max must not exceed it.
inline constexpr uint32_t header_capacity = 128;

struct header {
  std::string_view name;   // as sent (case preserved)
  std::string_view value;  // leading and trailing whitespace removed
};

struct request {
  http1::method method = method::other;
  http1::version version = version::http_1_1;
  std::string_view method_name;  // as sent, e.g. "GET"
  std::string_view target;       // the request-target as sent
  std::string_view path;         // target up to '?' (origin-form), or the whole authority/absolute
  std::string_view query;        // after '?', without it; empty when absent
  std::string_view host;         // the Host field's value, empty when absent (HTTP/1.0)

  header headers[header_capacity];
  uint32_t header_count = 0;

  body_kind body = body_kind::none;
  uint64_t content_length = 0;   // valid when body == content_length
  bool keep_alive = true;        // 1.1 default on unless "close"; 1.0 default off unless "keep-alive"
  bool expect_continue = false;  // Expect: 100-continue
  bool upgrade = false;          // Connection contains "upgrade" and an Upgrade field is present
  size_t head_bytes = 0;         // request line + fields + the empty line

  // First field with this name (ASCII case-insensitive), or an empty view.
  std::string_view find(std::string_view name) const;
  // Whether a comma-separated field (all occurrences) contains `token`, case-insensitively.
  bool has_token(std::string_view name, std::string_view token) const;
};

enum class status : uint8_t { complete, incomplete, error };

struct result {
  http1::status status = status::incomplete;
  http1::error error = error::none;
  size_t consumed = 0;  // complete: bytes of the head; incomplete: bytes scanned (a hint)
};

// REQUIRES: data points at the first byte of a request head (leading empty lines, which RFC 9112
// §2.2 says to ignore, are skipped and counted in `consumed`).
result parse_head(const char* data, size_t len, const limits& lim, request& out,
                  size_t scanned_hint = 0);

// Incremental decoder for a chunked body (RFC 9112 §7.1): chunk sizes in hex with optional
// extensions, data, CRLF, last chunk, optional trailer fields, final CRLF. Trailer fields are
// validated with the same rules as header fields and then dropped (ringcast has no use for them),
// but they count toward limits::header_bytes_max.
class chunked_decoder {
 public:
  explicit chunked_decoder(const limits& lim) : limits_(lim) {}

  // Consumes bytes from `data`, appending decoded body bytes to `body`. complete: the body ended
  // and `consumed` bytes of `data` belonged to it (the rest is the next request); incomplete: all
  // of `data` was consumed, feed more; error: the body is malformed or too large.
  result feed(const char* data, size_t len, byte_buffer& body);

  void reset() { *this = chunked_decoder(limits_); }

 private:
  enum class state : uint8_t {
    size, size_ext, size_lf, data, data_cr, data_lf, trailer_start, trailer_line, trailer_lf,
    final_lf, done,
  };
  limits limits_;
  state state_ = state::size;
  uint64_t chunk_left_ = 0;
  uint64_t body_bytes_ = 0;
  uint32_t size_digits_ = 0;
  uint32_t trailer_bytes_ = 0;
  uint32_t line_bytes_ = 0;
};

}  // namespace rc::http1
