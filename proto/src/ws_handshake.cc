#include <cstring>

#include "base/assert.h"
#include "proto/base64.h"
#include "proto/sha1.h"
#include "proto/ws.h"

namespace rc::ws {
namespace {

constexpr std::string_view websocket_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

// Calls f(element) for each element of a comma-separated list (RFC 9110 §5.6.1), with optional
// whitespace trimmed and empty elements skipped; stops early when f returns true.
template <class F>
bool any_element(std::string_view list, F&& f) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view element = trim_ows(list.substr(0, comma));
    if (!element.empty() && f(element)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

bool list_has_token(std::string_view list, std::string_view token) {
  return any_element(list, [&](std::string_view e) { return iequals(e, token); });
}

// §4.2.1: "a base64-encoded value that, when decoded, is 16 bytes in length".
bool valid_key(std::string_view key) {
  if (key.size() != base64::encoded_size(16)) return false;
  byte_buffer decoded(32);
  return base64::decode(key, decoded) && decoded.size() == 16;
}

handshake_result reject(handshake_error e, uint16_t status, std::string_view message,
                        std::string_view header_name = {}, std::string_view header_value = {}) {
  handshake_result r;
  r.error = e;
  r.status = status;
  r.message = message;
  r.header_name = header_name;
  r.header_value = header_value;
  return r;
}

bool single_line(std::string_view s) {
  return s.find('\r') == std::string_view::npos && s.find('\n') == std::string_view::npos;
}

bool header_lines(std::string_view s) {
  return s.empty() || (s.size() >= 2 && s.substr(s.size() - 2) == "\r\n");
}

}  // namespace

handshake_result check_handshake(const handshake_request& req) {
  // Methods are case-sensitive (RFC 9110 §9.1): "get" is not GET.
  if (req.method != "GET") {
    return reject(handshake_error::method_not_get, 405, "WebSocket upgrade requires GET", "Allow",
                  "GET");
  }
  if (req.version != http_version::http_1_1) {
    return reject(handshake_error::http_1_0, 400, "WebSocket upgrade requires HTTP/1.1");
  }
  if (!list_has_token(req.upgrade, "websocket")) {
    return reject(handshake_error::bad_upgrade, 400, "missing or invalid Upgrade: websocket");
  }
  if (!list_has_token(req.connection, "upgrade")) {
    return reject(handshake_error::bad_connection, 400,
                  "Connection header must include the \"Upgrade\" token");
  }
  if (trim_ows(req.ws_version) != "13") {
    return reject(handshake_error::unsupported_version, 426,
                  "unsupported Sec-WebSocket-Version: this server speaks version 13",
                  "Sec-WebSocket-Version", "13");
  }
  std::string_view key = trim_ows(req.key);
  if (!valid_key(key)) {
    return reject(handshake_error::bad_key, 400,
                  "Sec-WebSocket-Key must be the base64 encoding of 16 bytes");
  }
  handshake_result r;
  compute_accept(key, r.accept);
  return r;
}

void compute_accept(std::string_view key, char (&out)[28]) {
  sha1::hasher h;
  h.update(key);
  h.update(websocket_guid);
  sha1::digest d = h.finish();
  static_assert(base64::encoded_size(sha1::digest_bytes) == sizeof out);
  base64::encode(d.data(), d.size(), out);
}

std::string_view select_subprotocol(std::string_view offered,
                                    std::span<const std::string_view> supported) {
  std::string_view chosen;
  any_element(offered, [&](std::string_view e) {
    for (std::string_view s : supported) {
      if (s == e) {
        chosen = s;
        return true;
      }
    }
    return false;
  });
  return chosen;
}

void write_upgrade_response(byte_buffer& out, std::string_view accept, std::string_view subprotocol,
                            std::string_view extra_header_lines) {
  RC_ASSERT(single_line(accept) && single_line(subprotocol));
  RC_ASSERT(header_lines(extra_header_lines));
  out.append(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ");
  out.append(accept);
  out.append("\r\n");
  if (!subprotocol.empty()) {
    out.append("Sec-WebSocket-Protocol: ");
    out.append(subprotocol);
    out.append("\r\n");
  }
  out.append(extra_header_lines);
  out.append("\r\n");
}

void write_upgrade_request(byte_buffer& out, std::string_view host, std::string_view target,
                           std::string_view key, std::string_view protocols,
                           std::string_view extra_header_lines) {
  RC_ASSERT(single_line(host) && single_line(target) && single_line(key) && single_line(protocols));
  RC_ASSERT(header_lines(extra_header_lines));
  out.append("GET ");
  out.append(target);
  out.append(" HTTP/1.1\r\nHost: ");
  out.append(host);
  out.append("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
  out.append(key);
  out.append("\r\nSec-WebSocket-Version: 13\r\n");
  if (!protocols.empty()) {
    out.append("Sec-WebSocket-Protocol: ");
    out.append(protocols);
    out.append("\r\n");
  }
  out.append(extra_header_lines);
  out.append("\r\n");
}

}  // namespace rc::ws
