#include "proto/sha1.h"

#include <cstring>

#include "base/assert.h"

namespace rc::sha1 {
namespace {

uint32_t rotl(uint32_t x, int n) {
  return (x << n) | (x >> (32 - n));
}

uint32_t load_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

}  // namespace

hasher::hasher() : state_{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0} {}

// FIPS 180-4 §6.1.2: 80 rounds over a 16-word block expanded in place (a rolling window of 16
// words instead of the full 80-word schedule).
void hasher::compress(const uint8_t* block) {
  uint32_t w[16];
  for (int i = 0; i < 16; ++i) w[i] = load_be32(block + 4 * i);
  uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3], e = state_[4];
  for (int t = 0; t < 80; ++t) {
    if (t >= 16) {
      w[t & 15] = rotl(w[(t - 3) & 15] ^ w[(t - 8) & 15] ^ w[(t - 14) & 15] ^ w[t & 15], 1);
    }
    uint32_t f, k;
    if (t < 20) {
      f = (b & c) | (~b & d), k = 0x5a827999;
    } else if (t < 40) {
      f = b ^ c ^ d, k = 0x6ed9eba1;
    } else if (t < 60) {
      f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
    } else {
      f = b ^ c ^ d, k = 0xca62c1d6;
    }
    uint32_t temp = rotl(a, 5) + f + e + k + w[t & 15];
    e = d, d = c, c = rotl(b, 30), b = a, a = temp;
  }
  state_[0] += a, state_[1] += b, state_[2] += c, state_[3] += d, state_[4] += e;
}

void hasher::update(const void* data, size_t n) {
  RC_ASSERT(!finished_);
  const auto* p = static_cast<const uint8_t*>(data);
  total_bytes_ += n;
  if (block_bytes_ > 0) {
    size_t take = n < 64 - block_bytes_ ? n : 64 - block_bytes_;
    std::memcpy(block_ + block_bytes_, p, take);
    block_bytes_ += take, p += take, n -= take;
    if (block_bytes_ < 64) return;
    compress(block_);
    block_bytes_ = 0;
  }
  for (; n >= 64; p += 64, n -= 64) compress(p);
  std::memcpy(block_, p, n);
  block_bytes_ = n;
}

digest hasher::finish() {
  RC_ASSERT(!finished_);
  uint64_t bit_length = total_bytes_ * 8;
  // Padding: 0x80, zeros up to 56 mod 64, then the message length in bits, big-endian.
  static constexpr uint8_t pad[64] = {0x80};
  size_t pad_bytes = block_bytes_ < 56 ? 56 - block_bytes_ : 120 - block_bytes_;
  update(pad, pad_bytes);
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(bit_length >> (56 - 8 * i));
  update(length, 8);
  RC_ASSERT(block_bytes_ == 0);
  finished_ = true;
  digest out;
  for (int i = 0; i < 5; ++i) {
    out[4 * i] = static_cast<uint8_t>(state_[i] >> 24);
    out[4 * i + 1] = static_cast<uint8_t>(state_[i] >> 16);
    out[4 * i + 2] = static_cast<uint8_t>(state_[i] >> 8);
    out[4 * i + 3] = static_cast<uint8_t>(state_[i]);
  }
  return out;
}

digest hash(std::string_view s) {
  hasher h;
  h.update(s);
  return h.finish();
}

}  // namespace rc::sha1
