#include "core/cpu.h"

#include <pthread.h>
#include <sched.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace rc::cpu {

std::vector<int> allowed() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> out;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return out;
  for (int i = 0; i < CPU_SETSIZE; ++i)
    if (CPU_ISSET(i, &set)) out.push_back(i);
  return out;
}

std::optional<std::vector<int>> parse_list(std::string_view text) {
  constexpr int cpu_max = 4096;
  std::vector<int> out;
  auto number = [](std::string_view s, int& v) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && p == s.data() + s.size() && v >= 0 && v < cpu_max;
  };
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (comma != std::string_view::npos && text.empty()) return std::nullopt;  // trailing comma
    size_t dash = item.find('-');
    int lo, hi;
    if (dash == std::string_view::npos) {
      if (!number(item, lo)) return std::nullopt;
      hi = lo;
    } else if (!number(item.substr(0, dash), lo) || !number(item.substr(dash + 1), hi) ||
               hi < lo) {
      return std::nullopt;
    }
    for (int c = lo; c <= hi; ++c) out.push_back(c);
  }
  if (out.empty()) return std::nullopt;
  return out;
}

std::string pin_this_thread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  if (rc != 0) return std::string("cannot pin to CPU ") + std::to_string(cpu) + ": " + strerror(rc);
  return {};
}

}  // namespace rc::cpu
