// JSON splicing: a token scan of one object level, and text rewriting by member.
#include "proto/json_splice.h"

#include <array>
#include <cstdint>
#include <cstring>

namespace rc::json {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

size_t skip_space(std::string_view s, size_t i) {
  while (i < s.size() && is_space(s[i])) ++i;
  return i;
}

// `i` is at an opening quote; returns the offset just past the closing quote, or npos. Jumps
// from quote to quote (memchr); a quote preceded by an odd run of backslashes is escaped.
size_t skip_string(std::string_view s, size_t i) {
  size_t from = i + 1;
  while (from < s.size()) {
    const void* q = std::memchr(s.data() + from, '"', s.size() - from);
    if (!q) break;
    size_t k = static_cast<size_t>(static_cast<const char*>(q) - s.data());
    size_t backslashes = 0;
    while (k - backslashes > i + 1 && s[k - 1 - backslashes] == '\\') ++backslashes;
    if (backslashes % 2 == 0) return k + 1;
    from = k + 1;
  }
  return std::string_view::npos;
}

// What skip_value stops at inside a container: 1 a quote, 2 an opener, 3 a closer.
constexpr std::array<uint8_t, 256> container_bytes = [] {
  std::array<uint8_t, 256> t{};
  t['"'] = 1;
  t['{'] = t['['] = 2;
  t['}'] = t[']'] = 3;
  return t;
}();

// `i` is at the first byte of a value; returns the offset just past it, or npos. Containers are
// skipped by counting brackets (strings inside them skipped whole), without recursion.
size_t skip_value(std::string_view s, size_t i) {
  if (i >= s.size()) return std::string_view::npos;
  char c = s[i];
  if (c == '"') return skip_string(s, i);
  if (c == '{' || c == '[') {
    size_t depth = 0;
    while (i < s.size()) {
      uint8_t k = container_bytes[static_cast<uint8_t>(s[i])];
      if (k == 0) {
        ++i;
        continue;
      }
      if (k == 1) {
        i = skip_string(s, i);
        if (i == std::string_view::npos) return i;
        continue;
      }
      if (k == 2) ++depth;
      if (k == 3 && --depth == 0) return i + 1;
      ++i;
    }
    return std::string_view::npos;
  }
  // A number or a literal: up to the next delimiter.
  size_t start = i;
  while (i < s.size() && !is_space(s[i]) && s[i] != ',' && s[i] != '}' && s[i] != ']') ++i;
  return i == start ? std::string_view::npos : i;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool key_equals(std::string_view raw, std::string_view name) {
  if (raw.find('\\') == std::string_view::npos) return raw == name;
  size_t n = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '\\') {
      if (++i >= raw.size()) return false;
      switch (raw[i]) {
        case 'n': c = '\n'; break;
        case 't': c = '\t'; break;
        case 'r': c = '\r'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'u': {
          // Only \u00XX (one byte) can match the ASCII names we look for.
          if (i + 4 >= raw.size()) return false;
          int v = 0;
          for (size_t k = 1; k <= 4; ++k) {
            int d = hex_digit(raw[i + k]);
            if (d < 0) return false;
            v = v * 16 + d;
          }
          if (v > 0x7f) return false;
          c = static_cast<char>(v);
          i += 4;
          break;
        }
        default: c = raw[i]; break;  // \" \\ \/
      }
    }
    if (n >= name.size() || name[n] != c) return false;
    ++n;
  }
  return n == name.size();
}

bool scan_object(std::string_view s, std::vector<member_span>& out, size_t& close) {
  out.clear();
  size_t i = skip_space(s, 0);
  if (i >= s.size() || s[i] != '{') return false;
  i = skip_space(s, i + 1);
  if (i < s.size() && s[i] == '}') {
    close = i;
    return skip_space(s, i + 1) == s.size();
  }
  for (;;) {
    if (i >= s.size() || s[i] != '"') return false;
    size_t key_end = skip_string(s, i);
    if (key_end == std::string_view::npos) return false;
    member_span m;
    m.key = s.substr(i + 1, key_end - i - 2);
    i = skip_space(s, key_end);
    if (i >= s.size() || s[i] != ':') return false;
    i = skip_space(s, i + 1);
    m.value_begin = i;
    i = skip_value(s, i);
    if (i == std::string_view::npos) return false;
    m.value_end = i;
    out.push_back(m);
    i = skip_space(s, i);
    if (i >= s.size()) return false;
    if (s[i] == '}') {
      close = i;
      return skip_space(s, i + 1) == s.size();
    }
    if (s[i] != ',') return false;
    i = skip_space(s, i + 1);
  }
}

std::optional<std::string_view> find_member(std::string_view text, std::string_view key) {
  std::vector<member_span> members;
  size_t close = 0;
  if (!scan_object(text, members, close)) return std::nullopt;
  std::optional<std::string_view> found;
  for (const member_span& m : members) {
    if (key_equals(m.key, key)) found = text.substr(m.value_begin, m.value_end - m.value_begin);
  }
  return found;
}

bool rewrite_object(std::string_view text, std::span<const member_edit> edits, byte_buffer& out) {
  std::vector<member_span> members;
  size_t close = 0;
  if (!scan_object(text, members, close)) return false;
  rewrite_scanned(text, members, close, edits, out);
  return true;
}

void rewrite_scanned(std::string_view text, std::span<const member_span> members, size_t close,
                     std::span<const member_edit> edits, byte_buffer& out) {
  // Edits are few (one to three): a bitmask of the ones that matched an existing member.
  uint64_t seen = 0;
  size_t copied = 0;
  for (const member_span& m : members) {
    for (size_t e = 0; e < edits.size() && e < 64; ++e) {
      if (!key_equals(m.key, edits[e].key)) continue;
      out.append(text.substr(copied, m.value_begin - copied));
      out.append(edits[e].value);
      copied = m.value_end;
      seen |= uint64_t{1} << e;
      break;
    }
  }
  out.append(text.substr(copied, close - copied));
  bool any = !members.empty();
  for (size_t e = 0; e < edits.size() && e < 64; ++e) {
    if ((seen >> e) & 1 || !edits[e].append_if_absent) continue;
    if (any) out.push_back(',');
    any = true;
    out.push_back('"');
    out.append(edits[e].key);
    out.append("\":");
    out.append(edits[e].value);
  }
  out.append(text.substr(close));
}

}  // namespace rc::json
