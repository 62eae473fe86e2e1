// record_codec: the byte writer and bounded reader of ringcast's binary records (the responses
// record, responses_record.h; the node-routing messages, node_wire.h): varints, zigzag integers,
// doubles bit for bit, length-prefixed strings, optional values, enums checked against their
// last value, counts checked against the bytes left. The reader's first failure sticks.
//
// Thread-safety: values used by one thread.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "server/responses_record.h"

namespace rc::server::record_codec {

struct writer {
  std::string& out;

  void u8(uint8_t v) { out.push_back(static_cast<char>(v)); }
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<char>(v));
  }
  void i64(int64_t v) {
    varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));  // zigzag
  }
  void f64(double v) {
    uint64_t bits = std::bit_cast<uint64_t>(v);
    for (int i = 0; i < 8; ++i) u8(static_cast<uint8_t>(bits >> (8 * i)));
  }
  void boolean(bool v) { u8(v ? 1 : 0); }
  void str(std::string_view s) {
    varint(s.size());
    out.append(s);
  }
  template <class T>
  void opt(const std::optional<T>& v, void (writer::*put)(T)) {
    boolean(v.has_value());
    if (v) (this->*put)(*v);
  }
  template <class E>
  void enumeration(E e) {
    u8(static_cast<uint8_t>(e));
  }
};

// Reads fields in order; the first failure sticks (later reads return zero values).
struct reader {
  std::string_view in;
  size_t pos = 0;
  record_error err = record_error::none;

  bool ok() const { return err == record_error::none; }
  size_t left() const { return in.size() - pos; }
  void fail(record_error e) {
    if (ok()) err = e;
  }
  uint8_t u8() {
    if (!ok()) return 0;
    if (left() < 1) {
      fail(record_error::truncated);
      return 0;
    }
    return static_cast<uint8_t>(in[pos++]);
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = u8();
      if (!ok()) return 0;
      if (shift == 63 && b > 1) break;  // more than 64 bits
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail(record_error::bad_value);
    return 0;
  }
  int64_t i64() {
    uint64_t z = varint();
    return static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1));
  }
  double f64() {
    if (left() < 8) {
      fail(record_error::truncated);
      return 0;
    }
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits |= static_cast<uint64_t>(u8()) << (8 * i);
    return std::bit_cast<double>(bits);
  }
  bool boolean() {
    uint8_t b = u8();
    if (b > 1) fail(record_error::bad_value);
    return b == 1;
  }
  std::string str() {
    uint64_t n = varint();
    if (!ok()) return {};
    if (n > left()) {
      fail(record_error::truncated);
      return {};
    }
    std::string s(in.substr(pos, n));
    pos += n;
    return s;
  }
  // A count of elements each at least `min_bytes` long: more than the bytes left could hold is a
  // lie, refused before anything is allocated for it.
  size_t count(size_t min_bytes) {
    uint64_t n = varint();
    if (n > left() / min_bytes) {
      fail(record_error::bad_value);
      return 0;
    }
    return static_cast<size_t>(n);
  }
  template <class E>
  E enumeration(E last) {
    uint8_t v = u8();
    if (v > static_cast<uint8_t>(last)) fail(record_error::bad_value);
    return static_cast<E>(ok() ? v : 0);
  }
  template <class T>
  std::optional<T> opt(T (reader::*get)()) {
    if (!boolean() || !ok()) return std::nullopt;
    return (this->*get)();
  }
};

}  // namespace rc::server::record_codec
