// JSON writer: appends RFC 8259 JSON text to a byte_buffer.
//
// This is on the per-token streaming path, so it does no allocation of its own and no virtual
// calls: values are appended straight into the caller's buffer. Commas and colons are automatic;
// a small fixed-depth state stack tracks whether the current container is an object or an
// array and whether a key or a value comes next. Misuse (a value where a key belongs, a key in
// an array, unbalanced end_*, nesting deeper than writer_depth_max) is a programmer error and
// stops the process via RC_ASSERT.
//
// Output guarantees, relied upon by the SSE and WebSocket framers:
// * it is always valid JSON and valid UTF-8: bytes of the input strings that are not valid UTF-8
//   are replaced by U+FFFD (one per maximal invalid subpart, as Unicode §3.9 recommends);
// * it never contains a raw CR or LF byte (control bytes are escaped), so one encoded value fits
//   on a single SSE `data:` line;
// * numbers: integers exactly; doubles in the shortest form that round-trips (std::to_chars),
//   with ".0" added to integral values so they read back as decimals; NaN and ±Inf (which JSON
//   cannot express) are written as null.
//
// raw() inserts pre-encoded JSON as one value; the caller vouches that it is valid (e.g. it was
// produced by this writer or by json::value::write_to).
//
// Thread-safety: none; a writer and its buffer belong to one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/assert.h"
#include "base/byte_buffer.h"

namespace rc::json {

// Deepest nesting of objects/arrays one writer tracks. Our encoders nest at most ~8 levels;
// re-encoded client JSON (tool parameter schemas) is embedded with raw(), not nested here.
inline constexpr int writer_depth_max = 32;

// Appends `s` as a quoted JSON string (escaping as described above).
void write_string(byte_buffer& out, std::string_view s);
// Appends `s` escaped, without the surrounding quotes.
void write_escaped(byte_buffer& out, std::string_view s);
// Appends a number. write_double's format is the one described in the header comment;
// write_float uses the shortest form that round-trips through a 32-bit float.
void write_int64(byte_buffer& out, int64_t v);
void write_uint64(byte_buffer& out, uint64_t v);
void write_double(byte_buffer& out, double v);
void write_float(byte_buffer& out, float v);

// Bytes needed in the worst case to write any one number (sign, digits, exponent, ".0").
inline constexpr size_t number_chars_max = 32;
// Formats like write_double into `buf` (at least number_chars_max bytes); returns the length.
// NaN/Inf format as "null".
size_t format_double(double v, char* buf);
size_t format_float(float v, char* buf);

class writer {
 public:
  explicit writer(byte_buffer& out) : out_(out) {}
  writer(const writer&) = delete;
  writer& operator=(const writer&) = delete;

  void begin_object() {
    before_value();
    push(container::object);
    out_.push_back('{');
  }
  void end_object() {
    RC_ASSERT(depth_ > 0 && kind_[depth_ - 1] == container::object &&
              state_[depth_ - 1] != slot::value_after_key);
    --depth_;
    out_.push_back('}');
  }
  void begin_array() {
    before_value();
    push(container::array);
    out_.push_back('[');
  }
  void end_array() {
    RC_ASSERT(depth_ > 0 && kind_[depth_ - 1] == container::array);
    --depth_;
    out_.push_back(']');
  }

  // The next call must write the member's value.
  void key(std::string_view k) {
    RC_ASSERT(depth_ > 0 && kind_[depth_ - 1] == container::object &&
              state_[depth_ - 1] != slot::value_after_key);
    if (state_[depth_ - 1] == slot::next) out_.push_back(',');
    state_[depth_ - 1] = slot::value_after_key;
    write_string(out_, k);
    out_.push_back(':');
  }

  void string(std::string_view s) {
    before_value();
    write_string(out_, s);
  }
  void int64(int64_t v) {
    before_value();
    write_int64(out_, v);
  }
  void uint64(uint64_t v) {
    before_value();
    write_uint64(out_, v);
  }
  void float64(double v) {
    before_value();
    write_double(out_, v);
  }
  void float32(float v) {
    before_value();
    write_float(out_, v);
  }
  void boolean(bool v) {
    before_value();
    out_.append(v ? std::string_view("true") : std::string_view("false"));
  }
  void null() {
    before_value();
    out_.append("null");
  }
  // Pre-encoded JSON text, written as one value. REQUIRES: `json` is one valid JSON value.
  void raw(std::string_view json) {
    RC_ASSERT(!json.empty());
    before_value();
    out_.append(json);
  }

  // key() followed by a value, for the common case.
  void string_member(std::string_view k, std::string_view v) {
    key(k);
    string(v);
  }
  void int64_member(std::string_view k, int64_t v) {
    key(k);
    int64(v);
  }
  void uint64_member(std::string_view k, uint64_t v) {
    key(k);
    uint64(v);
  }
  void float64_member(std::string_view k, double v) {
    key(k);
    float64(v);
  }
  void boolean_member(std::string_view k, bool v) {
    key(k);
    boolean(v);
  }
  void null_member(std::string_view k) {
    key(k);
    null();
  }
  void raw_member(std::string_view k, std::string_view json) {
    key(k);
    raw(json);
  }

  // True once exactly one top-level value has been written and every container closed.
  bool complete() const { return depth_ == 0 && top_written_; }
  int depth() const { return depth_; }
  byte_buffer& buffer() { return out_; }

 private:
  enum class container : uint8_t { object, array };
  // Where the innermost container stands: nothing written yet, at least one element written
  // (a comma comes next), or (objects only) a key written whose value comes next.
  enum class slot : uint8_t { first, next, value_after_key };

  void before_value() {
    if (depth_ == 0) {
      RC_ASSERT(!top_written_);
      top_written_ = true;
      return;
    }
    slot& s = state_[depth_ - 1];
    if (kind_[depth_ - 1] == container::object) {
      RC_ASSERT(s == slot::value_after_key);
    } else if (s == slot::next) {
      out_.push_back(',');
    }
    s = slot::next;
  }
  void push(container c) {
    RC_ASSERT(depth_ < writer_depth_max);
    kind_[depth_] = c;
    state_[depth_] = slot::first;
    ++depth_;
  }

  byte_buffer& out_;
  int depth_ = 0;
  bool top_written_ = false;
  container kind_[writer_depth_max];
  slot state_[writer_depth_max];
};

}  // namespace rc::json
