// Byte classes and scanning primitives shared by the HTTP/1.1 parser and chunked decoder.
//
// Private to proto/src. Every scan takes an explicit end and never loads a byte at or past it:
// the SIMD loops run only while 16 whole bytes remain, and a scalar loop finishes the tail, so
// parsers may be handed input that ends right before an unmapped page. The SIMD paths use SSE2
// only (baseline on x86-64, and a subset of the x86-64-v2 the release build targets); other
// targets get the scalar loops, which are also the tail of every SIMD loop and so always tested.
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

// First byte in [p, end) that is a control byte (< 0x20, HTAB included, so callers re-check it)
// or DEL. In a field value this lands on the CR or LF that ends the line unless the value holds
// a byte it must not.
inline const char* find_ctl(const char* p, const char* end) {
#ifdef __SSE2__
  const __m128i ctl_max = _mm_set1_epi8(0x1f);
  const __m128i del = _mm_set1_epi8(0x7f);
  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, ctl_max), v);
    int mask = _mm_movemask_epi8(_mm_or_si128(ctl, _mm_cmpeq_epi8(v, del)));
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  while (p < end && static_cast<uint8_t>(*p) >= 0x20 && *p != 0x7f) ++p;
  return p;
}

// First byte in [p, end) that may not appear in a request-target (see make_table).
inline const char* find_non_target(const char* p, const char* end) {
#ifdef __SSE2__
  // Signed compare: bytes <= 0x20 and every byte >= 0x80 (negative) are "low".
  const __m128i above_space = _mm_set1_epi8(0x21);
  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    __m128i bad = _mm_cmpgt_epi8(above_space, v);
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)));
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8('"')));
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8('#')));
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8('<')));
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8('>')));
    int mask = _mm_movemask_epi8(bad);
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  while (p < end && is(*p, target)) ++p;
  return p;
}

// First byte in [p, end) that is not a token character.
inline const char* find_non_tchar(const char* p, const char* end) {
  while (p < end && is(*p, tchar)) ++p;
  return p;
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
