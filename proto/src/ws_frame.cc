#include <cstring>

#include "base/assert.h"
#include "proto/utf8.h"
#include "proto/ws.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace rc::ws {
namespace {

bool is_control(opcode op) {
  return (static_cast<uint8_t>(op) & 0x8) != 0;
}

// The key rotated so that byte 0 applies to payload offset `offset`, as a 32-bit word.
uint32_t rotated_key(mask_key key, uint64_t offset) {
  uint8_t k[4];
  for (size_t i = 0; i < 4; ++i) k[i] = key[(offset + i) & 3];
  uint32_t w;
  std::memcpy(&w, k, 4);
  return w;
}

// XOR of n bytes from src into dst with a key word; dst may equal src. Blocks are multiples of
// four bytes, so the key word never needs rotating between them.
void mask_words(char* dst, const char* src, size_t n, uint32_t key) {
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i k128 = _mm_set1_epi32(static_cast<int>(key));
  for (; i + 16 <= n; i += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm_xor_si128(v, k128));
  }
#endif
  const uint64_t k64 = (uint64_t{key} << 32) | key;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    std::memcpy(&v, src + i, 8);
    v ^= k64;
    std::memcpy(dst + i, &v, 8);
  }
  uint8_t k[4];
  std::memcpy(k, &key, 4);
  for (; i < n; ++i) dst[i] = static_cast<char>(src[i] ^ k[i & 3]);
}

void write_control(byte_buffer& out, opcode op, std::string_view payload,
                   std::optional<mask_key> mask) {
  RC_ASSERT(payload.size() <= control_payload_bytes_max);
  write_frame(out, op, payload, fin::yes, mask);
}

}  // namespace

bool valid_close_code(uint16_t code) {
  if (code >= 3000 && code <= 4999) return true;
  return code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006;
}

void apply_mask(char* p, size_t n, mask_key key, uint64_t offset) {
  mask_words(p, p, n, rotated_key(key, offset));
}

void copy_masked(char* dst, const char* src, size_t n, mask_key key) {
  mask_words(dst, src, n, rotated_key(key, 0));
}

size_t encode_frame_header(char* dst, opcode op, uint64_t payload_bytes, fin f,
                           std::optional<mask_key> mask) {
  RC_ASSERT(!is_control(op) || (f == fin::yes && payload_bytes <= control_payload_bytes_max));
  RC_ASSERT(payload_bytes < (uint64_t{1} << 63));
  auto* d = reinterpret_cast<uint8_t*>(dst);
  d[0] = static_cast<uint8_t>((f == fin::yes ? 0x80 : 0) | static_cast<uint8_t>(op));
  uint8_t mask_bit = mask ? 0x80 : 0;
  size_t n;
  if (payload_bytes < 126) {
    d[1] = static_cast<uint8_t>(mask_bit | payload_bytes);
    n = 2;
  } else if (payload_bytes <= 0xffff) {
    d[1] = mask_bit | 126;
    d[2] = static_cast<uint8_t>(payload_bytes >> 8);
    d[3] = static_cast<uint8_t>(payload_bytes);
    n = 4;
  } else {
    d[1] = mask_bit | 127;
    for (int i = 0; i < 8; ++i) d[2 + i] = static_cast<uint8_t>(payload_bytes >> (56 - 8 * i));
    n = 10;
  }
  if (mask) {
    std::memcpy(d + n, mask->data(), 4);
    n += 4;
  }
  return n;
}

void write_frame_header(byte_buffer& out, opcode op, uint64_t payload_bytes, fin f,
                        std::optional<mask_key> mask) {
  size_t n = encode_frame_header(out.prepare(frame_header_bytes_max), op, payload_bytes, f, mask);
  out.commit(n);
}

void write_frame(byte_buffer& out, opcode op, std::string_view payload, fin f,
                 std::optional<mask_key> mask) {
  char* dst = out.prepare(frame_header_bytes_max + payload.size());
  size_t n = encode_frame_header(dst, op, payload.size(), f, mask);
  if (mask) {
    copy_masked(dst + n, payload.data(), payload.size(), *mask);
  } else if (!payload.empty()) {
    std::memcpy(dst + n, payload.data(), payload.size());
  }
  out.commit(n + payload.size());
}

void write_close(byte_buffer& out, uint16_t code, std::string_view reason,
                 std::optional<mask_key> mask) {
  if (code == 0) {
    RC_ASSERT(reason.empty());
    write_frame(out, opcode::close, {}, fin::yes, mask);
    return;
  }
  RC_ASSERT(valid_close_code(code));
  RC_ASSERT(reason.size() <= close_reason_bytes_max);
  RC_ASSERT(utf8::valid(reason));
  char payload[control_payload_bytes_max];
  payload[0] = static_cast<char>(code >> 8);
  payload[1] = static_cast<char>(code);
  if (!reason.empty()) std::memcpy(payload + 2, reason.data(), reason.size());
  write_frame(out, opcode::close, {payload, reason.size() + 2}, fin::yes, mask);
}

void write_ping(byte_buffer& out, std::string_view payload, std::optional<mask_key> mask) {
  write_control(out, opcode::ping, payload, mask);
}

void write_pong(byte_buffer& out, std::string_view payload, std::optional<mask_key> mask) {
  write_control(out, opcode::pong, payload, mask);
}

parse_status parse_frame_header(const char* p, size_t n, frame_header& h) {
  if (n < 2) return parse_status::incomplete;
  const auto* d = reinterpret_cast<const uint8_t*>(p);
  bool masked = (d[1] & 0x80) != 0;
  uint8_t len7 = d[1] & 0x7f;
  size_t length_bytes = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
  size_t need = 2 + length_bytes + (masked ? 4 : 0);
  if (n < need) return parse_status::incomplete;
  uint64_t len = len7;
  if (length_bytes > 0) {
    len = 0;
    for (size_t i = 0; i < length_bytes; ++i) len = (len << 8) | d[2 + i];
    // §5.2: "the minimal number of bytes MUST be used to encode the length", and the most
    // significant bit of a 64-bit length MUST be 0.
    if (length_bytes == 2 && len < 126) return parse_status::error;
    if (length_bytes == 8 && (len <= 0xffff || (len >> 63) != 0)) return parse_status::error;
  }
  h.fin = (d[0] & 0x80) != 0;
  h.rsv = (d[0] >> 4) & 7;
  h.opcode = d[0] & 0x0f;
  h.masked = masked;
  h.payload_bytes = len;
  h.mask = {};
  if (masked) std::memcpy(h.mask.data(), d + 2 + length_bytes, 4);
  h.header_bytes = static_cast<uint8_t>(need);
  return parse_status::complete;
}

}  // namespace rc::ws
