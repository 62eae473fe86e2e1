// JSON splicing: removing members by key and value, byte for byte otherwise.
#include <gtest/gtest.h>

#include <string>

#include "proto/json_splice.h"

namespace rc::json {
namespace {

std::string remove(std::string_view text, std::string_view key, std::string_view value) {
  byte_buffer b;
  if (!remove_member(text, key, value, b)) return "<not an object>";
  return std::string(b.view());
}

TEST(JsonSpliceRemove, RemovesAMemberWithItsSeparatorWherever) {
  EXPECT_EQ(remove(R"({"id":"c1","usage":null,"x":[1]})", "usage", "null"), R"({"id":"c1","x":[1]})");
  EXPECT_EQ(remove(R"({"id":"c1", "x":[1], "usage": null})", "usage", "null"), R"({"id":"c1", "x":[1]})");
  EXPECT_EQ(remove(R"({"usage":null,"id":"c1"})", "usage", "null"), R"({"id":"c1"})");
  EXPECT_EQ(remove(R"( { "usage" : null } )", "usage", "null"), R"( {  } )");
  EXPECT_EQ(remove(R"({"usage":null,"usage":null,"a":1})", "usage", "null"), R"({"a":1})");
  EXPECT_EQ(remove(R"({"a":1,"usage":null,"usage":null})", "usage", "null"), R"({"a":1})");
}

TEST(JsonSpliceRemove, KeepsOtherValuesNestedMembersAndBytes) {
  std::string_view usage = R"({"choices":[],"usage":{"total_tokens":3}})";
  EXPECT_EQ(remove(usage, "usage", "null"), usage);
  std::string_view nested = R"({"a":{"usage":null},"b":"usage:null", "c" : 1.50e0})";
  EXPECT_EQ(remove(nested, "usage", "null"), nested);
  EXPECT_EQ(remove(R"({"us\u0061ge":null,"b":2})", "usage", "null"), R"({"b":2})");
}

TEST(JsonSpliceRemove, TheLastCompactMemberTakesTheShortPathWithTheSameResult) {
  // What a relay sees on every chunk: the member last, compact, trailing whitespace kept.
  EXPECT_EQ(remove("{\"id\":\"c\",\"choices\":[{\"delta\":{}}],\"usage\":null}\n", "usage", "null"),
            "{\"id\":\"c\",\"choices\":[{\"delta\":{}}]}\n");
  // Not taken when the key appears again, nested or as a string: the scan decides.
  EXPECT_EQ(remove(R"({"a":{"usage":null},"usage":null})", "usage", "null"), R"({"a":{"usage":null}})");
  EXPECT_EQ(remove(R"({"a":"usage","usage":null})", "usage", "null"), R"({"a":"usage"})");
  EXPECT_EQ(remove(R"({"a":{"b":1,"usage":null}})", "usage", "null"), R"({"a":{"b":1,"usage":null}})");
  EXPECT_EQ(remove(R"({"a":"x\",\"usage\":null"})", "usage", "null"), R"({"a":"x\",\"usage\":null"})");
}

TEST(JsonSpliceRemove, RefusesWhatIsNotAnObject) {
  EXPECT_EQ(remove("[1,2]", "usage", "null"), "<not an object>");
  EXPECT_EQ(remove(R"({"a":1)", "usage", "null"), "<not an object>");
}

}  // namespace
}  // namespace rc::json
