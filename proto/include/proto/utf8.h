// UTF-8 validation (RFC 3629), for WebSocket text frames and close reasons (RFC 6455 §8.1) and
// for anything else that must reject malformed text before it travels further.
//
// valid() accepts exactly the well-formed UTF-8 of RFC 3629 §4 (Unicode Table 3-7): no overlong
// encodings, no UTF-16 surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no stray
// continuation bytes and no sequence cut off by the end of the input. It never reads outside
// [p, p + n): the fast path loads whole 16- or 8-byte blocks only while they fit.
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

}  // namespace rc::utf8
