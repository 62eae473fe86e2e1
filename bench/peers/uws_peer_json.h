// uws_peer_json: the little JSON the uWS peer needs: raw spans of values (nothing decoded),
// compaction, and ringcast's topic names. Header-only: bench/peers/uws.py compiles uws_peer.cc
// alone (this file is found next to it).
//
// Thread-safety: pure functions.
#pragma once

#include <cctype>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace uws_peer {

inline size_t skip_space(std::string_view s, size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return i;
}

// The end of the value starting at s[i], or npos if it is not one.
inline size_t skip_value(std::string_view s, size_t i, int depth = 0) {
  if (i >= s.size() || depth > 64) return std::string_view::npos;
  char c = s[i];
  if (c == '"') {
    for (++i; i < s.size(); ++i) {
      if (s[i] == '\\') {
        ++i;
      } else if (s[i] == '"') {
        return i + 1;
      } else if (static_cast<unsigned char>(s[i]) < 0x20) {
        return std::string_view::npos;
      }
    }
    return std::string_view::npos;
  }
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    i = skip_space(s, i + 1);
    if (i < s.size() && s[i] == close) return i + 1;
    for (;;) {
      if (c == '{') {
        if (i >= s.size() || s[i] != '"') return std::string_view::npos;
        i = skip_space(s, skip_value(s, i, depth + 1));
        if (i >= s.size() || s[i] != ':') return std::string_view::npos;
        i = skip_space(s, i + 1);
      }
      i = skip_value(s, i, depth + 1);
      if (i == std::string_view::npos) return i;
      i = skip_space(s, i);
      if (i >= s.size()) return std::string_view::npos;
      if (s[i] == close) return i + 1;
      if (s[i] != ',') return std::string_view::npos;
      i = skip_space(s, i + 1);
    }
  }
  size_t start = i;  // a number or a literal: the run of characters that may make one
  while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '-' ||
                          s[i] == '+' || s[i] == '.'))
    ++i;
  return i == start ? std::string_view::npos : i;
}

// The whole of `s` (surrounding whitespace allowed) as one compact JSON value, or nothing.
inline std::optional<std::string> compact_value(std::string_view s) {
  size_t b = skip_space(s, 0), e = skip_value(s, b);
  if (e == std::string_view::npos || skip_space(s, e) != s.size()) return std::nullopt;
  std::string out;
  out.reserve(e - b);
  bool in_string = false;
  for (size_t i = b; i < e; ++i) {
    char c = s[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\') {
        out.push_back(s[++i]);
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      out.push_back(c);
      in_string = c == '"';
    }
  }
  return out;
}

// The raw value of member `key` of the object `obj` (a raw object span), or nothing.
inline std::optional<std::string_view> member(std::string_view obj, std::string_view key) {
  size_t i = skip_space(obj, 0);
  if (i >= obj.size() || obj[i] != '{') return std::nullopt;
  i = skip_space(obj, i + 1);
  while (i < obj.size() && obj[i] == '"') {
    size_t k_end = skip_value(obj, i);
    if (k_end == std::string_view::npos) return std::nullopt;
    std::string_view k = obj.substr(i + 1, k_end - i - 2);
    i = skip_space(obj, k_end);
    if (i >= obj.size() || obj[i] != ':') return std::nullopt;
    i = skip_space(obj, i + 1);
    size_t v_end = skip_value(obj, i);
    if (v_end == std::string_view::npos) return std::nullopt;
    if (k == key) return obj.substr(i, v_end - i);
    i = skip_space(obj, v_end);
    if (i < obj.size() && obj[i] == ',') i = skip_space(obj, i + 1);
  }
  return std::nullopt;
}

// A topic name as ringcast accepts it: 1 to 128 of A-Z a-z 0-9 _ - . :
inline bool valid_topic(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  for (char c : t)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.' &&
        c != ':')
      return false;
  return true;
}

// The topic name inside a raw JSON string (quotes included), or "" if it is not a valid one.
inline std::string_view topic_of(std::optional<std::string_view> raw) {
  if (!raw || raw->size() < 2 || raw->front() != '"') return {};
  std::string_view t = raw->substr(1, raw->size() - 2);
  return valid_topic(t) ? t : std::string_view();
}

}  // namespace uws_peer
