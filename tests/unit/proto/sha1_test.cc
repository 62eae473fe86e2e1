#include "proto/sha1.h"

#include <gtest/gtest.h>

#include <string>

namespace rc::sha1 {
namespace {

std::string hex(const digest& d) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : d) {
    s.push_back(digits[b >> 4]);
    s.push_back(digits[b & 15]);
  }
  return s;
}

// FIPS 180-2 Appendix A and the NIST example vectors.
TEST(Sha1, FipsVectors) {
  EXPECT_EQ(hex(hash("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(hex(hash("")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(hex(hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  EXPECT_EQ(hex(hash("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklm"
                     "nopqklmnopqrlmnopqrsmnopqrstnopqrstu")),
            "a49b2446a02c645bf419f995b67091253a04a259");
  EXPECT_EQ(hex(hash(std::string(1000000, 'a'))), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  EXPECT_EQ(hex(hash("The quick brown fox jumps over the lazy dog")),
            "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");
}

// Lengths around the padding boundaries (55, 56, 63, 64 bytes) hashed whole and fed in pieces
// of every size must agree.
TEST(Sha1, IncrementalMatchesWholeAtEverySplit) {
  std::string msg;
  for (int i = 0; i < 200; ++i) msg.push_back(static_cast<char>('a' + i % 26));
  for (size_t len : {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 200}) {
    std::string_view m(msg.data(), len);
    digest whole = hash(m);
    for (size_t step = 1; step <= 65; ++step) {
      hasher h;
      for (size_t off = 0; off < len; off += step) h.update(m.substr(off, step));
      ASSERT_EQ(h.finish(), whole) << len << ' ' << step;
    }
  }
  // Padding boundary vectors cross-checked with `sha1sum`.
  EXPECT_EQ(hex(hash(std::string(55, 'a'))), "c1c8bbdc22796e28c0e15163d20899b65621d65a");
  EXPECT_EQ(hex(hash(std::string(56, 'a'))), "c2db330f6083854c99d4b5bfb6e8f29f201be699");
  EXPECT_EQ(hex(hash(std::string(64, 'a'))), "0098ba824b5c16427bd7a1122a5a442a25ec644d");
}

}  // namespace
}  // namespace rc::sha1
