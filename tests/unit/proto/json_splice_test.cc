// JSON splicing: member scan boundaries, key matching, byte-preserving rewrites.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proto/json_splice.h"

namespace rc::json {
namespace {

std::string rewrite(std::string_view text, std::vector<member_edit> edits) {
  byte_buffer b;
  if (!rewrite_object(text, edits, b)) return "<not an object>";
  return std::string(b.view());
}

TEST(JsonSplice, ScansMembersWithNestedValuesAndEscapes) {
  std::string_view text = R"( { "a" : [1, {"x":"]}"}], "b\"c":"q\\\"}" ,"d":-1.5e3,"e":null} )";
  std::vector<member_span> m;
  size_t close = 0;
  ASSERT_TRUE(scan_object(text, m, close));
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0].key, "a");
  EXPECT_EQ(text.substr(m[0].value_begin, m[0].value_end - m[0].value_begin), R"([1, {"x":"]}"}])");
  EXPECT_EQ(m[1].key, R"(b\"c)");
  EXPECT_EQ(text.substr(m[1].value_begin, m[1].value_end - m[1].value_begin), R"("q\\\"}")");
  EXPECT_EQ(text.substr(m[2].value_begin, m[2].value_end - m[2].value_begin), "-1.5e3");
  EXPECT_EQ(text[close], '}');
}

TEST(JsonSplice, BackslashRunsBeforeQuotes) {
  // An even run of backslashes leaves the quote closing the string; an odd run escapes it.
  std::string_view text = R"({"a":"x\\","b":"y\\\"}","c":[{"d":"\\"}],"e":1})";
  std::vector<member_span> m;
  size_t close = 0;
  ASSERT_TRUE(scan_object(text, m, close));
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(text.substr(m[0].value_begin, m[0].value_end - m[0].value_begin), R"("x\\")");
  EXPECT_EQ(text.substr(m[1].value_begin, m[1].value_end - m[1].value_begin), R"("y\\\"}")");
  EXPECT_EQ(text.substr(m[2].value_begin, m[2].value_end - m[2].value_begin), R"([{"d":"\\"}])");
  EXPECT_EQ(m[3].key, "e");
}

TEST(JsonSplice, RejectsWhatIsNotAnObject) {
  std::vector<member_span> m;
  size_t close = 0;
  for (std::string_view bad : {"", "[]", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{a:1}",
                               "{\"a\":1} x", "{\"a\":\"unterminated}", "{\"a\":[1}"}) {
    EXPECT_FALSE(scan_object(bad, m, close)) << bad;
  }
  EXPECT_TRUE(scan_object("{}", m, close));
  EXPECT_TRUE(m.empty());
}

TEST(JsonSplice, KeysCompareUnescaped) {
  EXPECT_TRUE(key_equals("model", "model"));
  EXPECT_TRUE(key_equals(R"(mod\u0065l)", "model"));
  EXPECT_TRUE(key_equals(R"(\u006D\u006f\u0064el)", "model"));
  EXPECT_FALSE(key_equals(R"(mod\u00e9l)", "model"));
  EXPECT_FALSE(key_equals("models", "model"));
  EXPECT_FALSE(key_equals("mode", "model"));
  EXPECT_FALSE(key_equals(R"(mode\)", "model"));
}

TEST(JsonSplice, RewriteReplacesEveryDuplicateAndKeepsTheRestByteForByte) {
  std::string_view body = "{\"model\" : \"a\",\n \"x\":1.50, \"model\":\"b\", \"y\":{\"model\":\"c\"}}";
  EXPECT_EQ(rewrite(body, {{.key = "model", .value = "\"m\""}}),
            "{\"model\" : \"m\",\n \"x\":1.50, \"model\":\"m\", \"y\":{\"model\":\"c\"}}");
}

TEST(JsonSplice, RewriteAppendsAbsentMembers) {
  EXPECT_EQ(rewrite(R"({"a":1})", {{.key = "b", .value = "true"}}), R"({"a":1,"b":true})");
  EXPECT_EQ(rewrite("{ }", {{.key = "b", .value = "true"}}), R"({ "b":true})");
  EXPECT_EQ(rewrite(R"({"a":1 } )", {{.key = "b", .value = "2"}, {.key = "c", .value = "3"}}),
            R"({"a":1 ,"b":2,"c":3} )");
  EXPECT_EQ(rewrite(R"({"a":1})", {{.key = "b", .value = "2", .append_if_absent = false}}),
            R"({"a":1})");
  EXPECT_EQ(rewrite("[1]", {{.key = "b", .value = "2"}}), "<not an object>");
}

TEST(JsonSplice, FindMemberReturnsTheLastDuplicate) {
  EXPECT_EQ(find_member(R"({"a":1,"a":[2]})", "a"), "[2]");
  EXPECT_EQ(find_member(R"({"a":1})", "b"), std::nullopt);
}

}  // namespace
}  // namespace rc::json
