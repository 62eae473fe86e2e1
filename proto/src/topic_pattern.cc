#include "proto/topic_pattern.h"

namespace rc::topic_pattern {
namespace {

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.' || c == ':';
}

// The segment of `s` before the first '.', and `s` advanced past it (empty when it was last).
std::string_view next_segment(std::string_view& s, bool& more) {
  size_t dot = s.find('.');
  std::string_view seg = s.substr(0, dot);
  more = dot != std::string_view::npos;
  s = more ? s.substr(dot + 1) : std::string_view();
  return seg;
}

}  // namespace

std::string_view check(std::string_view pattern) {
  if (pattern.empty()) return "a topic pattern is empty";
  if (pattern.size() > pattern_bytes_max) return "a topic pattern is longer than 128 bytes";
  bool more = true;
  std::string_view rest = pattern;
  while (more) {
    std::string_view seg = next_segment(rest, more);
    if (seg == ">") {
      if (more) return "'>' may only be the last segment of a topic pattern";
      continue;
    }
    if (seg == "*") continue;
    for (char c : seg) {
      if (c == '*' || c == '>') return "'*' and '>' must be whole segments of a topic pattern";
      if (!name_char(c)) return "topic patterns may only contain letters, digits, _ - . : * >";
    }
  }
  return {};
}

bool matches(std::string_view pattern, std::string_view topic) {
  bool pmore = true, tmore = true;
  while (pmore) {
    if (!tmore) return false;  // the pattern has segments left, the topic has none
    std::string_view p = next_segment(pattern, pmore);
    if (p == ">" && !pmore) return true;  // one or more segments: this one and any after it
    std::string_view t = next_segment(topic, tmore);
    if (p != "*" && p != t) return false;
  }
  return !tmore;
}

bool any_matches(const std::vector<std::string>& patterns, std::string_view topic) {
  for (const auto& p : patterns)
    if (matches(p, topic)) return true;
  return false;
}

}  // namespace rc::topic_pattern
