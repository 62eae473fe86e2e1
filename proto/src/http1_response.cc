// HTTP/1.1 response heads and bodies (RFC 9112 §4, §6.3; RFC 9110 §8.6, §15).
//
// Upstream responses are few and small next to the requests the server parses, so this parser is
// plain byte loops: it first finds the empty line that ends the head (within header_bytes_max),
// then validates the status line and each field line. Errors are only reported for a complete
// head or a head proven too large, which keeps results independent of how input is split.
#include "proto/http1_response.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "base/assert.h"
#include "http1_chars.h"
#include "http1_fields.h"

namespace rc::http1 {
namespace {

using chars::is;

response_result complete(size_t n) {
  return {status::complete, response_error::none, n};
}
response_result incomplete() {
  return {status::incomplete, response_error::none, 0};
}
response_result failure(response_error e) {
  return {status::error, e, 0};
}

// One line of the head without its line end; bare CRs inside are an error found by the caller.
struct line {
  std::string_view text;
  bool bare_cr = false;
};

line take_line(const char*& p, const char* nl) {
  line l;
  const char* end = nl;
  if (end > p && end[-1] == '\r') --end;
  l.text = {p, static_cast<size_t>(end - p)};
  l.bare_cr = std::memchr(p, '\r', static_cast<size_t>(end - p)) != nullptr;
  p = nl + 1;
  return l;
}

// "HTTP/1.1 200 OK": RFC 9112 §4. The space after the code is optional here (some servers omit
// it when the reason is empty); the reason may hold HTAB, SP, VCHAR and obs-text.
response_error parse_status_line(std::string_view s, response& out) {
  if (s.size() < 12 || s.substr(0, 5) != "HTTP/") return response_error::bad_status_line;
  char major = s[5], minor = s[7];
  if (s[6] != '.' || major < '0' || major > '9' || minor < '0' || minor > '9' || s[8] != ' ')
    return response_error::bad_status_line;
  if (major != '1') return response_error::version_not_supported;
  out.version = minor == '0' ? version::http_1_0 : version::http_1_1;
  int code = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (s[i] < '0' || s[i] > '9') return response_error::bad_status_line;
    code = code * 10 + (s[i] - '0');
  }
  if (code < 100) return response_error::bad_status_line;
  out.status = code;
  if (s.size() > 12) {
    if (s[12] != ' ') return response_error::bad_status_line;
    out.reason = s.substr(13);
    for (char c : out.reason)
      if (!is(c, chars::value)) return response_error::bad_status_line;
  }
  return response_error::none;
}

struct facts {
  bool content_length_seen = false;
  bool transfer_encoding_seen = false;
  bool te_ok = true;  // exactly one "chunked" and nothing else so far
  uint32_t chunked_count = 0;
  bool close = false;
  bool keep_alive = false;
};

response_error on_content_length(std::string_view v, facts& f, response& out) {
  response_error e = response_error::none;
  for_each_element(v, [&](std::string_view element) {
    uint64_t n = 0;
    if (element.empty()) e = response_error::bad_content_length;
    for (char c : element) {
      unsigned d = static_cast<unsigned char>(c) - '0';
      if (d > 9 || n > (std::numeric_limits<uint64_t>::max() - d) / 10) {
        e = response_error::bad_content_length;
        break;
      }
      n = n * 10 + d;
    }
    if (e == response_error::none && f.content_length_seen && n != out.content_length)
      e = response_error::bad_content_length;
    if (e != response_error::none) return false;
    f.content_length_seen = true;
    out.content_length = n;
    return true;
  });
  return e;
}

response_error apply(const header& h, facts& f, response& out) {
  if (equals_ignore_case(h.name, "content-length")) return on_content_length(h.value, f, out);
  if (equals_ignore_case(h.name, "transfer-encoding")) {
    f.transfer_encoding_seen = true;
    for_each_element(h.value, [&](std::string_view e) {
      if (chars::equals_lower(e, "chunked")) {
        ++f.chunked_count;
      } else {
        f.te_ok = false;
      }
      return true;
    });
  } else if (equals_ignore_case(h.name, "connection")) {
    for_each_element(h.value, [&](std::string_view o) {
      if (chars::equals_lower(o, "close")) f.close = true;
      if (chars::equals_lower(o, "keep-alive")) f.keep_alive = true;
      return true;
    });
  }
  return response_error::none;
}

response_error parse_field(std::string_view s, const response_limits& lim, facts& f,
                           response& out) {
  if (s[0] == ' ' || s[0] == '\t') return response_error::obs_fold;
  const char* p = s.data();
  const char* end = p + s.size();
  const char* name_end = chars::find_non_tchar(p, end, p);
  if (name_end == end) return response_error::bad_header_name;
  if (*name_end != ':') {
    return (*name_end == ' ' || *name_end == '\t') && name_end > p
               ? response_error::space_before_colon
               : response_error::bad_header_name;
  }
  if (name_end == p) return response_error::bad_header_name;
  std::string_view value = chars::trim_ows(std::string_view(name_end + 1, end - name_end - 1));
  for (char c : value)
    if (!is(c, chars::value)) return response_error::bad_header_value;
  if (out.header_count >= lim.headers_max) return response_error::too_many_headers;
  header& h = out.headers[out.header_count++];
  h.name = {p, static_cast<size_t>(name_end - p)};
  h.value = value;
  return apply(h, f, out);
}

response_error decide_body(const facts& f, const response_limits& lim, request_method_kind method,
                           response& out) {
  const bool http_1_0 = out.version == version::http_1_0;
  out.keep_alive = http_1_0 ? f.keep_alive && !f.close : !f.close;
  if (out.status == 101) {
    out.upgrade = true;
    out.body = response_body::none;
    return response_error::none;
  }
  if (out.status < 200 || out.status == 204 || out.status == 304 ||
      method == request_method_kind::head) {
    out.body = response_body::none;
    return response_error::none;
  }
  if (f.transfer_encoding_seen) {
    if (f.content_length_seen || !f.te_ok || f.chunked_count != 1)
      return response_error::bad_transfer_encoding;
    out.body = response_body::chunked;
  } else if (f.content_length_seen) {
    if (out.content_length > lim.body_bytes_max) return response_error::body_too_large;
    out.body = response_body::content_length;
  } else {
    out.body = response_body::until_close;
    out.keep_alive = false;
  }
  return response_error::none;
}

void reset(response& r) {
  r.version = version::http_1_1;
  r.status = 0;
  r.reason = {};
  r.header_count = 0;
  r.body = response_body::none;
  r.content_length = 0;
  r.keep_alive = true;
  r.upgrade = false;
  r.head_bytes = 0;
}

}  // namespace

std::string_view name_of(response_error e) {
  switch (e) {
    case response_error::none:
      return "none";
    case response_error::bad_status_line:
      return "bad_status_line";
    case response_error::version_not_supported:
      return "version_not_supported";
    case response_error::header_section_too_large:
      return "header_section_too_large";
    case response_error::too_many_headers:
      return "too_many_headers";
    case response_error::bad_header_name:
      return "bad_header_name";
    case response_error::space_before_colon:
      return "space_before_colon";
    case response_error::obs_fold:
      return "obs_fold";
    case response_error::bad_header_value:
      return "bad_header_value";
    case response_error::bare_cr:
      return "bare_cr";
    case response_error::bad_content_length:
      return "bad_content_length";
    case response_error::bad_transfer_encoding:
      return "bad_transfer_encoding";
    case response_error::bad_chunk:
      return "bad_chunk";
    case response_error::body_too_large:
      return "body_too_large";
  }
  return "unknown";
}

response_result parse_response_head(const char* data, size_t len, const response_limits& lim,
                                    request_method_kind method, response& out) {
  RC_ASSERT(lim.headers_max <= header_capacity);
  reset(out);
  const char* p = data;
  const char* end = data + std::min<size_t>(len, lim.header_bytes_max);
  // Find the line ends first; nothing is judged until the head is complete.
  const char* head_end = nullptr;
  for (const char* q = p; q < end;) {
    const auto* nl = static_cast<const char*>(std::memchr(q, '\n', static_cast<size_t>(end - q)));
    if (!nl) break;
    bool empty = nl == q || (nl == q + 1 && *q == '\r');
    if (empty && q != data) {
      head_end = nl + 1;
      break;
    }
    q = nl + 1;
  }
  if (!head_end) {
    return len >= lim.header_bytes_max ? failure(response_error::header_section_too_large)
                                       : incomplete();
  }
  const auto* nl = static_cast<const char*>(std::memchr(p, '\n', head_end - p));
  line status_line = take_line(p, nl);
  if (status_line.bare_cr) return failure(response_error::bare_cr);
  if (auto e = parse_status_line(status_line.text, out); e != response_error::none)
    return failure(e);
  facts f;
  for (;;) {
    nl = static_cast<const char*>(std::memchr(p, '\n', head_end - p));
    line l = take_line(p, nl);
    if (l.bare_cr) return failure(response_error::bare_cr);
    if (l.text.empty()) break;
    if (auto e = parse_field(l.text, lim, f, out); e != response_error::none) return failure(e);
  }
  RC_ASSERT(p == head_end);
  if (auto e = decide_body(f, lim, method, out); e != response_error::none) return failure(e);
  out.head_bytes = static_cast<size_t>(head_end - data);
  return complete(out.head_bytes);
}

std::string_view response::find(std::string_view name) const {
  return find_field(headers, header_count, name);
}

bool response::has_token(std::string_view name, std::string_view token) const {
  return fields_have_token(headers, header_count, name, token);
}

}  // namespace rc::http1
