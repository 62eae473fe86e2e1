#include "proto/json_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "proto/json_reader.h"

namespace rc::json {
namespace {

std::string encoded(std::string_view s) {
  byte_buffer b;
  write_string(b, s);
  return std::string(b.view());
}

std::string number(double d) {
  byte_buffer b;
  write_double(b, d);
  return std::string(b.view());
}

std::string number(float f) {
  byte_buffer b;
  write_float(b, f);
  return std::string(b.view());
}

// A deliberately simple, byte-at-a-time implementation of the same escaping and U+FFFD
// replacement rules (maximal subparts), to compare the SIMD fast path against.
std::string reference_quoted(std::string_view s) {
  std::string out = "\"";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20) {
      const char* named = c == '\b'   ? "\\b"
                          : c == '\f' ? "\\f"
                          : c == '\n' ? "\\n"
                          : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t"
                                      : nullptr;
      if (named) {
        out += named;
      } else {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      }
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else {
      size_t len = c >= 0xC2 && c <= 0xDF   ? 2
                   : c >= 0xE0 && c <= 0xEF ? 3
                   : c >= 0xF0 && c <= 0xF4 ? 4
                                            : 0;
      unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
      unsigned char hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
      size_t ok = 0;  // bytes of the sequence that are valid so far
      if (len > 0) {
        ok = 1;
        if (i + 1 < n && p[i + 1] >= lo && p[i + 1] <= hi) {
          ok = 2;
          while (ok < len && i + ok < n && (p[i + ok] & 0xC0) == 0x80) ++ok;
        }
      }
      if (len > 0 && ok == len) {
        out.append(s.substr(i, len));
        i += len;
      } else {
        out += "\xEF\xBF\xBD";
        i += ok == 0 ? 1 : ok;
      }
    }
  }
  out += '"';
  return out;
}

TEST(JsonWriter, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(encoded(""), "\"\"");
  EXPECT_EQ(encoded("plain / text"), "\"plain / text\"");
  EXPECT_EQ(encoded("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(encoded("\b\f\n\r\t"), "\"\\b\\f\\n\\r\\t\"");
  EXPECT_EQ(encoded(std::string_view("\x00\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\x7f\"");
}

TEST(JsonWriter, PassesValidUtf8Through) {
  EXPECT_EQ(encoded("caf\xC3\xA9"), "\"caf\xC3\xA9\"");              // 2 bytes
  EXPECT_EQ(encoded("\xE2\x82\xAC 5"), "\"\xE2\x82\xAC 5\"");        // 3 bytes
  EXPECT_EQ(encoded("\xF0\x9F\x98\x80!"), "\"\xF0\x9F\x98\x80!\"");  // 4 bytes
  EXPECT_EQ(encoded("\xF4\x8F\xBF\xBF"), "\"\xF4\x8F\xBF\xBF\"");    // U+10FFFF
  EXPECT_EQ(encoded("\xED\x9F\xBF"), "\"\xED\x9F\xBF\"");            // U+D7FF
}

TEST(JsonWriter, ReplacesInvalidUtf8ByMaximalSubparts) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(encoded("\x80"), "\"" + r + "\"");  // lone continuation
  EXPECT_EQ(encoded("a\xFF"
                    "b"),
            "\"a" + r + "b\"");                                         // never valid
  EXPECT_EQ(encoded("\xC0\x80"), "\"" + r + r + "\"");                  // overlong NUL
  EXPECT_EQ(encoded("\xE0\x80\x80"), "\"" + r + r + r + "\"");          // overlong 3-byte
  EXPECT_EQ(encoded("\xED\xA0\x80"), "\"" + r + r + r + "\"");          // surrogate U+D800
  EXPECT_EQ(encoded("\xF4\x90\x80\x80"), "\"" + r + r + r + r + "\"");  // above U+10FFFF
  EXPECT_EQ(encoded("\xE2\x82"
                    "A"),
            "\"" + r + "A\"");                          // truncated: one U+FFFD
  EXPECT_EQ(encoded("\xF0\x9F\x98"), "\"" + r + "\"");  // truncated at the end
  EXPECT_EQ(encoded("\xF5\x80"), "\"" + r + r + "\"");
}

TEST(JsonWriter, SimdPathMatchesReferenceAtEveryOffset) {
  const std::string specials[] = {"\"",   "\\",       "\n",           std::string(1, '\0'),
                                  "\x1f", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80",
                                  "\xFF", "\xE2\x82"};
  for (const std::string& special : specials) {
    for (size_t pos = 0; pos < 40; ++pos) {
      for (size_t tail = 0; tail < 20; tail += 7) {
        std::string s(pos, 'a');
        s += special;
        s.append(tail, 'b');
        ASSERT_EQ(encoded(s), reference_quoted(s)) << "pos " << pos << " tail " << tail;
      }
    }
  }
}

TEST(JsonWriter, RandomBytesAlwaysGiveValidJson) {
  std::mt19937 rng(12345);
  parser p;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string s(rng() % 80, '\0');
    for (char& c : s) {
      // Bias towards the interesting bytes: controls, quotes, UTF-8 leads and continuations.
      unsigned r = rng() % 8;
      c = static_cast<char>(r < 3   ? 0x20 + rng() % 0x60
                            : r < 6 ? 0x80 + rng() % 0x80
                                    : rng() % 256);
    }
    std::string out = encoded(s);
    ASSERT_EQ(out, reference_quoted(s));
    ASSERT_EQ(out.find('\n'), std::string::npos);
    parse_result r = p.parse(out);
    ASSERT_TRUE(r.ok()) << r.message;
    ASSERT_TRUE(r.root.is_string());
  }
}

TEST(JsonWriter, ValidStringsRoundTripThroughTheParser) {
  std::string s;
  for (int c = 1; c < 0x80; ++c) s += static_cast<char>(c);
  s += "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
  s += std::string("nul\0byte", 8);
  parser p;
  parse_result r = p.parse(encoded(s));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.root.get_string(), s);
}

TEST(JsonWriter, IntegersAreExact) {
  byte_buffer b;
  write_int64(b, std::numeric_limits<int64_t>::min());
  b.push_back(' ');
  write_int64(b, std::numeric_limits<int64_t>::max());
  b.push_back(' ');
  write_uint64(b, std::numeric_limits<uint64_t>::max());
  b.push_back(' ');
  write_int64(b, 0);
  EXPECT_EQ(b.view(), "-9223372036854775808 9223372036854775807 18446744073709551615 0");
}

TEST(JsonWriter, DoublesAreShortestAndReadAsDecimals) {
  EXPECT_EQ(number(0.1), "0.1");
  EXPECT_EQ(number(1.0), "1.0");
  EXPECT_EQ(number(2.0), "2.0");
  EXPECT_EQ(number(-0.0), "-0.0");
  EXPECT_EQ(number(0.7), "0.7");
  EXPECT_EQ(number(1e21), "1e+21");
  EXPECT_EQ(number(123456789012.0), "123456789012.0");
  EXPECT_EQ(number(5e-324), "5e-324");
  EXPECT_EQ(number(1.7976931348623157e308), "1.7976931348623157e+308");
  EXPECT_EQ(number(std::nan("")), "null");
  EXPECT_EQ(number(std::numeric_limits<double>::infinity()), "null");
  EXPECT_EQ(number(-std::numeric_limits<double>::infinity()), "null");
  EXPECT_EQ(number(0.1f), "0.1");
  EXPECT_EQ(number(0.0023064255f), "0.0023064255");
  EXPECT_EQ(number(1.0f), "1.0");
  EXPECT_EQ(number(std::numeric_limits<float>::quiet_NaN()), "null");
}

TEST(JsonWriter, RandomDoublesRoundTripBitExactly) {
  std::mt19937_64 rng(99);
  parser p;
  for (int i = 0; i < 20000; ++i) {
    uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, sizeof d);
    if (!std::isfinite(d)) continue;
    std::string text = number(d);
    parse_result r = p.parse(text);
    ASSERT_TRUE(r.ok()) << text;
    double back = r.root.get_double();
    ASSERT_EQ(std::memcmp(&back, &d, sizeof d), 0) << text;
  }
}

TEST(JsonWriter, RandomFloatsRoundTrip) {
  std::mt19937 rng(7);
  parser p;
  for (int i = 0; i < 20000; ++i) {
    uint32_t bits = rng();
    float f;
    std::memcpy(&f, &bits, sizeof f);
    if (!std::isfinite(f)) continue;
    std::string text = number(f);
    parse_result r = p.parse(text);
    ASSERT_TRUE(r.ok()) << text;
    ASSERT_EQ(static_cast<float>(r.root.get_double()), f) << text;
  }
}

TEST(JsonWriter, PutsCommasAndColonsInPlace) {
  byte_buffer b;
  writer w(b);
  w.begin_object();
  w.string_member("a", "x");
  w.key("b");
  w.begin_array();
  w.int64(1);
  w.uint64(2);
  w.float64(0.5);
  w.boolean(true);
  w.null();
  w.begin_object();
  w.end_object();
  w.begin_array();
  w.end_array();
  w.raw("{\"r\":[1]}");
  w.end_array();
  w.boolean_member("c", false);
  w.null_member("d");
  w.raw_member("e", "[]");
  w.float64_member("f", 2);
  w.end_object();
  EXPECT_TRUE(w.complete());
  EXPECT_EQ(b.view(),
            "{\"a\":\"x\",\"b\":[1,2,0.5,true,null,{},[],{\"r\":[1]}],\"c\":false,\"d\":null,"
            "\"e\":[],\"f\":2.0}");
}

TEST(JsonWriter, EscapesKeys) {
  byte_buffer b;
  writer w(b);
  w.begin_object();
  w.int64_member("k\"\n", 1);
  w.end_object();
  EXPECT_EQ(b.view(), "{\"k\\\"\\n\":1}");
}

TEST(JsonWriter, CompleteOnlyAfterOneClosedValue) {
  byte_buffer b;
  writer w(b);
  EXPECT_FALSE(w.complete());
  w.begin_array();
  EXPECT_FALSE(w.complete());
  w.end_array();
  EXPECT_TRUE(w.complete());
}

using JsonWriterDeathTest = ::testing::Test;

TEST(JsonWriterDeathTest, MisuseStopsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto value_without_key = [] {
    byte_buffer b;
    writer w(b);
    w.begin_object();
    w.int64(1);
  };
  EXPECT_DEATH(value_without_key(), "assertion failed");
  auto key_in_array = [] {
    byte_buffer b;
    writer w(b);
    w.begin_array();
    w.key("k");
  };
  EXPECT_DEATH(key_in_array(), "assertion failed");
  auto mismatched_end = [] {
    byte_buffer b;
    writer w(b);
    w.begin_object();
    w.end_array();
  };
  EXPECT_DEATH(mismatched_end(), "assertion failed");
  auto dangling_key = [] {
    byte_buffer b;
    writer w(b);
    w.begin_object();
    w.key("k");
    w.end_object();
  };
  EXPECT_DEATH(dangling_key(), "assertion failed");
  auto two_values = [] {
    byte_buffer b;
    writer w(b);
    w.int64(1);
    w.int64(2);
  };
  EXPECT_DEATH(two_values(), "assertion failed");
  auto too_deep = [] {
    byte_buffer b;
    writer w(b);
    for (int i = 0; i <= writer_depth_max; ++i) w.begin_array();
  };
  EXPECT_DEATH(too_deep(), "assertion failed");
}

}  // namespace
}  // namespace rc::json
