// Fuzzer-chosen fragmentation: the first bytes of an input choose how the rest is cut into
// pieces, so one corpus entry explores both the message and the ways it can arrive.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace rc::fuzz {

// Consumes up to 4 leading bytes of [data, data + len) as the seed and returns the piece sizes
// for the remaining `rest` bytes (they sum to rest). Modes: single bytes, small random pieces,
// larger random pieces, or one cut.
inline std::vector<size_t> split_points(const uint8_t*& data, size_t& len) {
  uint32_t seed = 0;
  size_t n = std::min<size_t>(len, 4);
  for (size_t i = 0; i < n; ++i) seed = seed << 8 | data[i];
  data += n;
  len -= n;
  std::vector<size_t> pieces;
  uint32_t x = seed | 1;
  auto next = [&x] {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
  };
  size_t left = len;
  switch (seed & 3) {
    case 0:
      pieces.assign(left, 1);
      return pieces;
    case 3:
      if (left > 0) {
        size_t cut = (seed >> 2) % (left + 1);
        if (cut > 0) pieces.push_back(cut);
        if (left - cut > 0) pieces.push_back(left - cut);
      }
      return pieces;
    default: {
      size_t max = (seed & 3) == 1 ? 16 : 512;
      while (left > 0) {
        size_t p = std::min<size_t>(left, 1 + next() % max);
        pieces.push_back(p);
        left -= p;
      }
      return pieces;
    }
  }
}

}  // namespace rc::fuzz
