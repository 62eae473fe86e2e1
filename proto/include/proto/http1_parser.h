// HTTP/1.1 request parsing (RFC 9112), strict enough to close every request-smuggling door.
//
// parse_head() is a pure function over bytes: it never allocates and never copies; the views in
// `request` point into the caller's buffer and live as long as it does. It returns one of three
// results, like picohttpparser: complete (the head is `consumed` bytes long), incomplete (feed
// more bytes and call again from the start of the head), or error (with a code that maps to a
// status and a message). The caller passes how many bytes it had already scanned without finding
// the end of the head (`scanned_hint`), so a head arriving in many small reads is not rescanned
// from the start each time. Buffer contract: no byte outside [data, data + len) is ever read, so
// receive buffers need no slack for this parser (tests place input against a PROT_NONE page).
//
// Bodies: for Content-Length the caller takes `content_length` bytes after the head; for chunked
// bodies it feeds the bytes after the head to a chunked_decoder, which is incremental and
// stateful (a chunk may be split at any byte).
//
// Policy (why each rule exists is in the .cc):
// * line ends are CRLF; a bare LF is accepted as a line end of the head (RFC 9112 §2.2 allows
//   it) but a bare CR anywhere is an error; chunked framing (sizes, data ends, trailers) requires
//   CRLF exactly, because lenient chunk-line parsing is a known smuggling vector;
// * whitespace between a field name and its colon, obs-fold, bytes outside token / field-value
//   grammar, Content-Length together with Transfer-Encoding, differing or malformed
//   Content-Length values, Transfer-Encoding in HTTP/1.0, and transfer codings other than one
//   final "chunked" are errors;
// * request-target: origin-form, absolute-form (http/https), authority-form only for CONNECT,
//   asterisk-form only for OPTIONS; its bytes are RFC 3986's plus the few that browsers send
//   unescaped ('{', '}', '|', backslash, '^', '`'), never control bytes, SP, DEL, non-ASCII,
//   '"', '<', '>' or '#'; it is split at the first '?' and never percent-decoded;
// * HTTP/1.1 requires exactly one Host field, a uri-host with an optional port; HTTP/1.0 may omit
//   it; no version may repeat it;
// * limits: the request line, not counting its line end, may not exceed request_line_bytes_max
//   (414); the head, counted from `data` (leading empty lines included) through the empty line,
//   may not exceed header_bytes_max (431); nor may it hold more than headers_max fields (431).
//   Both byte limits are enforced on incomplete input too: as soon as the bytes received prove
//   that the line or head will be too long, the error is returned.
//
// Determinism: the result depends only on the bytes, never on how they were split across calls
// or on scanned_hint. Errors in the request line (and a method that is not a token) are reported
// as soon as the line is complete; errors in the fields only once the head is complete (or a
// limit is crossed). So if a prefix of some input gives an error, the whole input gives the same
// error, which is what lets tests and the fuzzer compare split parses with whole ones.
//
// Thread-safety: none needed; everything is on the caller's stack or buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/byte_buffer.h"

namespace rc::http1 {

enum class method : uint8_t {
  other,
  get,
  head,
  post,
  put,
  delete_,
  options,
  patch,
  connect,
  trace
};
enum class version : uint8_t { http_1_0, http_1_1 };
enum class body_kind : uint8_t { none, content_length, chunked };
// RFC 9112 §3.2: origin-form "/p?q"; absolute-form "http://h/p?q"; authority-form "h:443" (only
// for CONNECT); asterisk-form "*" (only for OPTIONS).
enum class target_form : uint8_t { origin, absolute, authority, asterisk };

enum class error : uint8_t {
  none,
  bad_request_line,                       // 400 malformed request line
  bad_method,                             // 400 method is not a token
  bad_target,                             // 400 request-target has invalid bytes or form
  bad_version,                            // 400 malformed HTTP-version
  version_not_supported,                  // 505 HTTP/2.0, HTTP/3 and other majors on an HTTP/1 port
  uri_too_long,                           // 414 request line over request_line_bytes_max
  header_section_too_large,               // 431 head over header_bytes_max
  too_many_headers,                       // 431 more than headers_max fields
  bad_header_name,                        // 400 empty name or non-token byte in a field name
  space_before_colon,                     // 400 whitespace between field name and colon
  obs_fold,                               // 400 line folding (a field line starting with SP/HTAB)
  bad_header_value,                       // 400 control byte (other than HTAB) in a field value
  bare_cr,                                // 400 CR not followed by LF
  missing_host,                           // 400 HTTP/1.1 request without Host
  duplicate_host,                         // 400 more than one Host field
  bad_content_length,                     // 400 non-numeric, empty or overflowing Content-Length
  conflicting_content_length,             // 400 Content-Length values that differ
  content_length_with_transfer_encoding,  // 400 both framing headers present
  unsupported_transfer_coding,            // 501 a coding we do not implement, before "chunked"
  bad_transfer_encoding,          // 400 "chunked" missing, not final or repeated; empty or bad list
  transfer_encoding_in_http_1_0,  // 400 Transfer-Encoding in an HTTP/1.0 request
  bad_host,                       // 400 Host value that is not a valid uri-host[:port]
  bad_chunk,                      // 400 malformed chunk size, extension, CRLF or trailer
  body_too_large,                 // 413 declared or decoded body over body_bytes_max
};
// How many error codes exist (including none): for tables indexed by error.
inline constexpr size_t error_count = static_cast<size_t>(error::body_too_large) + 1;

// The HTTP status a server answers an error with, and a one-line, client-facing message.
int status_of(error e);
std::string_view message_of(error e);
// A stable identifier for metrics labels, e.g. "bare_cr".
std::string_view name_of(error e);

// REQUIRES (checked): headers_max <= header_capacity.
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
  http1::target_form form = target_form::origin;
  // origin- and absolute-form: the path up to '?' (for absolute-form the part after the
  // authority, possibly empty, which means "/"); authority-form: the whole authority;
  // asterisk-form: "*". Never percent-decoded.
  std::string_view path;
  std::string_view query;      // after the first '?', without it; empty when absent
  std::string_view authority;  // absolute-form: "host[:port]"; authority-form: the target
  std::string_view host;       // the Host field's value, empty when absent (HTTP/1.0)

  header headers[header_capacity];
  uint32_t header_count = 0;

  body_kind body = body_kind::none;
  uint64_t content_length = 0;  // valid when body == content_length
  bool keep_alive = true;  // 1.1 default on unless "close"; 1.0 default off unless "keep-alive"
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
// §2.2 says to ignore, are skipped and counted in `consumed`, but not in request::head_bytes).
// scanned_hint is 0 or the `consumed` of the previous incomplete result for the same head (the
// buffer may have grown since); a larger value could hide the end of the head.
// On error, `consumed` is 0 and `out` is unspecified.
result parse_head(const char* data, size_t len, const limits& lim, request& out,
                  size_t scanned_hint = 0);

// Incremental decoder for a chunked body (RFC 9112 §7.1): chunk sizes in hex with optional
// extensions, data, CRLF, last chunk, optional trailer fields, final CRLF. Extensions are checked
// against the §7.1.1 grammar and dropped. Trailer fields are validated with the same rules as
// header fields and then dropped (ringcast has no use for them); they count toward
// limits::header_bytes_max and limits::headers_max, and the extensions of one body together may
// not exceed header_bytes_max either. A chunk size that would take the body over
// limits::body_bytes_max is rejected as soon as it is read, before its data arrives.
//
// Like parse_head, the decoder's results do not depend on how the input is split.
class chunked_decoder {
 public:
  explicit chunked_decoder(const limits& lim) : limits_(lim) {}

  // Consumes bytes from `data`, appending decoded body bytes to `body`. complete: the body ended
  // and `consumed` bytes of `data` belonged to it (the rest is the next request); incomplete: all
  // of `data` was consumed, feed more; error: the body is malformed or too large (`consumed` is
  // where the decoder stopped). After complete, feed() returns complete with consumed 0; after an
  // error, the same error again, until reset().
  result feed(const char* data, size_t len, byte_buffer& body);

  // Decoded body bytes so far.
  uint64_t body_bytes() const { return body_bytes_; }

  void reset() { *this = chunked_decoder(limits_); }

 private:
  enum class state : uint8_t {
    size,             // hex digits of the chunk size
    size_ws,          // BWS after the size or an extension; only ';' may follow
    ext_name_start,   // after ';': BWS, then a token
    ext_name,         // in an extension name
    ext_after_name,   // BWS after a name: '=' or ';' may follow
    ext_value_start,  // after '=': BWS, then a token or a quoted-string
    ext_token_value,  // in a token value
    ext_quoted,       // in a quoted-string value
    ext_quoted_pair,  // after a backslash in a quoted-string
    ext_after_value,  // right after a value
    size_lf,          // the LF ending a chunk-size line
    data,             // chunk data; chunk_left_ bytes to go
    data_cr,          // the CR after chunk data
    data_lf,          // the LF after chunk data
    trailer_start,    // start of a trailer line, or the final CRLF
    trailer_name,
    trailer_value,
    trailer_lf,
    final_lf,
    done,
    failed,
  };
  bool plain_size_line(const char*& p, const char* end);
  // Each consumes one byte of a chunk-size line or of the trailer section.
  http1::error size_line_byte(char c);
  http1::error trailer_byte(char c);
  http1::error go(state next);
  result fail(http1::error e, const char* data, const char* p);

  limits limits_;
  state state_ = state::size;
  http1::error error_ = error::none;
  uint64_t chunk_left_ = 0;  // while reading the size: the size so far
  uint64_t body_bytes_ = 0;
  uint32_t size_digits_ = 0;
  uint32_t ext_bytes_ = 0;
  uint32_t trailer_bytes_ = 0;
  uint32_t trailer_count_ = 0;
};

}  // namespace rc::http1
