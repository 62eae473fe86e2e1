#include "proto/json_reader.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

namespace rc::json {
namespace {

// Two pages, the second PROT_NONE: bytes placed to end exactly at the guard make any read
// past the end crash.
class guarded_page {
 public:
  guarded_page() {
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* m = mmap(nullptr, 2 * page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(m, MAP_FAILED);
    base_ = static_cast<char*>(m);
    EXPECT_EQ(mprotect(base_ + page_, page_, PROT_NONE), 0);
  }
  ~guarded_page() { munmap(base_, 2 * page_); }
  // Copies `s` so that it ends `slack` bytes before the guard page; returns its start.
  const char* place(std::string_view s, size_t slack) {
    char* p = base_ + page_ - slack - s.size();
    std::memcpy(p, s.data(), s.size());
    std::memset(p + s.size(), ' ', slack);
    return p;
  }

 private:
  size_t page_ = 0;
  char* base_ = nullptr;
};

TEST(JsonReader, ParsesInPlaceOnlyWithEnoughSlack) {
  parser p;
  std::string doc = R"({"a":[1,2,3]})";
  guarded_page g;
  const char* exact = g.place(doc, 0);
  parse_result r = p.parse(exact, doc.size(), doc.size());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(p.parsed_copied(), doc.size());
  EXPECT_EQ(p.parsed_in_place(), 0u);
  EXPECT_EQ(r.root.find("a").size(), 3u);

  const char* padded = g.place(doc, padding_bytes);
  r = p.parse(padded, doc.size(), doc.size() + padding_bytes);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(p.parsed_in_place(), doc.size());

  // One byte short of the padding: must copy rather than read into the guard page.
  const char* short_slack = g.place(doc, padding_bytes - 1);
  r = p.parse(short_slack, doc.size(), doc.size() + padding_bytes - 1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(p.parsed_copied(), 2 * doc.size());
}

TEST(JsonReader, EveryTruncationOfADocumentIsAnErrorNotACrash) {
  std::string doc =
      R"({"model":"m","messages":[{"role":"user","content":"h\u00e9llo"}],"n":1.5e3})";
  parser p;
  guarded_page g;
  for (size_t n = 0; n < doc.size(); ++n) {
    std::string_view prefix(doc.data(), n);
    const char* at = g.place(prefix, 0);
    parse_result r = p.parse(at, n, n);
    EXPECT_FALSE(r.ok()) << n;
    EXPECT_FALSE(r.message.empty());
  }
  EXPECT_TRUE(p.parse(doc).ok());
}

TEST(JsonReader, ReportsStatusesWithMessages) {
  parser p;
  EXPECT_EQ(p.parse("").status, parse_status::empty);
  EXPECT_EQ(p.parse("  \n").status, parse_status::empty);
  EXPECT_EQ(p.parse("{\"a\":}").status, parse_status::invalid_json);
  EXPECT_EQ(p.parse("{\"a\":1}x").status, parse_status::invalid_json);
  EXPECT_EQ(p.parse("\"\xff\"").status, parse_status::invalid_utf8);
  EXPECT_EQ(p.parse("\"\\ud800\"").status, parse_status::invalid_string);
  EXPECT_EQ(p.parse("\"a\x01\"").status, parse_status::invalid_string);
  EXPECT_EQ(p.parse("123456789012345678901234567890").status, parse_status::invalid_number);
  EXPECT_EQ(p.parse("1e400").status, parse_status::invalid_number);
  EXPECT_EQ(p.parse("01").status, parse_status::invalid_number);
  parse_result r = p.parse("[1,");
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.message.empty());
}

TEST(JsonReader, NumberKinds) {
  parser p;
  parse_result r = p.parse("[-1, 9223372036854775807, 18446744073709551615, 2.0, 1e-400, -0]");
  ASSERT_TRUE(r.ok());
  std::vector<value> v;
  for (value x : r.root.elements()) v.push_back(x);
  ASSERT_EQ(v.size(), 6u);
  EXPECT_EQ(v[0].kind(), kind::int64);
  EXPECT_EQ(v[0].get_int64(), -1);
  EXPECT_EQ(v[1].get_int64(), INT64_MAX);
  EXPECT_EQ(v[2].kind(), kind::uint64);
  EXPECT_EQ(v[2].get_uint64(), UINT64_MAX);
  EXPECT_EQ(v[3].kind(), kind::number);
  EXPECT_EQ(v[3].get_double(), 2.0);
  EXPECT_EQ(v[4].get_double(), 0.0);
  EXPECT_EQ(v[5].kind(), kind::int64);
  EXPECT_TRUE(v[2].is_number());
}

TEST(JsonReader, DepthLimitCountsLevelsOfValues) {
  parse_limits limits;
  limits.depth_max = 3;
  parser p(limits);
  EXPECT_TRUE(p.parse("1").ok());
  EXPECT_TRUE(p.parse("[[[]]]").ok());
  EXPECT_TRUE(p.parse("[[1]]").ok());
  EXPECT_TRUE(p.parse("{\"a\":{\"b\":1}}").ok());
  EXPECT_EQ(p.parse("[[[1]]]").status, parse_status::too_deep);
  EXPECT_EQ(p.parse("[[[[]]]]").status, parse_status::too_deep);
  EXPECT_EQ(p.parse("{\"a\":{\"b\":[1]}}").status, parse_status::too_deep);
}

TEST(JsonReader, HostileNestingIsRejectedWithoutRecursion) {
  parser p;  // default depth_max 128
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  EXPECT_EQ(p.parse(deep).status, parse_status::too_deep);
  std::string ok(128, '[');  // 128 levels: the innermost array is empty
  ok += std::string(128, ']');
  parse_result r = p.parse(ok);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.root.to_json(), ok);  // re-encoding recurses, bounded by depth_max
}

TEST(JsonReader, SizeLimit) {
  parse_limits limits;
  limits.document_bytes_max = 16;
  parser p(limits);
  EXPECT_TRUE(p.parse("[1,2,3,4,5,6,7]").ok());
  parse_result r = p.parse("[1,2,3,4,5,6,7,8]");
  EXPECT_EQ(r.status, parse_status::too_large);
  EXPECT_FALSE(r.message.empty());
}

TEST(JsonReader, ShrinksAfterALargeDocumentAndKeepsWorking) {
  parse_limits limits;
  limits.retained_bytes_max = 4096;
  parser p(limits);
  std::string big = "[";
  for (int i = 0; i < 20000; ++i) big += "1,";
  big += "1]";
  parse_result r = p.parse(big);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.root.size(), 20001u);
  r = p.parse("{\"x\":\"y\"}");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.root.find("x").get_string(), "y");
}

TEST(JsonReader, DuplicateKeysAreKeptAndTheLastWins) {
  parser p;
  parse_result r = p.parse(R"({"a":1,"b":2,"a":3})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.root.find("a").get_int64(), 3);
  EXPECT_FALSE(r.root.find("missing"));
  std::string keys;
  for (member m : r.root.members()) keys.append(m.key);
  EXPECT_EQ(keys, "aba");
  EXPECT_EQ(r.root.size(), 3u);
}

TEST(JsonReader, ValueAccessorsAndReencoding) {
  parser p;
  parse_result r = p.parse(
      " { \"s\" : \"\\u00e9\\n\\\"\", \"t\": true, \"f\": false, \"n\": null,"
      " \"a\": [ 1 , 2.5 , {\"k\": []} ], \"e\": {} } ");
  ASSERT_TRUE(r.ok());
  const value& root = r.root;
  EXPECT_TRUE(root.is_object());
  EXPECT_EQ(root.find("s").get_string(), "\xC3\xA9\n\"");
  EXPECT_TRUE(root.find("t").get_bool());
  EXPECT_FALSE(root.find("f").get_bool());
  EXPECT_TRUE(root.find("n").is_null());
  EXPECT_EQ(root.find("a").size(), 3u);
  EXPECT_EQ(root.find("e").size(), 0u);
  EXPECT_EQ(root.to_json(),
            "{\"s\":\"\xC3\xA9\\n\\\"\",\"t\":true,\"f\":false,\"n\":null,\"a\":[1,2.5,{\"k\":[]}],"
            "\"e\":{}}");
  // Re-encoding is idempotent.
  std::string once = root.to_json();
  parse_result again = p.parse(once);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.root.to_json(), once);
}

TEST(JsonReader, ValuesFromAnEarlierParseAreIndependentOfTheInputBuffer) {
  parser p;
  std::string doc = R"({"k":"value"})";
  parse_result r = p.parse(doc.data(), doc.size(), doc.size());
  ASSERT_TRUE(r.ok());
  std::fill(doc.begin(), doc.end(), 'x');
  EXPECT_EQ(r.root.find("k").get_string(), "value");
}

using JsonReaderDeathTest = ::testing::Test;

TEST(JsonReaderDeathTest, TypedAccessorsCheckTheKind) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        parser p;
        (void)p.parse("\"s\"").root.get_int64();
      },
      "assertion failed");
  EXPECT_DEATH(
      {
        value v;
        (void)v.kind();
      },
      "assertion failed");
}

}  // namespace
}  // namespace rc::json
