#include "proto/utf8.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdint>
#include <random>
#include <string>

#include "guarded_input.h"

namespace rc::utf8 {
namespace {

// An obviously correct reference: decode one code point the long way and check the ranges.
bool reference_valid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len;
    uint32_t cp;
    uint32_t min;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

using impl_fn = bool (*)(const char*, size_t);

struct implementation {
  const char* name;
  impl_fn fn;
};

// Every implementation compiled into this build, and the public entry point.
class Utf8 : public testing::TestWithParam<implementation> {
 protected:
  bool impl(const char* p, size_t n) { return GetParam().fn(p, n); }
  bool impl(std::string_view s) { return impl(s.data(), s.size()); }
};

INSTANTIATE_TEST_SUITE_P(Impl, Utf8,
                         testing::Values(implementation{"public", static_cast<impl_fn>(&valid)},
                                         implementation{"scalar", &detail::valid_scalar}
#if defined(__SSSE3__)
                                         ,
                                         implementation{"ssse3", &detail::valid_ssse3}
#endif
                                         ),
                         [](const testing::TestParamInfo<implementation>& param) {
                           return param.param.name;
                         });

TEST_P(Utf8, AcceptsWellFormedText) {
  EXPECT_TRUE(impl(""));
  EXPECT_TRUE(impl("plain ascii"));
  EXPECT_TRUE(impl("h\xc3\xa9llo"));                  // é
  EXPECT_TRUE(impl("\xe2\x82\xac"));                  // €
  EXPECT_TRUE(impl("\xf0\x9f\x98\x80"));              // U+1F600
  EXPECT_TRUE(impl("\xed\x9f\xbf"));                  // U+D7FF, last before surrogates
  EXPECT_TRUE(impl("\xee\x80\x80"));                  // U+E000, first after surrogates
  EXPECT_TRUE(impl("\xf4\x8f\xbf\xbf"));              // U+10FFFF
  EXPECT_TRUE(impl("\xef\xbb\xbf"));                  // BOM is a valid character
  EXPECT_TRUE(impl(std::string_view("\0nul\0", 5)));  // NUL is valid UTF-8
}

TEST_P(Utf8, RejectsMalformedText) {
  EXPECT_FALSE(impl("\x80"));              // lone continuation
  EXPECT_FALSE(impl("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(impl("\xc1\xbf"));          // overlong
  EXPECT_FALSE(impl("\xe0\x80\xaf"));      // overlong three-byte
  EXPECT_FALSE(impl("\xe0\x9f\xbf"));      // overlong three-byte (U+07FF)
  EXPECT_FALSE(impl("\xf0\x80\x80\xaf"));  // overlong four-byte
  EXPECT_FALSE(impl("\xf0\x8f\xbf\xbf"));  // overlong four-byte (U+FFFF)
  EXPECT_FALSE(impl("\xed\xa0\x80"));      // U+D800 surrogate
  EXPECT_FALSE(impl("\xed\xbf\xbf"));      // U+DFFF surrogate
  EXPECT_FALSE(impl("\xf4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(impl("\xf5\x80\x80\x80"));  // lead byte F5
  EXPECT_FALSE(impl("\xff"));
  EXPECT_FALSE(impl("\xc3"));              // truncated at end
  EXPECT_FALSE(impl("\xe2\x82"));          // truncated at end
  EXPECT_FALSE(impl("\xf0\x9f\x98"));      // truncated at end
  EXPECT_FALSE(impl("\xc3(a"));            // bad continuation
  EXPECT_FALSE(impl("\xe2\x28\xa1"));      // bad continuation
  EXPECT_FALSE(impl("\xf0\x9f\x98\x28"));  // bad continuation
  EXPECT_FALSE(
      impl("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
           "edited"));
}

// Every one- and two-byte string, and every three-byte string that starts with a lead byte of a
// three- or four-byte sequence (two million inputs), against the reference.
TEST_P(Utf8, ExhaustiveAgainstReferenceUpToThreeBytes) {
  char buf[3];
  for (int a = 0; a < 256; ++a) {
    buf[0] = static_cast<char>(a);
    ASSERT_EQ(impl(buf, 1), reference_valid({buf, 1})) << a;
    for (int b = 0; b < 256; ++b) {
      buf[1] = static_cast<char>(b);
      ASSERT_EQ(impl(buf, 2), reference_valid({buf, 2})) << a << ' ' << b;
      if (a < 0xe0) continue;  // two-byte leads and ASCII are covered by the loops above
      for (int c = 0; c < 256; ++c) {
        buf[2] = static_cast<char>(c);
        ASSERT_EQ(impl(buf, 3), reference_valid({buf, 3})) << a << ' ' << b << ' ' << c;
      }
    }
  }
}

// Four-byte leads with every second byte and the boundary values of the last two.
TEST_P(Utf8, FourByteBoundariesAgainstReference) {
  const int interesting[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff};
  char buf[4];
  for (int a = 0xf0; a < 0x100; ++a) {
    for (int b = 0; b < 256; ++b) {
      for (int c : interesting) {
        for (int d : interesting) {
          buf[0] = static_cast<char>(a), buf[1] = static_cast<char>(b);
          buf[2] = static_cast<char>(c), buf[3] = static_cast<char>(d);
          ASSERT_EQ(impl(buf, 4), reference_valid({buf, 4})) << a << ' ' << b;
        }
      }
    }
  }
}

// Exercises the 64/16/8-byte block paths: a bad byte at every position of a long ASCII run
// must be found, and valid multi-byte characters at every alignment must pass.
TEST_P(Utf8, BlockPathsFindEveryPosition) {
  for (size_t len = 1; len <= 200; ++len) {
    for (size_t pos = 0; pos < len; ++pos) {
      std::string s(len, 'a');
      s[pos] = '\x80';
      ASSERT_FALSE(impl(s)) << len << ' ' << pos;
      s[pos] = 'b';
      ASSERT_TRUE(impl(s));
      if (pos + 2 <= len) {
        s.replace(pos, 2, "\xc3\xa9");
        ASSERT_TRUE(impl(s)) << len << ' ' << pos;
        s.resize(pos + 1);  // cut the character in half
        ASSERT_FALSE(impl(s)) << len << ' ' << pos;
      }
    }
  }
}

// Valid and invalid sequences at every offset of ASCII text, so each straddles block boundaries
// (16 and 64 bytes) somewhere, and cut off at every block end.
TEST_P(Utf8, SequencesAtEveryOffset) {
  const std::string sequences[] = {"\xc3\xa9",
                                   "\xe2\x82\xac",
                                   "\xf0\x9f\x98\x80",
                                   "\xf4\x8f\xbf\xbf",
                                   "\xed\x9f\xbf",
                                   "\xed\xa0\x80",
                                   "\xe0\x9f\xbf",
                                   "\xf0\x8f\xbf\xbf",
                                   "\xf4\x90\x80\x80",
                                   "\xc1\xbf",
                                   "\x80",
                                   "\xbf\x80",
                                   "\xc3",
                                   "\xe2\x82",
                                   "\xf0\x9f\x98",
                                   "\xf8\x88\x80\x80\x80",
                                   "\xc3\xa9\xa9",
                                   "\xe2\x82\xac\x80",
                                   "\xe0",
                                   "\xe0\xa0",
                                   "\xf0",
                                   "\xf0\x90",
                                   "\xf0\x90\x80",
                                   "\xdf",
                                   "\xef\xbf",
                                   "\xf4\x8f\xbf",
                                   "\xc0",
                                   "\xc1",
                                   "\xc2"};
  for (const std::string& seq : sequences) {
    for (size_t len = 0; len <= 140; ++len) {
      for (size_t pos = 0; pos + seq.size() <= len; ++pos) {
        std::string s(len, 'a');
        s.replace(pos, seq.size(), seq);
        ASSERT_EQ(impl(s), reference_valid(s)) << len << ' ' << pos << ' ' << seq.size();
        // The same, surrounded by multi-byte text instead of ASCII.
        std::string t;
        while (t.size() < pos) t += "\xce\xba";
        t.resize(pos - pos % 2);
        t += seq;
        while (t.size() < len) t += "\xe4\xb8\x96";
        ASSERT_EQ(impl(t), reference_valid(t)) << len << ' ' << pos;
      }
    }
  }
}

TEST_P(Utf8, RandomInputsAgreeWithSimdjson) {
  std::mt19937_64 rng(42);
  const std::string pieces[] = {
      "a",    "hello ",       "\xc3\xa9",         "\xe2\x82\xac", "\xf0\x9f\x98\x80",
      "\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\xaf",     "\xe2"};
  for (int round = 0; round < 20000; ++round) {
    std::string s;
    size_t parts = rng() % 40;
    for (size_t k = 0; k < parts; ++k) {
      // Mostly valid pieces so long valid strings are common.
      size_t idx = rng() % 100 < 97 ? rng() % 5 : rng() % 10;
      s += pieces[idx];
    }
    ASSERT_EQ(impl(s), simdjson::validate_utf8(s.data(), s.size())) << round;
    ASSERT_EQ(impl(s), reference_valid(s)) << round;
  }
}

TEST_P(Utf8, NeverReadsPastTheEnd) {
  test::guarded_input g;
  for (std::string s : {std::string("\xe2\x82"), std::string("\xf0\x9f\x98"), std::string("\xc3"),
                        std::string(63, 'a') + "\xf0", std::string(200, 'a'),
                        std::string(100, 'x') + "\xe2\x82\xac"}) {
    std::string_view p = g.place(s);
    EXPECT_EQ(impl(p), reference_valid(s));
  }
}

}  // namespace
}  // namespace rc::utf8
