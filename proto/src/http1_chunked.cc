// chunked_decoder: RFC 9112 §7.1 as a byte-at-a-time state machine for the framing and a bulk
// copy for chunk data, so its result cannot depend on where the input is split. The common case,
// a plain "HEX\r\n" size line and the CRLF after the data, is taken whole when it is whole in the
// input, with the same transitions the byte machine would make.
//
// Framing is strict where leniency has been shown to smuggle requests ("funky chunks"): every
// line ends in CRLF (no bare LF, no bare CR), the data is followed by exactly CRLF, sizes are hex
// digits only (at most 16, no sign, no prefix, no whitespace unless an extension follows) and
// extensions must match the grammar, even though we drop them.
#include <algorithm>

#include "http1_chars.h"
#include "proto/http1_parser.h"

namespace rc::http1 {
namespace {

constexpr uint32_t size_digits_max = 16;  // 64 bits; larger sizes fail body_bytes_max anyway

}  // namespace

error chunked_decoder::go(state next) {
  state_ = next;
  return error::none;
}

result chunked_decoder::fail(error e, const char* data, const char* p) {
  state_ = state::failed;
  error_ = e;
  return {status::error, e, static_cast<size_t>(p - data)};
}

result chunked_decoder::feed(const char* data, size_t len, byte_buffer& body) {
  if (state_ == state::done) return {status::complete, error::none, 0};
  if (state_ == state::failed) return {status::error, error_, 0};
  const char* p = data;
  const char* const end = data + len;
  while (p < end) {
    if (state_ == state::size && size_digits_ == 0 && plain_size_line(p, end)) continue;
    if (state_ == state::data) {
      size_t n =
          static_cast<size_t>(std::min<uint64_t>(chunk_left_, static_cast<uint64_t>(end - p)));
      body.append(p, n);
      p += n;
      chunk_left_ -= n;
      body_bytes_ += n;
      if (chunk_left_ != 0) continue;
      state_ = state::data_cr;
      if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {  // the usual CRLF, taken whole
        p += 2;
        state_ = state::size;
        size_digits_ = 0;
      }
      continue;
    }
    error e;
    if (state_ <= state::size_lf) {
      e = size_line_byte(*p++);
    } else if (state_ == state::data_cr) {
      e = *p++ == '\r' ? error::none : error::bad_chunk;  // data must end exactly at its size
      state_ = state::data_lf;
    } else if (state_ == state::data_lf) {
      e = *p++ == '\n' ? error::none : error::bare_cr;
      state_ = state::size;
      size_digits_ = 0;
    } else {
      e = trailer_byte(*p++);
      if (state_ == state::done)
        return {status::complete, error::none, static_cast<size_t>(p - data)};
    }
    if (e != error::none) return fail(e, data, p - 1);
  }
  return {status::incomplete, error::none, len};
}

// The common size line, hex digits and CRLF with no extension, taken whole when it is whole in
// the input. It makes exactly the transitions the byte machine would; anything else (a split
// line, an extension, an error) is left to the byte machine.
bool chunked_decoder::plain_size_line(const char*& p, const char* end) {
  const char* q = p;
  uint64_t size = 0;
  while (q < end && q - p < size_digits_max && chars::is(*q, chars::hex)) {
    size = size << 4 | static_cast<uint64_t>(chars::hex_value(*q++));
  }
  if (q == p || end - q < 2 || q[0] != '\r' || q[1] != '\n') return false;
  if (size > limits_.body_bytes_max - body_bytes_) return false;
  chunk_left_ = size;
  state_ = size == 0 ? state::trailer_start : state::data;
  p = q + 2;
  return true;
}

// chunk = chunk-size [ chunk-ext ] CRLF, with
// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] ).
error chunked_decoder::size_line_byte(char c) {
  if (state_ == state::size && chars::is(c, chars::hex)) {
    if (++size_digits_ > size_digits_max) return error::bad_chunk;
    chunk_left_ = chunk_left_ << 4 | static_cast<uint64_t>(chars::hex_value(c));
    // Refused as soon as the size is known to be too big, before any of its data is read.
    if (chunk_left_ > limits_.body_bytes_max - body_bytes_) return error::body_too_large;
    return error::none;
  }
  if (state_ == state::size_lf) {
    if (c != '\n') return error::bare_cr;
    state_ = chunk_left_ == 0 ? state::trailer_start : state::data;
    return error::none;
  }
  if (state_ == state::size && size_digits_ == 0) return error::bad_chunk;
  if (c == '\r') {
    bool may_end = state_ == state::size || state_ == state::ext_name ||
                   state_ == state::ext_token_value || state_ == state::ext_after_value;
    state_ = state::size_lf;
    return may_end ? error::none : error::bad_chunk;
  }
  // Extensions are dropped but not free to parse: their total per body is bounded like a head.
  if (++ext_bytes_ > limits_.header_bytes_max) return error::bad_chunk;
  const bool ws = chars::is_ows(c);
  const bool tchar = chars::is(c, chars::tchar);
  switch (state_) {
    case state::size:
    case state::ext_after_value:
      if (ws) return go(state::size_ws);
      if (c == ';') return go(state::ext_name_start);
      return error::bad_chunk;
    case state::size_ws:
      if (ws) return error::none;
      if (c == ';') return go(state::ext_name_start);
      return error::bad_chunk;
    case state::ext_name_start:
      if (ws) return error::none;
      if (tchar) return go(state::ext_name);
      return error::bad_chunk;
    case state::ext_name:
    case state::ext_after_name:
      if (tchar && state_ == state::ext_name) return error::none;
      if (ws) return go(state::ext_after_name);
      if (c == '=') return go(state::ext_value_start);
      if (c == ';') return go(state::ext_name_start);
      return error::bad_chunk;
    case state::ext_value_start:
      if (ws) return error::none;
      if (c == '"') return go(state::ext_quoted);
      if (tchar) return go(state::ext_token_value);
      return error::bad_chunk;
    case state::ext_token_value:
      if (tchar) return error::none;
      if (ws) return go(state::size_ws);
      if (c == ';') return go(state::ext_name_start);
      return error::bad_chunk;
    case state::ext_quoted:
      if (c == '"') return go(state::ext_after_value);
      if (c == '\\') return go(state::ext_quoted_pair);
      return chars::is(c, chars::qdtext) ? error::none : error::bad_chunk;
    case state::ext_quoted_pair:
      state_ = state::ext_quoted;
      return chars::is(c, chars::value) ? error::none : error::bad_chunk;
    default:
      return error::bad_chunk;
  }
}

// trailer-section = *( field-line CRLF ), then CRLF; same rules as the head's fields, except
// that a bare LF is not a line end here.
error chunked_decoder::trailer_byte(char c) {
  if (++trailer_bytes_ > limits_.header_bytes_max) return error::header_section_too_large;
  switch (state_) {
    case state::trailer_start:
      if (c == '\r') return go(state::final_lf);
      if (chars::is_ows(c)) return error::obs_fold;
      if (!chars::is(c, chars::tchar)) return c == '\n' ? error::bad_chunk : error::bad_header_name;
      if (++trailer_count_ > limits_.headers_max) return error::too_many_headers;
      return go(state::trailer_name);
    case state::trailer_name:
      if (chars::is(c, chars::tchar)) return error::none;
      if (c == ':') return go(state::trailer_value);
      return chars::is_ows(c) ? error::space_before_colon : error::bad_header_name;
    case state::trailer_value:
      if (c == '\r') return go(state::trailer_lf);
      if (chars::is(c, chars::value)) return error::none;
      return c == '\n' ? error::bad_chunk : error::bad_header_value;
    case state::trailer_lf:
      if (c != '\n') return error::bare_cr;
      return go(state::trailer_start);
    case state::final_lf:
      if (c != '\n') return error::bare_cr;
      return go(state::done);
    default:
      return error::bad_chunk;
  }
}

}  // namespace rc::http1
