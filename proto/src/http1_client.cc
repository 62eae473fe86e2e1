// The client halves of HTTP/1.1 that are not the head parser: response body framing and the
// request writer (see proto/http1_response.h).
#include <algorithm>
#include <string>

#include "base/assert.h"
#include "http1_chars.h"
#include "proto/http1_response.h"

namespace rc::http1 {
namespace {

limits chunk_limits(const response_limits& lim) {
  limits l;
  l.header_bytes_max = lim.header_bytes_max;  // bounds trailers and chunk extensions
  l.headers_max = lim.headers_max;
  l.body_bytes_max = lim.body_bytes_max;
  return l;
}

}  // namespace

body_decoder::body_decoder(const response& head, const response_limits& lim)
    : kind_(head.body), body_bytes_max_(lim.body_bytes_max), chunked_(chunk_limits(lim)) {
  if (kind_ == response_body::content_length) left_ = head.content_length;
  done_ = kind_ == response_body::none || (kind_ == response_body::content_length && left_ == 0);
}

response_result body_decoder::feed(const char* data, size_t len, byte_buffer& body) {
  if (done_) return {status::complete, response_error::none, 0};
  switch (kind_) {
    case response_body::none:
      break;
    case response_body::content_length: {
      size_t take = static_cast<size_t>(std::min<uint64_t>(left_, len));
      body.append(data, take);
      left_ -= take;
      body_bytes_ += take;
      if (left_ == 0) {
        done_ = true;
        return {status::complete, response_error::none, take};
      }
      return {status::incomplete, response_error::none, take};
    }
    case response_body::chunked: {
      result r = chunked_.feed(data, len, body);
      body_bytes_ = chunked_.body_bytes();
      if (r.status == status::error) {
        return {status::error,
                r.error == error::body_too_large ? response_error::body_too_large
                                                 : response_error::bad_chunk,
                0};
      }
      if (r.status == status::complete) done_ = true;
      return {r.status, response_error::none, r.consumed};
    }
    case response_body::until_close: {
      // Bytes up to the limit are delivered, whatever the split; the first byte over it fails.
      size_t take = static_cast<size_t>(std::min<uint64_t>(body_bytes_max_ - body_bytes_, len));
      body.append(data, take);
      body_bytes_ += take;
      if (take < len) return {status::error, response_error::body_too_large, take};
      return {status::incomplete, response_error::none, len};
    }
  }
  return {status::complete, response_error::none, 0};
}

bool body_decoder::finish_at_eof() const {
  return done_ || kind_ == response_body::until_close;
}

bool field_name_ok(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return chars::is(c, chars::tchar); });
}

bool field_text_ok(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) { return c == '\r' || c == '\n' || c == 0; });
}

void request_writer::start(std::string_view method, std::string_view target) {
  RC_ASSERT(field_name_ok(method) && !target.empty());
  RC_ASSERT(std::none_of(target.begin(), target.end(),
                         [](char c) { return c == ' ' || c == '\r' || c == '\n' || c == 0; }));
  out_.append(method);
  out_.push_back(' ');
  out_.append(target);
  out_.append(" HTTP/1.1\r\n");
}

void request_writer::header(std::string_view name, std::string_view value) {
  RC_ASSERT(field_name_ok(name) && field_text_ok(value));
  out_.append(name);
  out_.append(": ");
  out_.append(value);
  out_.append("\r\n");
}

void request_writer::end_with_length(uint64_t n) {
  out_.append("Content-Length: ");
  out_.append(std::to_string(n));
  out_.append("\r\n\r\n");
}

void request_writer::end_no_body() {
  out_.append("\r\n");
}

}  // namespace rc::http1
