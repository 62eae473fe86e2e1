#include "proto/json_writer.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace rc::json {
namespace {

// Bytes that go through unchanged by themselves: printable ASCII except '"' and '\\'. Bytes
// >= 0x80 are not "safe" here because each UTF-8 sequence must be validated first.
constexpr std::array<bool, 256> make_safe_table() {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[c] = true;
  t['"'] = false;
  t['\\'] = false;
  return t;
}
constexpr auto safe_byte = make_safe_table();

// Returns how many leading bytes of [p, p+n) are safe.
inline size_t scan_safe(const unsigned char* p, size_t n) {
  size_t i = 0;
#if defined(__SSE2__)
  // One signed compare finds both control bytes (< 0x20) and non-ASCII bytes (>= 0x80, which
  // are negative as signed chars); two more find '"' and '\\'. Loads stay inside [p, p+n).
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  for (; i + 16 <= n; i += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    __m128i special =
        _mm_or_si128(_mm_cmplt_epi8(v, space),
                     _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
    if (int mask = _mm_movemask_epi8(special); mask != 0) return i + __builtin_ctz(mask);
  }
#endif
  while (i < n && safe_byte[p[i]]) ++i;
  return i;
}

// Validates the UTF-8 sequence starting at p[0] (a byte >= 0x80), following RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF. Returns its length (2..4) if valid;
// otherwise returns 0 and sets *invalid_bytes to the length of the maximal invalid subpart
// (at least 1), which is what one U+FFFD replaces.
inline size_t utf8_sequence(const unsigned char* p, size_t n, size_t* invalid_bytes) {
  const unsigned char c = p[0];
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    *invalid_bytes = 1;
    return 0;
  }
  if (n < 2 || p[1] < lo || p[1] > hi) {
    *invalid_bytes = 1;
    return 0;
  }
  for (size_t i = 2; i < len; ++i) {
    if (i >= n || (p[i] & 0xC0) != 0x80) {
      *invalid_bytes = i;
      return 0;
    }
  }
  return len;
}

constexpr char hex_digit[] = "0123456789abcdef";

void write_escape(byte_buffer& out, unsigned char c) {
  char* d = out.prepare(6);
  d[0] = '\\';
  switch (c) {
    case '"':
      d[1] = '"';
      out.commit(2);
      return;
    case '\\':
      d[1] = '\\';
      out.commit(2);
      return;
    case '\b':
      d[1] = 'b';
      out.commit(2);
      return;
    case '\f':
      d[1] = 'f';
      out.commit(2);
      return;
    case '\n':
      d[1] = 'n';
      out.commit(2);
      return;
    case '\r':
      d[1] = 'r';
      out.commit(2);
      return;
    case '\t':
      d[1] = 't';
      out.commit(2);
      return;
    default:
      break;
  }
  d[1] = 'u';
  d[2] = '0';
  d[3] = '0';
  d[4] = hex_digit[c >> 4];
  d[5] = hex_digit[c & 15];
  out.commit(6);
}

// Adds ".0" when the shortest form of a finite double reads as an integer, so that 1.0 is
// written as 1.0 (as Python, which serves the OpenAI API, writes it) and re-parses as a decimal.
size_t finish_decimal(char* buf, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    if (buf[i] == '.' || buf[i] == 'e') return len;
  }
  buf[len] = '.';
  buf[len + 1] = '0';
  return len + 2;
}

}  // namespace

void write_escaped(byte_buffer& out, std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  out.reserve(out.size() + n);
  size_t run = 0;  // start of the bytes not yet copied
  size_t i = 0;
  while (true) {
    i += scan_safe(p + i, n - i);
    if (i == n) break;
    const unsigned char c = p[i];
    if (c >= 0x80) {
      size_t invalid = 0;
      if (size_t len = utf8_sequence(p + i, n - i, &invalid); len != 0) {
        i += len;  // valid: stays in the run and is copied verbatim
        continue;
      }
      out.append(s.data() + run, i - run);
      out.append("\xEF\xBF\xBD");  // U+FFFD REPLACEMENT CHARACTER
      i += invalid;
    } else {
      out.append(s.data() + run, i - run);
      write_escape(out, c);
      ++i;
    }
    run = i;
  }
  out.append(s.data() + run, n - run);
}

void write_string(byte_buffer& out, std::string_view s) {
  out.reserve(out.size() + s.size() + 2);
  out.push_back('"');
  write_escaped(out, s);
  out.push_back('"');
}

void write_int64(byte_buffer& out, int64_t v) {
  char* d = out.prepare(number_chars_max);
  out.commit(static_cast<size_t>(std::to_chars(d, d + number_chars_max, v).ptr - d));
}

void write_uint64(byte_buffer& out, uint64_t v) {
  char* d = out.prepare(number_chars_max);
  out.commit(static_cast<size_t>(std::to_chars(d, d + number_chars_max, v).ptr - d));
}

size_t format_double(double v, char* buf) {
  if (!std::isfinite(v)) {
    std::memcpy(buf, "null", 4);
    return 4;
  }
  // The shortest round-trip form is at most 24 characters ("-2.2250738585072014e-308").
  auto len = static_cast<size_t>(std::to_chars(buf, buf + number_chars_max - 2, v).ptr - buf);
  return finish_decimal(buf, len);
}

size_t format_float(float v, char* buf) {
  if (!std::isfinite(v)) {
    std::memcpy(buf, "null", 4);
    return 4;
  }
  auto len = static_cast<size_t>(std::to_chars(buf, buf + number_chars_max - 2, v).ptr - buf);
  return finish_decimal(buf, len);
}

void write_double(byte_buffer& out, double v) {
  char* d = out.prepare(number_chars_max);
  out.commit(format_double(v, d));
}

void write_float(byte_buffer& out, float v) {
  char* d = out.prepare(number_chars_max);
  out.commit(format_float(v, d));
}

}  // namespace rc::json
