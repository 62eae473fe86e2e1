// JSON splicing: edit members of a JSON object's text without re-serializing the rest.
//
// A gateway must forward the client's body byte for byte except for what it has to change (the
// `model`, a flag it needs). Re-encoding through a DOM would reorder nothing but still change
// number spellings, escapes and whitespace, and costs a full encode per request and per chunk.
// Instead scan_object() finds the members of one object level by a token scan (strings with
// their escapes, nested containers by depth) and rewrite_object() copies the text, replacing the
// values of the edited members and appending the ones that were absent.
//
// The scanner is not a validator: callers validate the document first (simdjson, json_reader.h)
// and the scan only has to find boundaries. On text that is not an object it returns false; it
// never reads outside `text` and never recurses, whatever the input.
//
// Keys are compared after unescaping the simple escapes and \u00XX, so `"mod\u0065l"` is found
// as `model`; duplicate members are all edited (each parser picks its own duplicate).
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "base/byte_buffer.h"

namespace rc::json {

struct member_span {
  std::string_view key;  // as written between the quotes (escapes not decoded)
  size_t value_begin = 0;
  size_t value_end = 0;  // [value_begin, value_end) is the value's text within the object text
};

// Fills `out` with the members of the object `text` is (surrounding whitespace allowed), in
// order, and sets `close` to the offset of its closing brace. False if the text is not an object
// at the token level (unbalanced, a key that is not a string, trailing bytes, …).
bool scan_object(std::string_view text, std::vector<member_span>& out, size_t& close);

// True if the written key `raw` (escapes undecoded) spells `name`.
bool key_equals(std::string_view raw, std::string_view name);

// The value text of the last member named `key`, or nullopt.
std::optional<std::string_view> find_member(std::string_view object_text, std::string_view key);

struct member_edit {
  std::string_view key;    // plain (unescaped) name; written as is when appended
  std::string_view value;  // JSON text of the new value
  bool append_if_absent = true;
};

// Appends to `out` the object `text` with each edit applied: every member named edit.key gets
// edit.value; an edit whose key is absent is appended as the last member (if append_if_absent).
// False (nothing appended) if `text` is not an object.
bool rewrite_object(std::string_view text, std::span<const member_edit> edits, byte_buffer& out);
// The same for an object already scanned (`members` and `close` from scan_object(text, …)).
void rewrite_scanned(std::string_view text, std::span<const member_span> members, size_t close,
                     std::span<const member_edit> edits, byte_buffer& out);

// Appends to `out` the object `text` without its members named `key` whose value text is exactly
// `value` (e.g. "null"), each with its separating comma; the rest byte for byte. False (nothing
// appended) if `text` is not an object.
bool remove_member(std::string_view text, std::string_view key, std::string_view value,
                   byte_buffer& out);

}  // namespace rc::json
