// Parsers and checks of the cluster settings (cluster_config.h).
#include "server/cluster_config.h"

#include <cctype>
#include <charconv>
#include <limits>

#include "proto/topic_pattern.h"

namespace rc::server {
namespace {

bool node_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// "'text'" (built by appending: GCC 12 warns wrongly about "'" + std::string&&).
std::string quote(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('\'');
  out.append(text);
  out.push_back('\'');
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

// A non-negative decimal number followed by a unit from `units` (factor per unit); `bare` is the
// factor without a unit.
struct unit {
  std::string_view name;
  int64_t factor;
};
template <size_t N>
std::string parse_with_units(std::string_view text, const unit (&units)[N], int64_t bare,
                             std::string_view what, int64_t& out) {
  std::string_view t = trim(text);
  if (t == "unlimited" || t == "-1") {
    out = -1;
    return {};
  }
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
  if (ec != std::errc{} || end == t.data())
    return quote(text) + " is not a " + std::string(what);
  std::string_view suffix(end, static_cast<size_t>(t.data() + t.size() - end));
  int64_t factor = 0;
  if (suffix.empty()) {
    factor = bare;
  } else {
    for (const unit& u : units)
      if (u.name == suffix) factor = u.factor;
  }
  if (factor == 0) {
    std::string names;
    for (const unit& u : units) names += (names.empty() ? "" : ", ") + std::string(u.name);
    return quote(text) + ": unknown unit '" + std::string(suffix) + "' (use " + names +
           ")";
  }
  if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max() / factor))
    return quote(text) + " is too large";
  out = static_cast<int64_t>(n) * factor;
  return {};
}

// A count of messages: a plain number (or "unlimited"/-1 for no limit).
std::string parse_count(std::string_view text, int64_t& out) {
  static constexpr unit units[] = {{"(a plain number)", 1}};
  return parse_with_units(text, units, 1, "count", out);
}

}  // namespace

std::string check_nats_url(std::string_view url) {
  std::string quoted = quote(url);
  constexpr std::string_view scheme = "nats://";
  if (url.starts_with("tls://") || url.starts_with("wss://") || url.starts_with("ws://"))
    return quoted + ": only nats:// (plain TCP) is supported";
  if (!url.starts_with(scheme)) return quoted + ": expected nats://HOST[:PORT]";
  std::string_view rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('@') != std::string_view::npos)
    return quoted + ": credentials do not belong in the URL (it shows in ps and logs); use "
                    "--nats-credentials-file or RINGCAST_NATS_USER/RINGCAST_NATS_PASSWORD";
  if (rest.find('/') != std::string_view::npos || rest.find('?') != std::string_view::npos)
    return quoted + ": expected nats://HOST[:PORT] (no path)";
  std::string_view host = rest, port;
  if (rest.starts_with('[')) {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return quoted + ": unterminated [IPv6] literal";
    host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return quoted + ": expected :PORT after ]";
      port = after.substr(1);
      if (port.empty()) return quoted + ": empty port";
    }
    if (host.empty()) return quoted + ": empty host";
    for (char c : host)
      if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.'))
        return quoted + ": bad IPv6 literal";
  } else {
    size_t colon = rest.rfind(':');
    if (colon != std::string_view::npos) {
      host = rest.substr(0, colon);
      port = rest.substr(colon + 1);
      if (port.empty()) return quoted + ": empty port";
    }
    if (host.empty()) return quoted + ": empty host";
    for (char c : host)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_'))
        return quoted + ": bad host name";
  }
  if (!port.empty()) {
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc{} || end != port.data() + port.size() || p == 0 || p > 65535)
      return quoted + ": port must be 1 to 65535";
  }
  return {};
}

std::string check_node_id(std::string_view id) {
  if (id.empty()) return "must not be empty";
  if (id.size() > 32) return quote(id) + " is longer than 32 characters";
  for (char c : id)
    if (!node_id_char(c))
      return quote(id) + ": only letters, digits, '_' and '-' are allowed";
  return {};
}

std::string default_node_id(std::string_view hostname, uint16_t port) {
  std::string suffix(1, '-');
  suffix += std::to_string(port);
  std::string host(hostname.substr(0, hostname.find('.')));
  for (char& c : host)
    if (!node_id_char(c)) c = '-';
  if (host.empty()) host = "node";
  if (host.size() + suffix.size() > 32) host.resize(32 - suffix.size());
  return host + suffix;
}

std::string parse_duration_ms(std::string_view text, int64_t& out) {
  static constexpr unit units[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}};
  std::string err = parse_with_units(text, units, 1000, "duration", out);
  if (err.empty() && out < 0) out = 0;  // "unlimited": no age limit
  return err;
}

std::string parse_byte_size(std::string_view text, int64_t& out) {
  static constexpr unit units[] = {{"B", 1},
                                   {"kB", 1000},
                                   {"KB", 1000},
                                   {"MB", 1000'000},
                                   {"GB", 1000'000'000},
                                   {"TB", 1000'000'000'000},
                                   {"KiB", int64_t{1} << 10},
                                   {"MiB", int64_t{1} << 20},
                                   {"GiB", int64_t{1} << 30},
                                   {"TiB", int64_t{1} << 40}};
  return parse_with_units(text, units, 1, "size", out);
}

std::string parse_topic_retention(std::string_view spec, topic_retention& out) {
  std::string where = quote(spec) + ": ";
  size_t eq = spec.find('=');
  if (eq == std::string_view::npos)
    return where + "expected PATTERN=age:24h,msgs:N,bytes:64MiB,per_subject:N";
  std::string_view pattern = trim(spec.substr(0, eq));
  if (std::string_view why = topic_pattern::check(pattern); !why.empty())
    return where + "bad topic pattern: " + std::string(why);
  if (pattern.front() == '.' || pattern.back() == '.' || pattern.find("..") != std::string_view::npos)
    return where + "empty segment in the pattern (cluster topic names have none)";
  out.pattern = std::string(pattern);
  std::string_view limits = spec.substr(eq + 1);
  if (trim(limits).empty())
    return where + "no limits after '=' (give at least one of age, msgs, bytes, per_subject)";
  bool seen[4] = {};
  while (!limits.empty()) {
    size_t comma = limits.find(',');
    std::string_view item = trim(limits.substr(0, comma));
    limits = comma == std::string_view::npos ? std::string_view{} : limits.substr(comma + 1);
    size_t colon = item.find(':');
    if (colon == std::string_view::npos)
      return where + quote(item) + ": expected KEY:VALUE";
    std::string_view key = trim(item.substr(0, colon)), value = trim(item.substr(colon + 1));
    int slot = key == "age" ? 0 : key == "msgs" ? 1 : key == "bytes" ? 2 : key == "per_subject" ? 3 : -1;
    if (slot < 0)
      return where + "unknown key '" + std::string(key) +
             "' (use age, msgs, bytes, per_subject)";
    if (seen[slot]) return where + quote(key) + " given twice";
    seen[slot] = true;
    std::string err;
    switch (slot) {
      case 0: err = parse_duration_ms(value, out.max_age_ms); break;
      case 1: err = parse_count(value, out.max_msgs); break;
      case 2: err = parse_byte_size(value, out.max_bytes); break;
      default: err = parse_count(value, out.max_msgs_per_subject); break;
    }
    if (!err.empty()) return where + std::string(key) + ": " + err;
    int64_t limit = slot == 1 ? out.max_msgs : slot == 2 ? out.max_bytes : out.max_msgs_per_subject;
    if (slot != 0 && limit == 0)
      return where + std::string(key) + ": must be at least 1 (or unlimited)";
  }
  return {};
}

std::string parse_nats_credentials(std::string_view content, std::string& token, std::string& user,
                                   std::string& password) {
  if (content.starts_with("-----BEGIN NATS USER JWT-----"))
    return "NATS .creds files (JWT and NKey) are not supported; use a token or user:password";
  std::string_view line = trim(content);
  if (line.find('\n') != std::string_view::npos)
    return "expected one line: user:password, or a token";
  if (line.empty()) return "the file is empty";
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    token = std::string(line);
    return {};
  }
  user = std::string(line.substr(0, colon));
  password = std::string(line.substr(colon + 1));
  if (user.empty() || password.empty()) return "expected user:password with both parts non-empty";
  return {};
}

}  // namespace rc::server
