#include "proto/base64.h"

#include <gtest/gtest.h>

#include <string>

namespace rc::base64 {
namespace {

std::string enc(std::string_view s) {
  byte_buffer b;
  encode(s, b);
  return std::string(b.view());
}

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(enc(""), "");
  EXPECT_EQ(enc("f"), "Zg==");
  EXPECT_EQ(enc("fo"), "Zm8=");
  EXPECT_EQ(enc("foo"), "Zm9v");
  EXPECT_EQ(enc("foob"), "Zm9vYg==");
  EXPECT_EQ(enc("fooba"), "Zm9vYmE=");
  EXPECT_EQ(enc("foobar"), "Zm9vYmFy");
}

TEST(Base64, RoundTripsEveryByteValue) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t n = 0; n <= all.size(); n += 7) {
    std::string in = all.substr(0, n);
    byte_buffer out;
    ASSERT_TRUE(decode(enc(in), out)) << n;
    EXPECT_EQ(out.view(), in);
  }
}

TEST(Base64, RejectsNonCanonicalInput) {
  byte_buffer out;
  EXPECT_FALSE(decode("Zg=", out));       // length not a multiple of 4
  EXPECT_FALSE(decode("Z===", out));      // too much padding
  EXPECT_FALSE(decode("Zh==", out));      // non-zero padding bits
  EXPECT_FALSE(decode("Zm9=", out));      // non-zero padding bits
  EXPECT_FALSE(decode("Zg==Zg==", out));  // padding before the end
  EXPECT_FALSE(decode("Zm9v!A==", out));  // byte outside the alphabet
  EXPECT_FALSE(decode("Zm 9", out));
}

}  // namespace
}  // namespace rc::base64
