// input_buffer: consuming from the front keeps the rest intact and in order, padding stays
// available after the data, and a long backlog consumed piece by piece is not moved per piece.
#include "base/input_buffer.h"

#include <gtest/gtest.h>

#include <string>

namespace rc {
namespace {

std::string_view view(const input_buffer& b) {
  return {b.data(), b.size()};
}

TEST(InputBuffer, ConsumesFromTheFrontAndKeepsPadding) {
  input_buffer b;
  EXPECT_TRUE(b.empty());
  b.append("GET /a\r\n\r\nGET /b\r\n\r\n", 20, 64);
  EXPECT_GE(b.capacity(), b.size() + 64);
  b.consume(10);
  EXPECT_EQ(view(b), "GET /b\r\n\r\n");
  EXPECT_GE(b.capacity(), b.size() + 64);
  b.append("GET /c", 6, 64);
  EXPECT_EQ(view(b), "GET /b\r\n\r\nGET /c");
  EXPECT_GE(b.capacity(), b.size() + 64);
  b.consume(b.size());
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.size(), 0u);
  b.release_if_empty();
  EXPECT_EQ(b.capacity(), 0u);
}

TEST(InputBuffer, ReleaseKeepsUnconsumedInput) {
  input_buffer b;
  b.append("abc", 3, 0);
  b.consume(1);
  b.release_if_empty();
  EXPECT_EQ(view(b), "bc");
}

TEST(InputBuffer, TakeHandsOverTheRest) {
  input_buffer b;
  b.append("hello world", 11, 8);
  b.consume(6);
  byte_buffer rest = b.take();
  EXPECT_EQ(rest.view(), "world");
  EXPECT_TRUE(b.empty());
}

// A megabyte backlog consumed 100 bytes at a time, with input arriving in between: the data stay
// right, and the data pointer only moves back to the storage's start now and then (compaction),
// not on every consume.
TEST(InputBuffer, BacklogConsumedPieceByPieceStaysCorrect) {
  input_buffer b;
  std::string expect;
  uint64_t next = 0;
  auto feed = [&](size_t n) {
    std::string chunk;
    for (size_t i = 0; i < n; ++i) chunk.push_back(static_cast<char>('a' + (next++ % 26)));
    b.append(chunk.data(), chunk.size(), 32);
    expect += chunk;
  };
  feed(1 << 20);
  size_t moves = 0;
  for (int i = 0; i < 20000; ++i) {
    const char* before = b.data();
    b.consume(100);
    expect.erase(0, 100);
    if (i % 10 == 0) feed(500);
    if (b.data() != before + 100) ++moves;
    ASSERT_EQ(b.size(), expect.size());
    ASSERT_EQ(b.data()[0], expect[0]);
    ASSERT_GE(b.capacity(), b.size() + 32);
  }
  EXPECT_EQ(view(b), expect);
  EXPECT_LT(moves, 200u);  // compactions and growth only
}

}  // namespace
}  // namespace rc
