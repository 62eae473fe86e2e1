#include "server/resolver_files.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace rc {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

// The whitespace-separated words of `line`, up to the first comment character.
std::vector<std::string_view> words(std::string_view line, std::string_view comment_chars) {
  if (size_t c = line.find_first_of(comment_chars); c != std::string_view::npos)
    line = line.substr(0, c);
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    size_t start = i;
    while (i < line.size() && !is_space(line[i])) ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

template <class Fn>
void for_each_line(std::string_view text, Fn&& fn) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    fn(text.substr(start, end - start));
    start = end + 1;
  }
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// "name:value" options with a number, clamped to [lo, hi].
bool number_option(std::string_view opt, std::string_view name, uint32_t lo, uint32_t hi,
                   uint32_t& out) {
  if (opt.size() <= name.size() || opt.substr(0, name.size()) != name) return false;
  std::string_view digits = opt.substr(name.size());
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec == std::errc::result_out_of_range)
    v = hi;
  else if (ec != std::errc() || end != digits.data() + digits.size())
    return true;  // ignored
  out = std::clamp(v, lo, hi);
  return true;
}

void parse_options(const std::vector<std::string_view>& w, resolv_conf& c) {
  for (size_t i = 1; i < w.size(); ++i) {
    std::string_view o = w[i];
    if (number_option(o, "ndots:", 0, 15, c.ndots) ||
        number_option(o, "timeout:", 1, 30, c.timeout_s) ||
        number_option(o, "attempts:", 1, 5, c.attempts))
      continue;
    if (o == "rotate") c.rotate = true;
    if (o == "edns0") c.edns0 = true;
  }
}

std::string domain_name(std::string_view d) {
  if (!d.empty() && d.back() == '.') d.remove_suffix(1);
  return lowercase(d);
}

}  // namespace

resolv_conf parse_resolv_conf(std::string_view text) {
  resolv_conf c;
  for_each_line(text, [&](std::string_view line) {
    std::vector<std::string_view> w = words(line, "#;");
    if (w.size() < 2) return;
    if (w[0] == "nameserver") {
      dns::address a;
      if (c.nameservers.size() < resolv_conf::nameservers_max && parse_ip_literal(w[1], a))
        c.nameservers.push_back(a);
    } else if (w[0] == "search" || w[0] == "domain") {
      c.search.clear();
      for (size_t i = 1; i < w.size() && c.search.size() < resolv_conf::search_max; ++i)
        if (std::string d = domain_name(w[i]); !d.empty()) c.search.push_back(std::move(d));
      if (w[0] == "domain") c.search.resize(std::min<size_t>(c.search.size(), 1));
    } else if (w[0] == "options") {
      parse_options(w, c);
    }
  });
  if (c.nameservers.empty()) {
    dns::address local;
    parse_ip_literal("127.0.0.1", local);
    c.nameservers.push_back(local);
  }
  return c;
}

hosts_table parse_hosts(std::string_view text) {
  hosts_table t;
  for_each_line(text, [&](std::string_view line) {
    std::vector<std::string_view> w = words(line, "#");
    dns::address a;
    if (w.size() < 2 || !parse_ip_literal(w[0], a) || w[0].front() == '[') return;
    for (size_t i = 1; i < w.size(); ++i) {
      std::vector<dns::address>& list = t[domain_name(w[i])];
      if (std::find(list.begin(), list.end(), a) == list.end()) list.push_back(a);
    }
  });
  return t;
}

bool parse_ip_literal(std::string_view text, dns::address& out) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
    if (text.find(':') == std::string_view::npos) return false;
  }
  char buf[INET6_ADDRSTRLEN];
  if (text.empty() || text.size() >= sizeof buf) return false;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  out = dns::address{};
  if (inet_pton(AF_INET, buf, out.bytes.data()) == 1) return true;
  out.v6 = true;
  return inet_pton(AF_INET6, buf, out.bytes.data()) == 1;
}

sockaddr_storage to_sockaddr(const dns::address& a, uint16_t port, socklen_t* len) {
  sockaddr_storage ss{};
  if (a.v6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    std::memcpy(&s6->sin6_addr, a.bytes.data(), 16);
    if (len) *len = sizeof(sockaddr_in6);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    std::memcpy(&s4->sin_addr, a.bytes.data(), 4);
    if (len) *len = sizeof(sockaddr_in);
  }
  return ss;
}

std::string to_string(const dns::address& a, uint16_t port) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(a.v6 ? AF_INET6 : AF_INET, a.bytes.data(), buf, sizeof buf);
  std::string s;
  if (a.v6) s.push_back('[');
  s.append(buf);
  if (a.v6) s.push_back(']');
  s.push_back(':');
  s.append(std::to_string(port));
  return s;
}

}  // namespace rc
