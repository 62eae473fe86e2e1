// Upstream endpoint URLs: see url.h. The grammar accepted is
//
//   scheme "://" host [ ":" port ] [ path ]
//   scheme = http | https | ws | wss                    (any case)
//   host   = "[" IPv6 "]" | IPv4 | name                  (name: letters, digits, '-', '_', '.')
//   path   = "/" *( pchar | "/" )                        (RFC 3986 pchar, %XX checked)
//
// Everything else (user info, queries, fragments, zone ids, spaces) is refused with a reason.
#include "proto/url.h"

#include <arpa/inet.h>

#include <cstring>

namespace rc::url {
namespace {

constexpr size_t kUrlBytesMax = 2048;
constexpr size_t kHostBytesMax = 253;
constexpr size_t kLabelBytesMax = 63;

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 3986 pchar without '%' (checked separately): unreserved / sub-delims / ":" / "@".
bool is_path_char(char c) {
  if (is_alpha(c) || is_digit(c)) return true;
  return std::strchr("-._~!$&'()*+,;=:@/", c) != nullptr && c != '\0';
}

// Quotes `s` for an error message, replacing bytes that would garble a log line.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s.substr(0, 64)) {
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u >= 0x7f || c == '"') ? '?' : c;
  }
  if (s.size() > 64) out += "...";
  return out + "\"";
}

bool fail(std::string& error, std::string reason) {
  error = std::move(reason);
  return false;
}

bool parse_scheme(std::string_view& rest, endpoint& e, std::string& error) {
  size_t sep = rest.find("://");
  if (sep == std::string_view::npos) {
    return fail(error, "missing scheme (expected http://, https://, ws:// or wss://)");
  }
  std::string name;
  for (char c : rest.substr(0, sep)) name += lower(c);
  if (name == "http") {
    e.kind = scheme::http;
  } else if (name == "https") {
    e.kind = scheme::https;
  } else if (name == "ws") {
    e.kind = scheme::ws;
  } else if (name == "wss") {
    e.kind = scheme::wss;
  } else {
    return fail(error, "unsupported scheme " + quoted(name) +
                           " (expected http, https, ws or wss)");
  }
  rest.remove_prefix(sep + 3);
  return true;
}

bool parse_name(std::string_view host, endpoint& e, std::string& error) {
  if (host.size() > kHostBytesMax) return fail(error, "host name longer than 253 bytes");
  bool all_numeric = true;  // digits and dots only: meant as an IPv4 literal
  size_t label = 0;
  for (size_t i = 0; i <= host.size(); ++i) {
    if (i == host.size() || host[i] == '.') {
      if (label == 0) return fail(error, "empty label in host " + quoted(host));
      label = 0;
      continue;
    }
    char c = host[i];
    if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_') {
      return fail(error, "invalid character in host " + quoted(host));
    }
    if (!is_digit(c)) all_numeric = false;
    if (++label > kLabelBytesMax) return fail(error, "host label longer than 63 bytes");
  }
  if (all_numeric) {
    std::string text(host);
    in_addr addr;
    if (inet_pton(AF_INET, text.c_str(), &addr) != 1) {
      return fail(error, "bad IPv4 address " + quoted(host));
    }
    e.host = std::move(text);
    e.host_is_literal = true;
    return true;
  }
  e.host.clear();
  for (char c : host) e.host += lower(c);
  e.host_is_literal = false;
  return true;
}

// Authority: host and optional port. `auth` has no '/'.
bool parse_authority(std::string_view auth, endpoint& e, std::string& error) {
  if (auth.find('@') != std::string_view::npos) {
    return fail(error, "user info is not allowed in an upstream URL (put the key in "
                       "api_key_env)");
  }
  std::string_view port_text;
  bool has_port = false;
  if (!auth.empty() && auth.front() == '[') {
    size_t close = auth.find(']');
    if (close == std::string_view::npos) return fail(error, "unterminated '[' in host");
    std::string_view v6 = auth.substr(1, close - 1);
    if (v6.find('%') != std::string_view::npos) {
      return fail(error, "IPv6 zone ids are not supported");
    }
    std::string text(v6);
    in6_addr addr;
    if (inet_pton(AF_INET6, text.c_str(), &addr) != 1) {
      return fail(error, "bad IPv6 address " + quoted(v6));
    }
    e.host.clear();
    for (char c : v6) e.host += lower(c);
    e.host_is_literal = true;
    std::string_view after = auth.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail(error, "unexpected text after ']' in host");
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    size_t colon = auth.find(':');
    std::string_view host = auth.substr(0, colon);
    if (host.empty()) return fail(error, "missing host");
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = auth.substr(colon + 1);
    }
    if (!parse_name(host, e, error)) return false;
  }
  if (e.host.empty()) return fail(error, "missing host");
  e.port = (e.kind == scheme::http || e.kind == scheme::ws) ? 80 : 443;
  if (has_port) {
    if (port_text.empty()) return fail(error, "empty port");
    uint32_t port = 0;
    for (char c : port_text) {
      if (!is_digit(c)) return fail(error, "bad port " + quoted(port_text));
      port = port * 10 + static_cast<uint32_t>(c - '0');
      if (port > 65535) return fail(error, "port out of range (1-65535)");
    }
    if (port == 0) return fail(error, "port out of range (1-65535)");
    e.port = static_cast<uint16_t>(port);
  }
  return true;
}

bool parse_path(std::string_view path, endpoint& e, std::string& error) {
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '%') {
      if (i + 2 >= path.size() || !is_hex(path[i + 1]) || !is_hex(path[i + 2])) {
        return fail(error, "bad percent-encoding in path");
      }
      i += 2;
      continue;
    }
    if (!is_path_char(c)) return fail(error, "invalid character in path " + quoted(path));
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  e.base_path = std::string(path);
  return true;
}

}  // namespace

std::optional<endpoint> parse(std::string_view text, std::string& error) {
  error.clear();
  if (text.empty()) {
    error = "empty URL";
    return std::nullopt;
  }
  if (text.size() > kUrlBytesMax) {
    error = "URL longer than 2048 bytes";
    return std::nullopt;
  }
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      error = "URL contains a space, a control character or a non-ASCII byte";
      return std::nullopt;
    }
  }
  if (text.find('#') != std::string_view::npos) {
    error = "fragments ('#') are not allowed in an upstream URL";
    return std::nullopt;
  }
  if (text.find('?') != std::string_view::npos) {
    error = "queries ('?') are not allowed in an upstream URL";
    return std::nullopt;
  }
  endpoint e;
  std::string_view rest = text;
  if (!parse_scheme(rest, e, error)) return std::nullopt;
  size_t slash = rest.find('/');
  std::string_view auth = rest.substr(0, slash);
  if (!parse_authority(auth, e, error)) return std::nullopt;
  if (slash != std::string_view::npos && !parse_path(rest.substr(slash), e, error)) {
    return std::nullopt;
  }
  return e;
}

std::string to_string(const endpoint& e) {
  static constexpr const char* kNames[] = {"http", "https", "ws", "wss"};
  std::string out = kNames[static_cast<size_t>(e.kind)];
  out += "://";
  bool v6 = e.host.find(':') != std::string::npos;
  if (v6) out += '[';
  out += e.host;
  if (v6) out += ']';
  uint16_t default_port = (e.kind == scheme::http || e.kind == scheme::ws) ? 80 : 443;
  if (e.port != default_port) {
    out += ':';
    out += std::to_string(e.port);
  }
  out += e.base_path;
  return out;
}

}  // namespace rc::url
