// Private helpers of the chat <-> Responses request translation (openai_translate*.cc).
#pragma once

#include <string>
#include <string_view>

#include "base/byte_buffer.h"
#include "proto/json_reader.h"
#include "proto/json_writer.h"

namespace rc::openai::translate {

// The member `key` of object `v` if it is a string, else "".
inline std::string_view string_member(const json::value& v, std::string_view key) {
  if (!v || !v.is_object()) return {};
  json::value m = v.find(key);
  return m && m.is_string() ? m.get_string() : std::string_view();
}

// The member `key` of object `v` if present and not null, else an invalid value.
inline json::value present(const json::value& v, std::string_view key) {
  if (!v || !v.is_object()) return {};
  json::value m = v.find(key);
  return m && !m.is_null() ? m : json::value();
}

// Writes `v` re-encoded as the value of member `key`.
inline void copy_member(json::writer& w, std::string_view key, const json::value& v) {
  byte_buffer b;
  v.write_to(b);
  w.raw_member(key, b.view());
}

// Copies member `key` of `from` to `w` under `as` when it is present and not null.
inline void copy_if_present(json::writer& w, const json::value& from, std::string_view key,
                            std::string_view as) {
  if (json::value v = present(from, key)) copy_member(w, as, v);
}

// The text of a content value: a string, or the concatenated text of an array's text parts
// (`text`, `input_text`, `output_text`; `refusal` parts contribute their refusal).
inline std::string content_text(const json::value& content) {
  if (!content) return {};
  if (content.is_string()) return std::string(content.get_string());
  std::string out;
  if (!content.is_array()) return out;
  for (json::value part : content.elements()) {
    if (part.is_string()) {
      out += part.get_string();
      continue;
    }
    std::string_view type = string_member(part, "type");
    if (type == "refusal") {
      out += string_member(part, "refusal");
    } else if (type == "text" || type == "input_text" || type == "output_text") {
      out += string_member(part, "text");
    }
  }
  return out;
}

}  // namespace rc::openai::translate
