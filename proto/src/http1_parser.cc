// HTTP/1.1 request heads (RFC 9112 §2-§3, §5-§6; RFC 9110 §5, §7.2, §8.6).
//
// The parse is one forward pass. The request line is validated as soon as it is complete. The
// fields are then parsed optimistically in the same pass; only if a field is invalid does the
// parser look for the end of the head, because field errors are reported only for complete heads
// (see the header: that keeps results independent of how input is split). With a scanned_hint,
// an incomplete head is first searched for its end from where the previous call stopped, so a
// head trickling in is not re-validated on every read.
//
// Scans are SIMD (http1_chars.h) and may read any byte of [data, end), never outside it.
#include "proto/http1_parser.h"

#include <algorithm>
#include <cstring>

#include "base/assert.h"
#include "http1_chars.h"
#include "http1_fields.h"

namespace rc::http1 {
namespace {

using chars::is;

// The bytes parse_head may look at: [data, end), where end = data + min(len, header_bytes_max).
// `full` means len reached header_bytes_max: a head that has not ended by `end` is too large.
struct window {
  const char* data;
  const char* end;
  size_t len;
  bool full;
};

result complete(size_t n) {
  return {status::complete, error::none, n};
}
result incomplete(size_t n) {
  return {status::incomplete, error::none, n};
}
result failure(error e) {
  return {status::error, e, 0};
}

constexpr uint32_t word4(const char (&s)[5]) {
  return uint32_t(uint8_t(s[0])) | uint32_t(uint8_t(s[1])) << 8 | uint32_t(uint8_t(s[2])) << 16 |
         uint32_t(uint8_t(s[3])) << 24;
}
uint32_t load4(const char* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

void reset(request& r) {
  r.method = method::other;
  r.version = version::http_1_1;
  // One store per view: a chained `a = b = {}` makes the compiler reload a view it has just
  // stored with two 8-byte writes, and that failed store forwarding was a tenth of a small parse.
  r.method_name = {};
  r.target = {};
  r.path = {};
  r.query = {};
  r.authority = {};
  r.host = {};
  r.form = target_form::origin;
  r.header_count = 0;
  r.body = body_kind::none;
  r.content_length = 0;
  r.keep_alive = true;
  r.expect_continue = false;
  r.upgrade = false;
  r.head_bytes = 0;
}

// RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line. We
// ignore any number; they count toward header_bytes_max, which bounds them.
const char* skip_empty_lines(const char* p, const char* end) {
  while (p < end) {
    if (*p == '\n') {
      ++p;
    } else if (*p == '\r' && end - p >= 2 && p[1] == '\n') {
      p += 2;
    } else {
      break;
    }
  }
  return p;
}

method identify_method(std::string_view m) {
  switch (m.size()) {
    case 3:
      if (m == "GET") return method::get;
      if (m == "PUT") return method::put;
      break;
    case 4:
      if (m == "POST") return method::post;
      if (m == "HEAD") return method::head;
      break;
    case 5:
      if (m == "PATCH") return method::patch;
      if (m == "TRACE") return method::trace;
      break;
    case 6:
      if (m == "DELETE") return method::delete_;
      break;
    case 7:
      if (m == "OPTIONS") return method::options;
      if (m == "CONNECT") return method::connect;
      break;
  }
  return method::other;
}

// Returns the end of the method token starting at p (bound if the token runs to it). The common
// methods are recognised with one 4-byte compare; anything else is scanned as a token.
const char* scan_method(const char* p, const char* bound, request& out) {
  if (bound - p >= 5) {
    uint32_t w = load4(p);
    if (w == word4("GET ")) {
      out.method = method::get;
      return p + 3;
    }
    if (w == word4("POST") && p[4] == ' ') {
      out.method = method::post;
      return p + 4;
    }
  }
  const char* e = chars::find_non_tchar(p, bound, p);
  out.method = identify_method({p, static_cast<size_t>(e - p)});
  return e;
}

// RFC 9110 §2.5: a higher minor version of a major we implement is processed as the highest
// minor we implement; another major is answered with 505. HTTP/2's connection preface
// ("PRI * HTTP/2.0") lands here too.
error parse_version(std::string_view v, request& out) {
  if (v == "HTTP/1.1") return error::none;
  if (v == "HTTP/1.0") {
    out.version = version::http_1_0;
    return error::none;
  }
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (v.size() == 8 && v.substr(0, 5) == "HTTP/" && digit(v[5]) && v[6] == '.' && digit(v[7])) {
    return v[5] == '1' ? error::none : error::version_not_supported;
  }
  return v.find('\r') != std::string_view::npos ? error::bare_cr : error::bad_version;
}

enum class port : uint8_t { optional, required };

// authority-form and the authority of absolute-form: uri-host [":" port], no userinfo.
bool valid_authority(std::string_view a, port p) {
  if (a.empty()) return false;
  for (char c : a) {
    if (!is(c, chars::host)) return false;
  }
  if (p == port::optional) return true;
  size_t colon = a.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == a.size()) return false;
  for (char c : a.substr(colon + 1)) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

void split_query(std::string_view t, request& out) {
  size_t q = t.find('?');
  out.path = t.substr(0, q);
  out.query = q == std::string_view::npos ? std::string_view() : t.substr(q + 1);
}

// RFC 9112 §3.2. The bytes were checked by the caller; this decides and splits the form.
error parse_target_form(std::string_view t, request& out) {
  if (out.method == method::connect) {
    if (!valid_authority(t, port::required)) return error::bad_target;
    out.form = target_form::authority;
    out.path = out.authority = t;
    return error::none;
  }
  if (t[0] == '/') {
    split_query(t, out);
    return error::none;
  }
  if (t == "*") {
    if (out.method != method::options) return error::bad_target;
    out.form = target_form::asterisk;
    out.path = t;
    return error::none;
  }
  size_t scheme = chars::equals_lower(t.substr(0, 7), "http://")    ? 7
                  : chars::equals_lower(t.substr(0, 8), "https://") ? 8
                                                                    : 0;
  if (scheme == 0) return error::bad_target;
  std::string_view rest = t.substr(scheme);
  size_t auth_end = std::min(rest.find('/'), rest.find('?'));
  std::string_view auth = rest.substr(0, auth_end);
  if (!valid_authority(auth, port::optional)) return error::bad_target;
  out.form = target_form::absolute;
  out.authority = auth;
  split_query(rest.substr(auth.size()), out);
  return error::none;
}

// Finds the space before the version: the last space of the line, since the target has none.
// The common " HTTP/1.x" ending is recognised without a scan.
const char* version_space(const char* method_end, const char* content_end) {
  if (content_end - method_end >= 10 && content_end[-9] == ' ' && content_end[-1] != ' ' &&
      std::string_view(content_end - 8, 7) == "HTTP/1.") {
    return content_end - 9;
  }
  const char* sp = content_end;
  while (sp > method_end && *(sp - 1) != ' ') --sp;
  return sp - 1;  // method_end itself when the method's is the only space
}

// Validates a complete request line [p, content_end) whose method token ends at the space
// `method_end`; `end` is where the readable input ends. Order matters only for which error a
// doubly-bad line reports; the version goes before the target so that the HTTP/2 preface gets
// 505 rather than "bad target".
error parse_request_line(const char* p, const char* method_end, const char* content_end,
                         const char* end, request& out) {
  out.method_name = {p, static_cast<size_t>(method_end - p)};
  const char* sp = version_space(method_end, content_end);
  if (sp == method_end || method_end + 1 == sp) return error::bad_request_line;
  if (error e = parse_version({sp + 1, static_cast<size_t>(content_end - sp - 1)}, out);
      e != error::none) {
    return e;
  }
  // The scan may run on to `end`: it stops at the space `sp` at the latest, and a longer reach
  // keeps short targets in the 16-byte loop.
  const char* t = method_end + 1;
  const char* bad = chars::find_non_target(t, end, p);
  if (bad != sp) return *bad == '\r' ? error::bare_cr : error::bad_target;
  out.target = {t, static_cast<size_t>(sp - t)};
  return parse_target_form(out.target, out);
}

// What the request line stage produced: a result to return now, or the start of the fields.
struct line_outcome {
  bool done;  // `res` is final
  result res;
  const char* next;  // when !done: first byte after the request line
};

// No line end was found in [line, bound): decides whether the bytes seen already prove that the
// request line (414) or the head (431) is too long. The line may hold request_line_bytes_max
// bytes plus CRLF, so rl_max + 1 bytes without LF prove it too long unless the last one is a CR.
line_outcome line_unfinished(const char* line, const char* bound, const window& w,
                             const limits& lim) {
  size_t seen = static_cast<size_t>(bound - line);
  size_t max = lim.request_line_bytes_max;
  if (seen >= max + 2 || (seen == max + 1 && bound[-1] != '\r')) {
    return {true, failure(error::uri_too_long), nullptr};
  }
  if (w.full && bound == w.end) return {true, failure(error::header_section_too_large), nullptr};
  return {true, incomplete(w.len), nullptr};
}

line_outcome request_line(const char* line, const window& w, const limits& lim, request& out) {
  const size_t room = static_cast<size_t>(w.end - line);
  const char* bound = line + std::min<size_t>(room, lim.request_line_bytes_max + 2ull);
  // The method is judged before the line is complete, so that a client speaking TLS or another
  // binary protocol to this port is rejected at once instead of waiting for a line end. Only the
  // first rl_max + 1 bytes are scanned: a token that long already proves the line too long, and
  // judging a byte after it would make the error depend on how the input was split.
  const char* method_bound = line + std::min<size_t>(room, lim.request_line_bytes_max + 1ull);
  const char* method_end = scan_method(line, method_bound, out);
  if (method_end == method_bound) {
    return line_unfinished(line, method_bound, w, lim);
  }
  if (*method_end != ' ') {
    char c = *method_end;
    if (c == '\r') {
      if (method_end + 1 == bound) return line_unfinished(line, bound, w, lim);
      return {true, failure(method_end[1] == '\n' ? error::bad_request_line : error::bare_cr),
              nullptr};
    }
    return {true, failure(c == '\n' ? error::bad_request_line : error::bad_method), nullptr};
  }
  if (method_end == line) return {true, failure(error::bad_request_line), nullptr};
  const char* lf = chars::find_lf(method_end, bound, line);
  if (lf == bound) return line_unfinished(line, bound, w, lim);
  const char* content_end = lf[-1] == '\r' ? lf - 1 : lf;
  if (static_cast<size_t>(content_end - line) > lim.request_line_bytes_max) {
    return {true, failure(error::uri_too_long), nullptr};
  }
  if (error e = parse_request_line(line, method_end, content_end, w.end, out); e != error::none) {
    return {true, failure(e), nullptr};
  }
  return {false, {}, lf + 1};
}

// Returns one past the empty line that ends the head, looking for an LF followed by LF or CRLF
// whose first LF is at or after `from`, or nullptr if [from, end) holds none.
const char* find_head_end(const char* from, const char* end) {
  for (const char* p = from; p < end; ++p) {
    p = chars::find_byte(p, end, '\n');
    if (p == end) break;
    if (end - p >= 2 && p[1] == '\n') return p + 2;
    if (end - p >= 3 && p[1] == '\r' && p[2] == '\n') return p + 3;
  }
  return nullptr;
}

enum class fields_outcome : uint8_t { done, incomplete, error };

// Parses one field line at p (not the empty line); on success advances p past its line end.
// The next line's start depends only on the LF search; the name and value checks hang off it, so
// the CPU overlaps them with the following lines instead of chaining every scan of every line.
// Both checks stop at the LF at the latest, since LF is neither a tchar nor a value byte.
fields_outcome field_line(const char*& p, const window& w, request& out, error& err) {
  const char* lf = chars::find_lf(p, w.end, w.data);
  if (lf == w.end) return fields_outcome::incomplete;
  const char* name_end = chars::find_non_tchar(p, w.end, w.data);
  if (*name_end != ':' || name_end == p) {
    char c = *name_end;
    err = error::bad_header_name;
    if (chars::is_ows(c) && name_end != p) err = error::space_before_colon;
    if (c == '\r' && name_end[1] != '\n') err = error::bare_cr;
    return fields_outcome::error;
  }
  const char* v = name_end + 1;
  while (chars::is_ows(*v)) ++v;
  const char* q = chars::find_value_end(v, w.end, w.data);
  if (q != lf && (*q != '\r' || q + 1 != lf)) {
    err = *q == '\r' ? error::bare_cr : error::bad_header_value;
    return fields_outcome::error;
  }
  while (q > v && chars::is_ows(q[-1])) --q;
  out.headers[out.header_count++] = {{p, static_cast<size_t>(name_end - p)},
                                     {v, static_cast<size_t>(q - v)}};
  p = lf + 1;
  return fields_outcome::done;
}

// Parses field lines from `line` through the empty line. done: `line` is one past the head.
// error: `line` is the start of the offending line.
fields_outcome fields(const char*& line, const window& w, const limits& lim, request& out,
                      field_facts& facts, error& err) {
  for (;;) {
    const char* p = line;
    if (p == w.end) return fields_outcome::incomplete;
    if (*p == '\r') {
      if (p + 1 == w.end) return fields_outcome::incomplete;
      if (p[1] != '\n') {
        err = error::bare_cr;
        return fields_outcome::error;
      }
      line = p + 2;
      return fields_outcome::done;
    }
    if (*p == '\n') {
      line = p + 1;
      return fields_outcome::done;
    }
    // RFC 9112 §5.2: obs-fold is rejected (a server MAY; folding is how a field hides from a
    // proxy that unfolds differently). This also rejects whitespace before the first field,
    // which §2.2 allows rejecting.
    if (chars::is_ows(*p)) {
      err = error::obs_fold;
      return fields_outcome::error;
    }
    if (out.header_count == lim.headers_max) {
      err = error::too_many_headers;
      return fields_outcome::error;
    }
    fields_outcome o = field_line(p, w, out, err);
    if (o != fields_outcome::done) return o;
    const header& h = out.headers[out.header_count - 1];
    if (field_may_matter(h.name)) {
      err = apply_field(h, facts, out);
      if (err != error::none) return fields_outcome::error;
    }
    line = p;
  }
}

}  // namespace

result parse_head(const char* data, size_t len, const limits& lim, request& out,
                  size_t scanned_hint) {
  RC_ASSERT(lim.headers_max <= header_capacity);
  reset(out);
  const window w{data, data + std::min<size_t>(len, lim.header_bytes_max), len,
                 len >= lim.header_bytes_max};
  const char* const start = skip_empty_lines(data, w.end);
  const result unfinished = w.full ? failure(error::header_section_too_large) : incomplete(len);

  line_outcome rl = request_line(start, w, lim, out);
  if (rl.done) return rl.res;

  const char* line = rl.next;
  if (scanned_hint > 0) {
    const char* from = data + std::min(std::max(scanned_hint, size_t{3}) - 3, len);
    if (find_head_end(std::max(from, line - 1), w.end) == nullptr) return unfinished;
  }
  field_facts facts;
  error err = error::none;
  fields_outcome o = fields(line, w, lim, out, facts, err);
  if (o == fields_outcome::error) {
    if (find_head_end(line - 1, w.end) != nullptr) return failure(err);
    o = fields_outcome::incomplete;
  }
  if (o == fields_outcome::incomplete) return unfinished;
  if (error e = finish_fields(facts, lim, out); e != error::none) return failure(e);
  out.head_bytes = static_cast<size_t>(line - start);
  return complete(static_cast<size_t>(line - data));
}

}  // namespace rc::http1
