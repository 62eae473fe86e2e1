#include "proto/utf8.h"

#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__SSSE3__)
#include <tmmintrin.h>
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

#if defined(__SSSE3__)

// Keiser & Lemire, "Validating UTF-8 in less than one instruction per byte" (2021), the lookup
// algorithm simdjson uses. Each byte is classified together with the byte before it by three
// 16-entry table lookups (PSHUFB): the high nibble of the previous byte, its low nibble and the
// high nibble of the current byte each map to a set of error bits, and an error is a bit present
// in all three. The third and fourth bytes of a sequence, which that pairwise view cannot see,
// are checked by looking two and three bytes back for a lead byte.
namespace lookup {

constexpr uint8_t too_short = 1 << 0;       // 11______ 0_______ or 11______ 11______
constexpr uint8_t too_long = 1 << 1;        // 0_______ 10______
constexpr uint8_t overlong_3 = 1 << 2;      // 11100000 100_____
constexpr uint8_t too_large = 1 << 3;       // 11110100 1001____ and above
constexpr uint8_t surrogate = 1 << 4;       // 11101101 101_____
constexpr uint8_t overlong_2 = 1 << 5;      // 1100000_ 10______
constexpr uint8_t too_large_1000 = 1 << 6;  // 11110101 1000____ and above
constexpr uint8_t overlong_4 = 1 << 6;      // 11110000 1000____
constexpr uint8_t two_conts = 1 << 7;       // 10______ 10______
constexpr uint8_t carry = too_short | too_long | two_conts;  // decided by the high nibble alone

__m128i table(uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3, uint8_t b4, uint8_t b5, uint8_t b6,
              uint8_t b7, uint8_t b8, uint8_t b9, uint8_t b10, uint8_t b11, uint8_t b12,
              uint8_t b13, uint8_t b14, uint8_t b15) {
  return _mm_setr_epi8(char(b0), char(b1), char(b2), char(b3), char(b4), char(b5), char(b6),
                       char(b7), char(b8), char(b9), char(b10), char(b11), char(b12), char(b13),
                       char(b14), char(b15));
}

struct checker {
  const __m128i byte_1_high = table(too_long, too_long, too_long, too_long, too_long, too_long,
                                    too_long, too_long,                                    // ASCII
                                    two_conts, two_conts, two_conts, two_conts,            // 10__
                                    too_short | overlong_2,                                // 1100
                                    too_short,                                             // 1101
                                    too_short | overlong_3 | surrogate,                    // 1110
                                    too_short | too_large | too_large_1000 | overlong_4);  // 1111
  const __m128i byte_1_low =
      table(carry | overlong_3 | overlong_2 | overlong_4,  // ____0000
            carry | overlong_2,                            // ____0001
            carry, carry,                                  // ____001_
            carry | too_large,                             // ____0100
            carry | too_large | too_large_1000, carry | too_large | too_large_1000,
            carry | too_large | too_large_1000, carry | too_large | too_large_1000,
            carry | too_large | too_large_1000, carry | too_large | too_large_1000,
            carry | too_large | too_large_1000, carry | too_large | too_large_1000,
            carry | too_large | too_large_1000 | surrogate,  // ____1101
            carry | too_large | too_large_1000, carry | too_large | too_large_1000);
  const __m128i byte_2_high = table(
      too_short, too_short, too_short, too_short, too_short, too_short, too_short,
      too_short,                                                                     // ASCII
      too_long | overlong_2 | two_conts | overlong_3 | too_large_1000 | overlong_4,  // 1000____
      too_long | overlong_2 | two_conts | overlong_3 | too_large,                    // 1001____
      too_long | overlong_2 | two_conts | surrogate | too_large,                     // 101_____
      too_long | overlong_2 | two_conts | surrogate | too_large, too_short, too_short, too_short,
      too_short);  // 11______
  // A block ending in the first byte of a sequence longer than what is left of the block.
  const __m128i incomplete_max = table(255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
                                       255, 0xf0 - 1, 0xe0 - 1, 0xc0 - 1);

  __m128i error = _mm_setzero_si128();
  __m128i prev_input = _mm_setzero_si128();
  __m128i prev_incomplete = _mm_setzero_si128();

  static __m128i high_nibbles(__m128i v) {
    return _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0f));
  }

  void check(__m128i input) {
    if (_mm_movemask_epi8(input) == 0) {  // ASCII: only a sequence cut off before it is wrong
      error = _mm_or_si128(error, prev_incomplete);
      prev_incomplete = _mm_setzero_si128();
      prev_input = input;
      return;
    }
    __m128i prev1 = _mm_alignr_epi8(input, prev_input, 15);
    __m128i special = _mm_and_si128(
        _mm_and_si128(_mm_shuffle_epi8(byte_1_high, high_nibbles(prev1)),
                      _mm_shuffle_epi8(byte_1_low, _mm_and_si128(prev1, _mm_set1_epi8(0x0f)))),
        _mm_shuffle_epi8(byte_2_high, high_nibbles(input)));
    // Bytes that must be the 3rd or 4th of a sequence: 0x80 where a lead byte >= E0 is two back
    // or >= F0 three back. They must be exactly the continuations flagged two_conts above.
    __m128i third = _mm_subs_epu8(_mm_alignr_epi8(input, prev_input, 14), _mm_set1_epi8(0x60));
    __m128i fourth = _mm_subs_epu8(_mm_alignr_epi8(input, prev_input, 13), _mm_set1_epi8(0x70));
    __m128i must23 = _mm_and_si128(_mm_or_si128(third, fourth), _mm_set1_epi8(char(0x80)));
    error = _mm_or_si128(error, _mm_xor_si128(must23, special));
    prev_incomplete = _mm_subs_epu8(input, incomplete_max);
    prev_input = input;
  }

  bool ok() const {
    __m128i e = _mm_or_si128(error, prev_incomplete);
    return _mm_movemask_epi8(_mm_cmpeq_epi8(e, _mm_setzero_si128())) == 0xffff;
  }
};

}  // namespace lookup

#endif  // __SSSE3__

}  // namespace

namespace detail {

bool valid_scalar(const char* data, size_t n) {
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

#if defined(__SSSE3__)
bool valid_ssse3(const char* data, size_t n) {
  auto load = [data](size_t at) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + at));
  };
  auto ascii = [](__m128i a, __m128i b, __m128i d, __m128i e) {
    return _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(d, e))) == 0;
  };
  lookup::checker c;
  size_t i = 0;
  while (i + 64 <= n) {
    __m128i a = load(i), b = load(i + 16), d = load(i + 32), e = load(i + 48);
    i += 64;
    if (ascii(a, b, d, e)) {
      // Skip the run of ASCII as fast as a plain scan would; its last block carries the state.
      while (i + 64 <= n && ascii(load(i), load(i + 16), load(i + 32), load(i + 48))) i += 64;
      c.check(load(i - 16));
      continue;
    }
    c.check(a), c.check(b), c.check(d), c.check(e);
  }
  for (; i + 16 <= n; i += 16) c.check(_mm_loadu_si128(reinterpret_cast<const __m128i*>(data + i)));
  if (i < n) {
    // The last partial block, padded with zeros (ASCII) in a copy: nothing is read past the end.
    alignas(16) char tail[16] = {};
    std::memcpy(tail, data + i, n - i);
    c.check(_mm_load_si128(reinterpret_cast<const __m128i*>(tail)));
  }
  return c.ok();
}
#endif

}  // namespace detail

bool valid(const char* data, size_t n) {
#if defined(__SSSE3__)
  return detail::valid_ssse3(data, n);
#else
  return detail::valid_scalar(data, n);
#endif
}

}  // namespace rc::utf8
