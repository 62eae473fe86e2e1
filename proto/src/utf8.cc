#include "proto/utf8.h"

#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace rc::utf8 {
namespace {

constexpr uint64_t high_bits = 0x8080808080808080ull;

// Length of the run of ASCII bytes at the start of [p, p + n). Text on the wire (JSON, chat
// deltas) is mostly ASCII, so this is where validation spends its time: 64 bytes per step
// with SSE2 while no byte has its high bit set, then 16, then 8 with plain 64-bit words.
size_t ascii_prefix(const unsigned char* p, size_t n) {
  size_t i = 0;
#if defined(__SSE2__)
  for (; i + 64 <= n; i += 64) {
    __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 16));
    __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 32));
    __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 48));
    __m128i any = _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d));
    if (_mm_movemask_epi8(any) != 0) break;
  }
  for (; i + 16 <= n; i += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    if (int m = _mm_movemask_epi8(v); m != 0) return i + static_cast<size_t>(__builtin_ctz(m));
  }
#endif
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    // Little-endian: the lowest set high bit belongs to the first non-ASCII byte.
    if (uint64_t m = v & high_bits; m != 0) return i + static_cast<size_t>(__builtin_ctzll(m)) / 8;
  }
  while (i < n && p[i] < 0x80) ++i;
  return i;
}

bool continuation(unsigned char c) {
  return (c & 0xc0) == 0x80;
}

// Validates the multi-byte sequence starting at p[0] (a byte >= 0x80) and returns its length,
// or 0 if it is malformed or does not fit in the n bytes available. The second byte's range
// depends on the lead byte (Unicode Table 3-7); that is where overlongs (E0 80..9F,
// F0 80..8F), surrogates (ED A0..BF) and code points above U+10FFFF (F4 90..BF) are rejected.
size_t sequence_length(const unsigned char* p, size_t n) {
  unsigned lead = p[0];
  if (lead < 0xc2) return 0;  // a continuation byte, or C0/C1 (overlong two-byte forms)
  if (lead < 0xe0) return n >= 2 && continuation(p[1]) ? 2 : 0;
  if (lead < 0xf0) {
    if (n < 3) return 0;
    unsigned lo = lead == 0xe0 ? 0xa0 : 0x80;
    unsigned hi = lead == 0xed ? 0x9f : 0xbf;
    return p[1] >= lo && p[1] <= hi && continuation(p[2]) ? 3 : 0;
  }
  if (lead < 0xf5) {
    if (n < 4) return 0;
    unsigned lo = lead == 0xf0 ? 0x90 : 0x80;
    unsigned hi = lead == 0xf4 ? 0x8f : 0xbf;
    return p[1] >= lo && p[1] <= hi && continuation(p[2]) && continuation(p[3]) ? 4 : 0;
  }
  return 0;  // F5..FF never appear in UTF-8
}

}  // namespace

bool valid(const char* data, size_t n) {
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  size_t i = 0;
  while (i < n) {
    i += ascii_prefix(p + i, n - i);
    // Stay on the scalar path while the text stays non-ASCII (CJK, emoji), so the block
    // scan is not restarted for every character.
    while (i < n && p[i] >= 0x80) {
      size_t len = sequence_length(p + i, n - i);
      if (len == 0) return false;
      i += len;
    }
  }
  return true;
}

}  // namespace rc::utf8
