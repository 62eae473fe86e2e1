// JSON splicing: removing a member (see json_splice.h).
#include "proto/json_splice.h"

namespace rc::json {

bool remove_member(std::string_view text, std::string_view key, std::string_view value,
                   byte_buffer& out) {
  std::vector<member_span> members;
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
