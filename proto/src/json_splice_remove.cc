// JSON splicing: removing a member (see json_splice.h).
#include "proto/json_splice.h"

namespace rc::json {

namespace {

// The common case on a relay's hot path, without a scan: the member is the object's last one,
// written compactly, `…,"key":value}`, and the key appears nowhere else. In valid JSON that
// suffix can only be a top-level member (a quote inside a string is escaped, and the final brace
// closes the object).
bool remove_last_compact(std::string_view text, std::string_view key, std::string_view value,
                         byte_buffer& out) {
  std::string_view t = text;
  while (!t.empty() && (t.back() == ' ' || t.back() == '\n' || t.back() == '\r' || t.back() == '\t')) {
    t.remove_suffix(1);
  }
  size_t tail = 1 + 1 + key.size() + 1 + 1 + value.size() + 1;  // ,"key":value}
  if (t.size() < tail + 1 || t.back() != '}') return false;
  std::string_view s = t.substr(t.size() - tail);
  if (s[0] != ',' || s[1] != '"' || s.substr(2, key.size()) != key || s[2 + key.size()] != '"' ||
      s[3 + key.size()] != ':' || s.substr(4 + key.size(), value.size()) != value) {
    return false;
  }
  // Another "key" before it (a duplicate, or the same text nested): the full scan decides.
  if (t.substr(0, t.size() - tail + 1).find(s.substr(1, key.size() + 2)) != std::string_view::npos) {
    return false;
  }
  out.append(text.substr(0, t.size() - tail));
  out.append(text.substr(t.size() - 1));
  return true;
}

}  // namespace

bool remove_member(std::string_view text, std::string_view key, std::string_view value,
                   byte_buffer& out) {
  if (key.find('\\') == std::string_view::npos && remove_last_compact(text, key, value, out)) {
    return true;
  }
  thread_local std::vector<member_span> members;  // reused: no allocation per call
  size_t close = 0;
  if (!scan_object(text, members, close)) return false;
  // Each member's text starts at its key's opening quote. A removed member takes a separating
  // comma with it: the one before it when a kept member precedes it, else the one after it.
  auto start_of = [&](size_t i) { return static_cast<size_t>(members[i].key.data() - text.data()) - 1; };
  size_t copied = 0;
  bool kept_before = false;
  for (size_t i = 0; i < members.size(); ++i) {
    const member_span& m = members[i];
    if (!key_equals(m.key, key) || text.substr(m.value_begin, m.value_end - m.value_begin) != value) {
      kept_before = true;
      continue;
    }
    size_t from = kept_before ? members[i - 1].value_end : start_of(i);
    size_t to = kept_before || i + 1 == members.size() ? m.value_end : start_of(i + 1);
    out.append(text.substr(copied, from - copied));
    copied = to;
  }
  out.append(text.substr(copied));
  return true;
}

}  // namespace rc::json
