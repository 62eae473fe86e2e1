// permessage-deflate negotiation: the Sec-WebSocket-Extensions grammar (RFC 6455 §9.1) and the
// parameters of RFC 7692 §7.1. See ws_deflate.h for the policy.
#include <algorithm>

#include "proto/ws_deflate.h"

namespace rc::ws {
namespace detail {
namespace {

// RFC 9110 §5.6.2 tchar.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

void skip_ows(std::string_view s, size_t& pos) {
  while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t')) ++pos;
}

std::string_view take_token(std::string_view s, size_t& pos) {
  size_t start = pos;
  while (pos < s.size() && is_tchar(s[pos])) ++pos;
  return s.substr(start, pos - start);
}

// A quoted-string starting at pos (which is at the opening quote). Returns false if it is not
// terminated; the content is returned without the quotes (quoted pairs left as they are).
bool take_quoted(std::string_view s, size_t& pos, std::string_view& content) {
  size_t start = ++pos;
  while (pos < s.size()) {
    char c = s[pos];
    if (c == '\\') {
      if (pos + 1 >= s.size()) return false;
      pos += 2;
    } else if (c == '"') {
      content = s.substr(start, pos - start);
      ++pos;
      return true;
    } else {
      ++pos;
    }
  }
  return false;
}

// Moves pos past the next comma outside a quoted string (or to the end). False if a quoted
// string is left open.
bool skip_to_next_element(std::string_view s, size_t& pos) {
  while (pos < s.size()) {
    if (s[pos] == ',') {
      ++pos;
      return true;
    }
    if (s[pos] == '"') {
      std::string_view ignored;
      if (!take_quoted(s, pos, ignored)) return false;
      continue;
    }
    ++pos;
  }
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
           return lower(x) == lower(y);
         });
}

// RFC 7692 §7.1.2: 1*DIGIT in 8..15 written as %x38-39 / "1" %x30-35 (no leading zeros).
uint8_t window_bits_value(std::string_view v) {
  if (v.size() == 1 && (v[0] == '8' || v[0] == '9')) return static_cast<uint8_t>(v[0] - '0');
  if (v.size() == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5') {
    return static_cast<uint8_t>(10 + v[1] - '0');
  }
  return 0;
}

// Parses ";" param [ "=" value ] pairs after the extension name. Returns false on a syntax error.
bool take_params(std::string_view s, size_t& pos, ext_element& e, bool& unterminated) {
  for (;;) {
    skip_ows(s, pos);
    if (pos >= s.size() || s[pos] == ',') return true;
    if (s[pos] != ';') return false;
    ++pos;
    skip_ows(s, pos);
    ext_param p;
    p.name = take_token(s, pos);
    if (p.name.empty()) return false;
    skip_ows(s, pos);
    if (pos < s.size() && s[pos] == '=') {
      ++pos;
      skip_ows(s, pos);
      p.has_value = true;
      if (pos < s.size() && s[pos] == '"') {
        if (!take_quoted(s, pos, p.value)) {
          unterminated = true;
          return false;
        }
      } else {
        p.value = take_token(s, pos);
        if (p.value.empty()) return false;
      }
    }
    if (e.param_count == ext_params_max) return false;
    e.params[e.param_count++] = p;
  }
}

}  // namespace

bool next_extension(std::string_view s, size_t& pos, ext_element& e) {
  // Empty list elements (", ,") are allowed and skipped (RFC 9110 §5.6.1).
  while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == ',')) ++pos;
  if (pos >= s.size()) return false;
  e = ext_element{};
  e.name = take_token(s, pos);
  bool unterminated = false;
  if (e.name.empty() || !take_params(s, pos, e, unterminated)) {
    e.malformed = true;
    if (unterminated) {
      pos = s.size();
      return true;  // report this element as malformed; the next call ends the scan
    }
    // Resynchronise at the next comma outside quotes; an open quote ends the header.
    if (!skip_to_next_element(s, pos)) pos = s.size();
    return true;
  }
  if (pos < s.size()) ++pos;  // the comma
  return true;
}

std::optional<deflate_offer> to_deflate_offer(const ext_element& e) {
  if (!iequals(e.name, "permessage-deflate")) return std::nullopt;
  deflate_offer o;
  bool seen[4] = {};
  for (size_t i = 0; i < e.param_count; ++i) {
    const ext_param& p = e.params[i];
    int which = iequals(p.name, "server_no_context_takeover")   ? 0
                : iequals(p.name, "client_no_context_takeover") ? 1
                : iequals(p.name, "server_max_window_bits")     ? 2
                : iequals(p.name, "client_max_window_bits")     ? 3
                                                                : -1;
    if (which < 0 || seen[which]) return std::nullopt;  // unknown or repeated (§7)
    seen[which] = true;
    switch (which) {
      case 0:
      case 1:
        if (p.has_value) return std::nullopt;
        (which == 0 ? o.server_no_context_takeover : o.client_no_context_takeover) = true;
        break;
      case 2:
        o.server_max_window_bits = window_bits_value(p.value);
        if (!p.has_value || o.server_max_window_bits == 0) return std::nullopt;
        break;
      default:
        o.client_max_window_bits = true;
        if (p.has_value) {
          o.client_max_window_bits_value = window_bits_value(p.value);
          if (o.client_max_window_bits_value == 0) return std::nullopt;
        }
        break;
    }
  }
  return o;
}

}  // namespace detail

std::optional<deflate_agreement> negotiate_deflate(std::string_view header,
                                                   const deflate_policy& policy) {
  std::optional<deflate_agreement> out;
  for_each_deflate_offer(header, [&](const deflate_offer& o) {
    // zlib can't compress with a 256-byte window: decline and try the client's next offer.
    if (o.server_max_window_bits != 0 && o.server_max_window_bits < deflate_window_bits_min) {
      return false;
    }
    deflate_agreement a;
    a.server_no_context_takeover = o.server_no_context_takeover || !policy.context_takeover;
    a.client_no_context_takeover = true;
    a.server_window_bits = std::clamp(policy.window_bits, deflate_window_bits_min,
                                      deflate_window_bits_max);
    if (o.server_max_window_bits != 0) {
      a.server_window_bits = std::min(a.server_window_bits, o.server_max_window_bits);
      a.answer_server_max_window_bits = true;
    }
    out = a;
    return true;
  });
  return out;
}

void write_deflate_answer(byte_buffer& out, const deflate_agreement& a) {
  out.append("permessage-deflate");
  if (a.server_no_context_takeover) out.append("; server_no_context_takeover");
  if (a.client_no_context_takeover) out.append("; client_no_context_takeover");
  if (a.answer_server_max_window_bits) {
    out.append("; server_max_window_bits=");
    if (a.server_window_bits >= 10) out.push_back('1');
    out.push_back(static_cast<char>('0' + a.server_window_bits % 10));
  }
}

std::optional<deflate_agreement> parse_deflate_answer(std::string_view header) {
  size_t pos = 0;
  detail::ext_element e;
  if (!detail::next_extension(header, pos, e) || e.malformed) return std::nullopt;
  detail::ext_element extra;
  if (detail::next_extension(header, pos, extra)) return std::nullopt;  // one element only
  auto o = detail::to_deflate_offer(e);
  if (!o) return std::nullopt;
  deflate_agreement a;
  a.server_no_context_takeover = o->server_no_context_takeover;
  a.client_no_context_takeover = o->client_no_context_takeover;
  a.server_window_bits = o->server_max_window_bits ? o->server_max_window_bits : 15;
  a.answer_server_max_window_bits = o->server_max_window_bits != 0;
  return a;
}

}  // namespace rc::ws
