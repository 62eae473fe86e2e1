// Base64 (RFC 4648 §4, standard alphabet, with padding): WebSocket accept keys and
// `encoding_format: "base64"` embeddings.
//
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/byte_buffer.h"

namespace rc::base64 {

// The reverse of a 64-character alphabet: the value of each byte, -1 for bytes outside it.
constexpr std::array<int8_t, 256> make_decode_table(const char (&alphabet)[65]) {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
  return t;
}

// Length of the encoding of n bytes.
constexpr size_t encoded_size(size_t n) { return (n + 2) / 3 * 4; }

// Appends the encoding of `in` to `out`.
void encode(std::string_view in, byte_buffer& out);
// Writes exactly encoded_size(n) bytes to `out`.
void encode(const void* in, size_t n, char* out);

// Appends the decoding of `in` to `out`. Returns false (and leaves `out` with a partial result)
// if `in` is not canonical base64: wrong length, a byte outside the alphabet, misplaced padding
// or non-zero padding bits.
bool decode(std::string_view in, byte_buffer& out);

}  // namespace rc::base64
