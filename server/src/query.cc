#include "server/query.h"

#include <cctype>
#include <charconv>
#include <cstdint>

namespace rc::server {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> decode(std::string_view s, bool plus_is_space = true) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+' && plus_is_space) {
      out.push_back(' ');
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;  // truncated escape
      int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

std::optional<std::string> query_value(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::optional<std::string> path_segment_decode(std::string_view segment) {
  return decode(segment, false);
}

bool event_id_syntax_ok(std::string_view v) {
  size_t dash = v.rfind('-');
  if (dash != std::string_view::npos) {
    std::string_view epoch = v.substr(0, dash);
    if (epoch.empty() || epoch.size() > 64) return false;
    for (char c : epoch)
      if (!std::isalnum(static_cast<unsigned char>(c))) return false;
    v.remove_prefix(dash + 1);
  }
  uint64_t seq = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), seq);
  return !v.empty() && ec == std::errc() && p == v.data() + v.size();
}

std::optional<std::string_view> bad_timeout_header(const http1::request& req) {
  constexpr std::string_view name = "x-ringcast-timeout-ms";
  for (uint32_t i = 0; i < req.header_count; ++i) {
    std::string_view n = req.headers[i].name;
    if (n.size() != name.size()) continue;
    bool same = true;
    for (size_t k = 0; k < n.size() && same; ++k)
      same = std::tolower(static_cast<unsigned char>(n[k])) == name[k];
    if (!same) continue;
    std::string_view v = req.headers[i].value;
    uint64_t ms = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), ms);
    if (v.empty() || ec != std::errc() || p != v.data() + v.size() || ms == 0) return v;
  }
  return std::nullopt;
}

}  // namespace rc::server
