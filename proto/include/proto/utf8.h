// UTF-8 validation (RFC 3629), for WebSocket text frames and close reasons (RFC 6455 §8.1) and
// for anything else that must reject malformed text before it travels further.
//
// valid() accepts exactly the well-formed UTF-8 of RFC 3629 §4 (Unicode Table 3-7): no overlong
// encodings, no UTF-16 surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no stray
// continuation bytes and no sequence cut off by the end of the input. It never reads outside
// [p, p + n): whole 16-byte blocks are loaded only while they fit, the rest is copied.
//
// Two implementations: with SSSE3 (release builds target x86-64-v2) the lookup-table algorithm
// of Keiser & Lemire (as in simdjson) checks 16 bytes per step and skips 64-byte ASCII runs;
// otherwise a scalar decoder with an SSE2/64-bit ASCII fast path.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string_view>

namespace rc::utf8 {

// True if the n bytes at p are well-formed UTF-8. An empty input is valid.
bool valid(const char* p, size_t n);
inline bool valid(std::string_view s) {
  return valid(s.data(), s.size());
}

namespace detail {
// The implementations behind valid(), for tests and benchmarks.
bool valid_scalar(const char* p, size_t n);
#if defined(__SSSE3__)
bool valid_ssse3(const char* p, size_t n);
#endif
}  // namespace detail

}  // namespace rc::utf8
