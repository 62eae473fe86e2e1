#include "http1_fields.h"

#include <cstdint>
#include <limits>

namespace rc::http1 {
namespace {

// RFC 9112 §3.2: exactly one Host field, whose value is a uri-host with an optional port. A
// second Host is rejected in every version: two parsers picking different ones is a
// cache-poisoning and routing vector.
error on_host(std::string_view v, field_facts& f, request& out) {
  if (++f.host_count > 1) return error::duplicate_host;
  for (char c : v) {
    if (!chars::is(c, chars::host)) return error::bad_host;
  }
  out.host = v;
  return error::none;
}

// RFC 9110 §8.6: Content-Length = 1*DIGIT. We accept a list of identical values ("5, 5", or the
// same value in two fields) as that one value, as §8.6 permits, because some intermediaries merge
// duplicate fields into a list; identical values cannot be read two ways. Anything else (values
// that differ, empty elements, signs, inner whitespace, overflow) is rejected: two parsers that
// disagree on a length is exactly how a request gets smuggled.
error on_content_length(std::string_view v, field_facts& f, request& out) {
  error e = error::none;
  for_each_element(v, [&](std::string_view element) {
    uint64_t n = 0;
    if (element.empty()) e = error::bad_content_length;
    for (char c : element) {
      unsigned d = static_cast<unsigned char>(c) - '0';
      if (d > 9 || n > (std::numeric_limits<uint64_t>::max() - d) / 10) {
        e = error::bad_content_length;
        break;
      }
      n = n * 10 + d;
    }
    if (e != error::none) return false;
    if (f.content_length_seen && n != out.content_length) {
      e = error::conflicting_content_length;
      return false;
    }
    f.content_length_seen = true;
    out.content_length = n;
    return true;
  });
  return e;
}

// RFC 9112 §6.1/§7: codings apply in order, chunked must be last and appear once. We decode
// only chunked, so anything before it is refused (finish_fields decides 400 or 501).
void on_transfer_encoding(std::string_view v, field_facts& f) {
  f.transfer_encoding_seen = true;
  for_each_element(v, [&](std::string_view element) {
    const char* first = element.data();
    const char* name_end = chars::find_non_tchar(first, first + element.size(), first);
    std::string_view name = element.substr(0, static_cast<size_t>(name_end - element.data()));
    std::string_view params = element.substr(name.size());
    if (name.empty()) {
      f.te_malformed = true;
      return false;
    }
    if (chars::equals_lower(name, "chunked")) {
      if (!params.empty()) f.te_malformed = true;  // chunked has no parameters
      ++f.te_chunked_count;
      f.te_chunked_last = true;
      return true;
    }
    // Parameters of a coding we do not implement are not parsed: the request is refused anyway.
    params = chars::trim_ows(params);
    if (!params.empty() && params[0] != ';') f.te_malformed = true;
    f.te_other = true;
    f.te_chunked_last = false;
    return true;
  });
}

// RFC 9110 §7.6.1: connection options are case-insensitive tokens in a comma list, possibly
// spread over several Connection fields.
void on_connection(std::string_view v, field_facts& f) {
  for_each_element(v, [&](std::string_view option) {
    if (chars::equals_lower(option, "close")) f.connection_close = true;
    if (chars::equals_lower(option, "keep-alive")) f.connection_keep_alive = true;
    if (chars::equals_lower(option, "upgrade")) f.connection_upgrade = true;
    return true;
  });
}

void on_expect(std::string_view v, field_facts& f) {
  for_each_element(v, [&](std::string_view e) {
    if (chars::equals_lower(e, "100-continue")) f.expect_continue = true;
    return true;
  });
}

}  // namespace

// Dispatches on the name's length first, so that the common fields that are none of these
// (Accept, User-Agent, Cookie...) cost one switch.
error apply_field(const header& h, field_facts& f, request& out) {
  std::string_view n = h.name;
  switch (n.size()) {
    case 4:
      if (chars::equals_lower(n, "host")) return on_host(h.value, f, out);
      break;
    case 6:
      if (chars::equals_lower(n, "expect")) on_expect(h.value, f);
      break;
    case 7:
      if (chars::equals_lower(n, "upgrade")) f.upgrade_field = f.upgrade_field || !h.value.empty();
      break;
    case 10:
      if (chars::equals_lower(n, "connection")) on_connection(h.value, f);
      break;
    case 14:
      if (chars::equals_lower(n, "content-length")) return on_content_length(h.value, f, out);
      break;
    case 17:
      if (chars::equals_lower(n, "transfer-encoding")) on_transfer_encoding(h.value, f);
      break;
  }
  return error::none;
}

error finish_fields(const field_facts& f, const limits& lim, request& out) {
  const bool http_1_0 = out.version == version::http_1_0;
  if (!http_1_0 && f.host_count == 0) return error::missing_host;
  if (f.transfer_encoding_seen) {
    // RFC 9112 §6.1: a 1.0 request with Transfer-Encoding may have passed through a 1.0
    // intermediary that ignored it, so its framing cannot be trusted; treat it as faulty.
    if (http_1_0) return error::transfer_encoding_in_http_1_0;
    // §6.1 lets a server reject CL+TE instead of letting TE win; we do, since such a request is
    // either a smuggling attempt or from a broken client.
    if (f.content_length_seen) return error::content_length_with_transfer_encoding;
    // §6.3: chunked not final means the length cannot be known: a MUST-400, which takes
    // precedence over the SHOULD-501 for codings we do not implement (§6.1).
    if (f.te_malformed || !f.te_chunked_last || f.te_chunked_count != 1) {
      return error::bad_transfer_encoding;
    }
    if (f.te_other) return error::unsupported_transfer_coding;
    out.body = body_kind::chunked;
  } else if (f.content_length_seen) {
    if (out.content_length > lim.body_bytes_max) return error::body_too_large;
    out.body = body_kind::content_length;
  }
  // RFC 9112 §9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive" (and no "close").
  out.keep_alive = http_1_0 ? f.connection_keep_alive && !f.connection_close : !f.connection_close;
  out.upgrade = f.connection_upgrade && f.upgrade_field;
  // RFC 9110 §10.1.1: a server MUST ignore 100-continue in an HTTP/1.0 request.
  out.expect_continue = f.expect_continue && !http_1_0;
  return error::none;
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (chars::to_lower(a[i]) != chars::to_lower(b[i])) return false;
  }
  return true;
}

std::string_view find_field(const header* headers, uint32_t count, std::string_view name) {
  for (uint32_t i = 0; i < count; ++i) {
    if (equals_ignore_case(headers[i].name, name)) return headers[i].value;
  }
  return {};
}

bool fields_have_token(const header* headers, uint32_t count, std::string_view name,
                       std::string_view token) {
  for (uint32_t i = 0; i < count; ++i) {
    if (!equals_ignore_case(headers[i].name, name)) continue;
    bool found = false;
    for_each_element(headers[i].value, [&](std::string_view e) {
      found = found || equals_ignore_case(e, token);
      return true;
    });
    if (found) return true;
  }
  return false;
}

std::string_view request::find(std::string_view name) const {
  return find_field(headers, header_count, name);
}

bool request::has_token(std::string_view name, std::string_view token) const {
  return fields_have_token(headers, header_count, name, token);
}

}  // namespace rc::http1
