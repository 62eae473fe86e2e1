// SHA-1 (FIPS 180-4), for the WebSocket handshake only: Sec-WebSocket-Accept is the base64 of
// SHA-1(key + GUID) (RFC 6455 §4.2.2). SHA-1 is broken for collision resistance; nothing here
// relies on that property, and nothing else in ringcast may use this as a security hash.
//
// Thread-safety: a hasher belongs to one thread; hash() is a pure function.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace rc::sha1 {

constexpr size_t digest_bytes = 20;
using digest = std::array<uint8_t, digest_bytes>;

// Incremental hashing: update() any number of times, then finish() once.
class hasher {
 public:
  hasher();
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // REQUIRES: called once; the hasher is spent afterwards.
  digest finish();

 private:
  void compress(const uint8_t* block);

  uint32_t state_[5];
  uint64_t total_bytes_ = 0;
  uint8_t block_[64];
  size_t block_bytes_ = 0;
  bool finished_ = false;
};

digest hash(std::string_view s);

}  // namespace rc::sha1
