#include "proto/topic_pattern.h"

#include <gtest/gtest.h>

namespace rc::topic_pattern {
namespace {

TEST(TopicPattern, ExactNames) {
  EXPECT_TRUE(matches("news", "news"));
  EXPECT_TRUE(matches("chat.room1", "chat.room1"));
  EXPECT_FALSE(matches("chat.room1", "chat.room10"));
  EXPECT_FALSE(matches("chat.room1", "chat"));
  EXPECT_FALSE(matches("chat", "chat.room1"));
  EXPECT_FALSE(matches("News", "news"));  // case-sensitive
}

TEST(TopicPattern, StarIsExactlyOneSegment) {
  EXPECT_TRUE(matches("news.*", "news.sports"));
  EXPECT_FALSE(matches("news.*", "news"));
  EXPECT_FALSE(matches("news.*", "news.sports.eu"));
  EXPECT_TRUE(matches("*.eu", "sports.eu"));
  EXPECT_TRUE(matches("a.*.c", "a.b.c"));
  EXPECT_FALSE(matches("a.*.c", "a.b.d"));
  EXPECT_TRUE(matches("*", "anything:goes"));
  EXPECT_FALSE(matches("*", "two.segments"));
}

TEST(TopicPattern, GreaterThanIsOneOrMoreTrailingSegments) {
  EXPECT_TRUE(matches("news.>", "news.sports"));
  EXPECT_TRUE(matches("news.>", "news.sports.eu.today"));
  EXPECT_FALSE(matches("news.>", "news"));
  EXPECT_FALSE(matches("news.>", "newsroom.x"));
  EXPECT_TRUE(matches(">", "news"));
  EXPECT_TRUE(matches(">", "a.b.c"));
  EXPECT_TRUE(matches("*.>", "a.b"));
  EXPECT_FALSE(matches("*.>", "a"));
}

TEST(TopicPattern, CheckRejectsWhatCannotMatchAsWritten) {
  EXPECT_EQ(check("news.*"), "");
  EXPECT_EQ(check("news.>"), "");
  EXPECT_EQ(check(">"), "");
  EXPECT_EQ(check("a-b_c:d.E9"), "");
  EXPECT_NE(check(""), "");
  EXPECT_NE(check("news*"), "");      // not a prefix match
  EXPECT_NE(check("news.>.eu"), "");  // '>' only last
  EXPECT_NE(check("news.a>"), "");
  EXPECT_NE(check("news/x"), "");
  EXPECT_NE(check("news x"), "");
  EXPECT_NE(check(std::string(129, 'a')), "");
  EXPECT_EQ(check(std::string(128, 'a')), "");
}

TEST(TopicPattern, AnyMatches) {
  std::vector<std::string> p = {"news.*", "chat.room1"};
  EXPECT_TRUE(any_matches(p, "news.x"));
  EXPECT_TRUE(any_matches(p, "chat.room1"));
  EXPECT_FALSE(any_matches(p, "chat.room2"));
  EXPECT_FALSE(any_matches({}, "news.x"));
}

}  // namespace
}  // namespace rc::topic_pattern
