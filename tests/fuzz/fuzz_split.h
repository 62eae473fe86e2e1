// Splitting fuzz input into chunks at fuzzer-chosen points (uWS fuzzing/helpers.h does the same),
// so a target can check that a stream decodes the same however it arrives.
//
// Layout of an input: byte 0 holds flags for the target (bits 0-3) and the number of split
// points (bits 4-6); then two bytes per split point (little-endian, taken modulo the payload
// length); then the payload. A seed file is "\x00" followed by a whole stream.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace rc::fuzz {

struct split_input {
  uint8_t flags = 0;
  std::string_view payload;
  std::vector<std::string_view> chunks;  // payload, cut at the chosen points
};

inline bool parse_split_input(const uint8_t* data, size_t size, split_input& out) {
  if (size < 1) return false;
  size_t splits = (data[0] >> 4) & 7;
  out.flags = data[0] & 0x0f;
  if (size < 1 + 2 * splits) return false;
  out.payload = {reinterpret_cast<const char*>(data) + 1 + 2 * splits, size - 1 - 2 * splits};
  std::vector<size_t> cuts;
  for (size_t i = 0; i < splits; ++i) {
    size_t v = data[1 + 2 * i] | (size_t{data[2 + 2 * i]} << 8);
    cuts.push_back(out.payload.empty() ? 0 : v % (out.payload.size() + 1));
  }
  std::sort(cuts.begin(), cuts.end());
  size_t prev = 0;
  out.chunks.clear();
  for (size_t c : cuts) {
    out.chunks.push_back(out.payload.substr(prev, c - prev));
    prev = c;
  }
  out.chunks.push_back(out.payload.substr(prev));
  return true;
}

}  // namespace rc::fuzz
