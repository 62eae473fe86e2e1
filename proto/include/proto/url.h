// Upstream endpoint URLs (RFC 3986, the subset an upstream needs): `http://`, `https://`,
// `ws://` and `wss://` with a host (a name, an IPv4 literal or a bracketed IPv6 literal), an
// optional port and an optional base path, such as "https://api.example.com/v1" or
// "http://[::1]:8000/v1". User info, queries and fragments are refused (a key belongs in the
// config's api_key_env, not in a URL that ends up in logs).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rc::url {

enum class scheme : uint8_t { http, https, ws, wss };

struct endpoint {
  scheme kind = scheme::http;
  std::string host;       // as written, without brackets; lowercased for names
  uint16_t port = 0;      // the scheme's default when the URL has none
  std::string base_path;  // "" or "/v1": never ends with '/'
  bool tls() const { return kind == scheme::https || kind == scheme::wss; }
  bool websocket() const { return kind == scheme::ws || kind == scheme::wss; }
  bool host_is_literal = false;  // an IP literal (no name to resolve, no SNI)
};

// Parses `text`; on failure returns nullopt and sets `error` to a reason a config error message
// can quote ("unsupported scheme \"ftp\"", "port out of range", …).
std::optional<endpoint> parse(std::string_view text, std::string& error);

// "scheme://host[:port]base_path", the port written only when it is not the default; IPv6
// literals bracketed. For logs and metrics labels.
std::string to_string(const endpoint& e);

}  // namespace rc::url
