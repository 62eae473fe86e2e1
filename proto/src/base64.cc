#include "proto/base64.h"

#include <array>
#include <cstdint>

namespace rc::base64 {
namespace {

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr auto decode_table = base64::make_decode_table(alphabet);

}  // namespace

void encode(const void* in, size_t n, char* out) {
  const auto* p = static_cast<const unsigned char*>(in);
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    *out++ = alphabet[v >> 18];
    *out++ = alphabet[(v >> 12) & 63];
    *out++ = alphabet[(v >> 6) & 63];
    *out++ = alphabet[v & 63];
  }
  if (size_t rest = n - i; rest > 0) {
    uint32_t v = uint32_t{p[i]} << 16;
    if (rest == 2) v |= uint32_t{p[i + 1]} << 8;
    *out++ = alphabet[v >> 18];
    *out++ = alphabet[(v >> 12) & 63];
    *out++ = rest == 2 ? alphabet[(v >> 6) & 63] : '=';
    *out++ = '=';
  }
}

void encode(std::string_view in, byte_buffer& out) {
  size_t n = encoded_size(in.size());
  encode(in.data(), in.size(), out.prepare(n));
  out.commit(n);
}

bool decode(std::string_view in, byte_buffer& out) {
  if (in.size() % 4 != 0) return false;
  for (size_t i = 0; i < in.size(); i += 4) {
    bool last = i + 4 == in.size();
    int8_t a = decode_table[static_cast<unsigned char>(in[i])];
    int8_t b = decode_table[static_cast<unsigned char>(in[i + 1])];
    if (a < 0 || b < 0) return false;
    char c3 = in[i + 2], c4 = in[i + 3];
    if (last && c4 == '=') {
      uint32_t v = (uint32_t(a) << 18) | (uint32_t(b) << 12);
      if (c3 == '=') {
        if (v & 0xffff) return false;  // non-zero padding bits: not canonical
        out.push_back(static_cast<char>(v >> 16));
        return true;
      }
      int8_t c = decode_table[static_cast<unsigned char>(c3)];
      if (c < 0) return false;
      v |= uint32_t(c) << 6;
      if (v & 0xff) return false;
      out.push_back(static_cast<char>(v >> 16));
      out.push_back(static_cast<char>(v >> 8));
      return true;
    }
    int8_t c = decode_table[static_cast<unsigned char>(c3)];
    int8_t d = decode_table[static_cast<unsigned char>(c4)];
    if (c < 0 || d < 0) return false;
    uint32_t v = (uint32_t(a) << 18) | (uint32_t(b) << 12) | (uint32_t(c) << 6) | uint32_t(d);
    char* w = out.prepare(3);
    w[0] = static_cast<char>(v >> 16);
    w[1] = static_cast<char>(v >> 8);
    w[2] = static_cast<char>(v);
    out.commit(3);
  }
  return true;
}

}  // namespace rc::base64
