// JSON reading: a thin, allocation-free view over simdjson's DOM (simdjson 3.0.1).
//
// simdjson is heavy to compile, so only .cc files include it; this header offers a small API of
// its own: a per-thread `parser` that owns simdjson's reusable buffers, and `value`, a cheap
// copyable handle (16 bytes) to one node of the most recently parsed document.
//
// Buffer contract: simdjson reads (never writes) up to padding_bytes past the end of its
// input. parse(data, size, capacity) parses in place when capacity - size >= padding_bytes,
// i.e. when the caller's buffer already has that much readable slack (the server sizes its
// receive buffers for this); otherwise it copies the input into a reusable padded buffer
// owned by the parser. padding_bytes equals SIMDJSON_PADDING (a static_assert checks it).
//
// Semantics:
// * the whole document is validated (structure, UTF-8, numbers) before anything is returned;
// * integers that fit int64 read as kind::int64, larger ones up to 2^64-1 as kind::uint64;
//   integers beyond that and numbers beyond the range of a double are rejected as invalid
//   numbers (simdjson does so), as are lone surrogate escapes;
// * duplicate keys are kept in document order; object_range visits each of them and
//   value::find returns the last one ("last wins", like JavaScript and Python's json module);
// * limits: documents larger than parse_limits::document_bytes_max and nesting deeper than
//   depth_max are errors. Depth counts levels of values as simdjson does: a scalar or an empty
//   container at the root is depth 1, `[1]` and `[[]]` are depth 2, `{"a":[1]}` is depth 3.
//
// Lifetime: every value and string_view obtained from a parse stays valid until the next
// parse() on the same parser or its destruction.
//
// Thread-safety: a parser and its values belong to one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/byte_buffer.h"

namespace rc::json {

// Readable slack simdjson needs after the last input byte. Equal to SIMDJSON_PADDING.
inline constexpr size_t padding_bytes = 64;

struct parse_limits {
  size_t document_bytes_max = 4u << 20;
  uint32_t depth_max = 128;
  // After a document larger than this, the parser gives the extra memory back at its next
  // (smaller) parse, so one big upload does not pin memory in every thread forever.
  size_t retained_bytes_max = 1u << 20;
};

enum class parse_status : uint8_t {
  ok,
  empty,           // no JSON value in the input (only whitespace, or nothing)
  too_large,       // more than document_bytes_max bytes
  too_deep,        // nesting beyond depth_max
  invalid_utf8,    // the input is not valid UTF-8
  invalid_number,  // malformed, or out of range (see above)
  invalid_string,  // bad escape, unescaped control character, lone surrogate
  invalid_json,    // any other syntax error
  out_of_memory,
};

enum class kind : uint8_t { null, boolean, int64, uint64, number, string, array, object };

class value;
struct member;

class array_iterator {
 public:
  value operator*() const;
  array_iterator& operator++();
  bool operator==(const array_iterator& o) const;

 private:
  friend struct access;
  alignas(8) unsigned char storage_[16] = {};
};

class object_iterator {
 public:
  member operator*() const;
  object_iterator& operator++();
  bool operator==(const object_iterator& o) const;

 private:
  friend struct access;
  alignas(8) unsigned char storage_[16] = {};
};

template <class Iterator>
struct range {
  Iterator first, last;
  Iterator begin() const { return first; }
  Iterator end() const { return last; }
};

// One node of a parsed document. A default-constructed value refers to nothing
// (`!value`); every other operation REQUIRES a valid value, and the typed accessors REQUIRE
// the matching kind (checked with RC_ASSERT).
class value {
 public:
  value() = default;
  explicit operator bool() const { return valid_; }

  json::kind kind() const;
  bool is_null() const { return kind() == json::kind::null; }
  bool is_string() const { return kind() == json::kind::string; }
  bool is_object() const { return kind() == json::kind::object; }
  bool is_array() const { return kind() == json::kind::array; }
  bool is_number() const;  // int64, uint64 or number

  bool get_bool() const;
  int64_t get_int64() const;
  uint64_t get_uint64() const;
  // Any numeric kind, converted to double.
  double get_double() const;
  std::string_view get_string() const;

  // Arrays and objects: elements / members in document order.
  range<array_iterator> elements() const;
  range<object_iterator> members() const;
  // Number of elements or members (counts them; O(n)).
  size_t size() const;
  // Objects: the value of the last member named `key`, or an invalid value.
  value find(std::string_view key) const;

  // Appends the value re-encoded as compact JSON (no whitespace; strings re-escaped, numbers
  // in json::writer's format). Valid JSON, valid UTF-8, no raw CR/LF.
  void write_to(byte_buffer& out) const;
  std::string to_json() const;

 private:
  friend struct access;
  alignas(8) unsigned char storage_[16] = {};
  bool valid_ = false;
};

struct member {
  std::string_view key;
  json::value value;
};

struct parse_result {
  parse_status status = parse_status::ok;
  // Why parsing failed, in simdjson's words; empty on success. Static storage.
  std::string_view message;
  json::value root;

  bool ok() const { return status == parse_status::ok; }
};

class parser {
 public:
  explicit parser(parse_limits limits = {});
  ~parser();
  parser(const parser&) = delete;
  parser& operator=(const parser&) = delete;

  // Parses [data, data+size). REQUIRES: capacity >= size and the bytes up to data+capacity are
  // readable. Parses in place if capacity - size >= padding_bytes, else copies first.
  parse_result parse(const char* data, size_t size, size_t capacity);
  // Always copies (the slack after `s` is unknown).
  parse_result parse(std::string_view s) { return parse(s.data(), s.size(), s.size()); }

  const parse_limits& limits() const { return limits_; }
  // Bytes parsed in place / copied so far (for tests and metrics).
  uint64_t parsed_in_place() const { return in_place_; }
  uint64_t parsed_copied() const { return copied_; }

 private:
  struct impl;
  parse_limits limits_;
  std::unique_ptr<impl> impl_;
  uint64_t in_place_ = 0;
  uint64_t copied_ = 0;
};

std::string_view to_string(parse_status s);

}  // namespace rc::json
