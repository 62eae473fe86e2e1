// Byte classes and scanning primitives shared by the HTTP/1.1 parser and chunked decoder.
//
// Private to proto/src. Every scan takes an explicit end and never loads a byte at or past it,
// so parsers may be handed input that ends right before an unmapped page. SIMD loops run while 16
// whole bytes remain; a shorter rest is finished with one 16-byte load that ends exactly at `end`
// and may reach back before the scan's start, down to a `floor` the caller names (the start of its
// input). Only inputs shorter than 16 bytes in all fall back to a byte loop. The SIMD paths need
// SSE2 (baseline on x86-64) or SSSE3 (part of the x86-64-v2 the release build targets) and are
// guarded by those macros; elsewhere the byte loops do all the work.
//
// Thread-safety: constant tables and pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#ifdef __SSSE3__
#include <tmmintrin.h>
#endif

namespace rc::http1::chars {

enum : uint8_t {
  tchar = 1 << 0,   // RFC 9110 §5.6.2 token characters
  target = 1 << 1,  // bytes we accept in a request-target (see make_table)
  host = 1 << 2,    // uri-host [":" port] bytes: unreserved, sub-delims, '%', ':', '[', ']'
  value = 1 << 3,   // field-vchar, SP, HTAB: VCHAR, obs-text (0x80-0xff), SP, HTAB
  hex = 1 << 4,     // HEXDIG
  qdtext = 1 << 5,  // quoted-string text: HTAB, SP, VCHAR but '"' and '\', obs-text
};

constexpr std::array<uint8_t, 256> make_table() {
  std::array<uint8_t, 256> t{};
  constexpr std::string_view tchar_punct = "!#$%&'*+-.^_`|~";
  // RFC 3986 allows unreserved, sub-delims, ':', '@', '/', '?' and '%' (pct-encoded) in a path and
  // query. We also accept the "unwise" bytes browsers send unescaped in queries and paths
  // ('[', ']', '{', '}', '|', '\', '^', '`'; WHATWG URL leaves them raw), so that real clients
  // work, but reject what no client sends raw and what makes logs and routers ambiguous: every
  // control byte, SP, DEL, non-ASCII, '"', '<', '>' and '#' (a fragment is never sent).
  constexpr std::string_view target_extra = "!$&'()*+,;=:@/?%-._~[]{}|\\^`";
  constexpr std::string_view host_extra = "-._~!$&'()*+,;=%:[]";
  for (int c = 0; c < 256; ++c) {
    uint8_t v = 0;
    bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (alnum || tchar_punct.find(static_cast<char>(c)) != std::string_view::npos) v |= tchar;
    if (alnum || target_extra.find(static_cast<char>(c)) != std::string_view::npos) v |= target;
    if (alnum || host_extra.find(static_cast<char>(c)) != std::string_view::npos) v |= host;
    if (c == '\t' || (c >= 0x20 && c != 0x7f)) v |= value;
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) v |= hex;
    if ((v & value) && c != '"' && c != '\\') v |= qdtext;
    t[c] = v;
  }
  return t;
}
inline constexpr std::array<uint8_t, 256> table = make_table();

inline bool is(char c, uint8_t cls) {
  return (table[static_cast<uint8_t>(c)] & cls) != 0;
}

inline int hex_value(char c) {
  auto u = static_cast<uint8_t>(c);
  if (u <= '9') return u - '0';
  return (u | 0x20) - 'a' + 10;
}

inline char to_lower(char c) {
  return static_cast<char>(c + ((static_cast<unsigned>(c - 'A') < 26u) << 5));
}

// Whether `s` equals `lower` (lowercase ASCII letters, digits and '-'), ignoring case. Exact for
// inputs without control bytes: setting bit 5 maps only 'A'-'Z' onto 'a'-'z', and the other
// byte that maps onto '-' or a digit is a control byte.
inline bool equals_lower(std::string_view s, std::string_view lower) {
  const size_t n = s.size();
  if (n != lower.size()) return false;
  const char* a = s.data();
  const char* b = lower.data();
  auto eq8 = [](const char* x, const char* y) {
    uint64_t u, v;
    std::memcpy(&u, x, 8);
    std::memcpy(&v, y, 8);
    return (u | 0x2020202020202020ull) == v;
  };
  auto eq4 = [](const char* x, const char* y) {
    uint32_t u, v;
    std::memcpy(&u, x, 4);
    std::memcpy(&v, y, 4);
    return (u | 0x20202020u) == v;
  };
  // Whole words, the last one overlapping the previous: the comparison is idempotent.
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) {
      if (!eq8(a + i, b + i)) return false;
    }
    return eq8(a + n - 8, b + n - 8);
  }
  if (n >= 4) return eq4(a, b) && eq4(a + n - 4, b + n - 4);
  for (size_t i = 0; i < n; ++i) {
    if ((a[i] | 0x20) != b[i]) return false;
  }
  return true;
}

#ifdef __SSE2__
inline __m128i load16(const char* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

// Applies `stop` (16 bytes -> bit mask of the bytes to stop at) over [p, end) and returns the first
// stop byte, or end. When fewer than 16 bytes remain, one load that ends exactly at `end` finishes
// the scan if [floor, end) holds 16 bytes (floor <= p is the lowest byte the caller may read); the
// bits of bytes before p are shifted out. Short scans thus avoid a byte loop and its mispredicted
// exit. Only inputs shorter than 16 bytes in all fall back to `is_stop`, byte by byte.
template <typename Stop, typename IsStop>
inline const char* simd_scan(const char* p, const char* end, const char* floor, Stop stop,
                             IsStop is_stop) {
  while (end - p >= 16) {
    unsigned mask = stop(load16(p));
    if (mask != 0) return p + __builtin_ctz(mask);
    p += 16;
  }
  if (p == end) return end;
  if (end - floor >= 16) {
    const char* base = end - 16;
    unsigned mask = stop(load16(base)) >> (p - base);
    return mask != 0 ? p + __builtin_ctz(mask) : end;
  }
  while (p < end && !is_stop(*p)) ++p;
  return p;
}
#endif

// First byte in [p, end) that may not appear in a field value: a control byte other than HTAB,
// or DEL. In a valid field line this is the CR or LF that ends it.
inline const char* find_value_end(const char* p, const char* end, const char* floor) {
  auto is_stop = [](char c) { return !is(c, value); };
#ifdef __SSE2__
  auto stop = [](__m128i v) {
    __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
    ctl = _mm_andnot_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\t')), ctl);
    ctl = _mm_or_si128(ctl, _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)));
    return static_cast<unsigned>(_mm_movemask_epi8(ctl));
  };
  return simd_scan(p, end, floor, stop, is_stop);
#else
  (void)floor;
  while (p < end && !is_stop(*p)) ++p;
  return p;
#endif
}

// First byte in [p, end) that may not appear in a request-target (see make_table).
inline const char* find_non_target(const char* p, const char* end, const char* floor) {
  auto is_stop = [](char c) { return !is(c, target); };
#ifdef __SSE2__
  auto stop = [](__m128i v) {
    // Signed compare: bytes <= 0x20 and every byte >= 0x80 (negative) are below 0x21.
    __m128i bad = _mm_cmpgt_epi8(_mm_set1_epi8(0x21), v);
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)));
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8('"')));
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8('#')));
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8('<')));
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8('>')));
    return static_cast<unsigned>(_mm_movemask_epi8(bad));
  };
  return simd_scan(p, end, floor, stop, is_stop);
#else
  (void)floor;
  while (p < end && !is_stop(*p)) ++p;
  return p;
#endif
}

// tchar as two 16-entry nibble tables for a pshufb lookup: each distinct set of low nibbles that
// some high nibble admits gets a bit; a byte is a tchar iff lo[b & 15] & hi[b >> 4] != 0.
struct nibble_tables {
  std::array<uint8_t, 16> lo{}, hi{};
};
constexpr nibble_tables make_tchar_nibbles() {
  nibble_tables t;
  std::array<uint16_t, 8> rows{};  // the low-nibble set of each bit
  int bits = 0;
  for (int h = 0; h < 16; ++h) {
    uint16_t row = 0;
    for (int l = 0; l < 16; ++l) {
      if (table[h << 4 | l] & tchar) row = static_cast<uint16_t>(row | 1 << l);
    }
    if (row == 0) continue;
    int bit = 0;
    while (bit < bits && rows[bit] != row) ++bit;
    if (bit == bits) rows[bits++] = row;  // more than 8 distinct rows would overflow: see below
    t.hi[h] = static_cast<uint8_t>(t.hi[h] | 1 << bit);
    for (int l = 0; l < 16; ++l) {
      if (row & 1 << l) t.lo[l] = static_cast<uint8_t>(t.lo[l] | 1 << bit);
    }
  }
  return t;
}
inline constexpr nibble_tables tchar_nibbles = make_tchar_nibbles();
constexpr bool nibbles_match_table() {
  for (int c = 0; c < 256; ++c) {
    bool nib = (tchar_nibbles.lo[c & 15] & tchar_nibbles.hi[c >> 4]) != 0;
    if (nib != ((table[c] & tchar) != 0)) return false;
  }
  return true;
}
static_assert(nibbles_match_table(), "tchar nibble tables disagree with the byte table");

// First byte in [p, end) that is not a token character.
inline const char* find_non_tchar(const char* p, const char* end, const char* floor) {
  auto is_stop = [](char c) { return !is(c, tchar); };
#ifdef __SSSE3__
  auto stop = [](__m128i v) {
    const __m128i lo_table = load16(reinterpret_cast<const char*>(tchar_nibbles.lo.data()));
    const __m128i hi_table = load16(reinterpret_cast<const char*>(tchar_nibbles.hi.data()));
    const __m128i nibble = _mm_set1_epi8(0x0f);
    __m128i lo = _mm_shuffle_epi8(lo_table, _mm_and_si128(v, nibble));
    __m128i hi = _mm_shuffle_epi8(hi_table, _mm_and_si128(_mm_srli_epi16(v, 4), nibble));
    __m128i non_tchar = _mm_cmpeq_epi8(_mm_and_si128(lo, hi), _mm_setzero_si128());
    return static_cast<unsigned>(_mm_movemask_epi8(non_tchar));
  };
  return simd_scan(p, end, floor, stop, is_stop);
#else
  (void)floor;
  while (p < end && !is_stop(*p)) ++p;
  return p;
#endif
}

// First LF in [p, end), or end. Inline rather than memchr: field lines are short, and the
// search for the next line's start is the one chain the field parse cannot overlap.
inline const char* find_lf(const char* p, const char* end, const char* floor) {
  auto is_stop = [](char c) { return c == '\n'; };
#ifdef __SSE2__
  auto stop = [](__m128i v) {
    return static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))));
  };
  return simd_scan(p, end, floor, stop, is_stop);
#else
  (void)floor;
  while (p < end && !is_stop(*p)) ++p;
  return p;
#endif
}

inline const char* find_byte(const char* p, const char* end, char c) {
  auto* hit = static_cast<const char*>(std::memchr(p, c, static_cast<size_t>(end - p)));
  return hit ? hit : end;
}

inline bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

inline std::string_view trim_ows(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && is_ows(s[b])) ++b;
  while (e > b && is_ows(s[e - 1])) --e;
  return s.substr(b, e - b);
}

}  // namespace rc::http1::chars
