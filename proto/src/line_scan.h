// Private to proto/src: finding the next CR or LF, shared by the SSE encoder (which splits
// data into lines) and the SSE decoder (which splits the stream into lines).
#pragma once

#include <cstddef>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace rc::detail {

// Index of the first '\r' or '\n' in [p, p + n), or n if there is none. Reads only inside the
// range: 16-byte blocks while they fit, then single bytes.
inline size_t find_line_break(const char* p, size_t n) {
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i lf = _mm_set1_epi8('\n');
  for (; i + 16 <= n; i += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf));
    if (int m = _mm_movemask_epi8(hit); m != 0) return i + static_cast<size_t>(__builtin_ctz(m));
  }
#endif
  for (; i < n; ++i) {
    if (p[i] == '\r' || p[i] == '\n') return i;
  }
  return n;
}

}  // namespace rc::detail
