// seq_tracker: dense numbering (one node) sees gaps at once; sparse numbering (a cluster's
// shared stream) needs only increasing numbers and counts what is missing at the end.
#include <gtest/gtest.h>

#include "load/fanout.h"

namespace rc::load {
namespace {

using verdict = seq_tracker::verdict;

TEST(SeqTracker, DenseAcceptsConsecutiveNumbers) {
  seq_tracker t;
  uint64_t missing = 99;
  for (uint64_t s = 1; s <= 5; ++s) EXPECT_EQ(t.accept(s, false, missing), verdict::ok);
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(t.last(), 5u);
  EXPECT_EQ(t.received(), 5u);
  EXPECT_EQ(t.shortfall(5, 5, false), 0u);
}

TEST(SeqTracker, DenseReportsAGapAndItsSize) {
  seq_tracker t;
  uint64_t missing = 0;
  EXPECT_EQ(t.accept(1, false, missing), verdict::ok);
  EXPECT_EQ(t.accept(4, false, missing), verdict::gap);
  EXPECT_EQ(missing, 2u);
  EXPECT_EQ(t.accept(5, false, missing), verdict::ok);
  EXPECT_EQ(t.last(), 5u);
}

TEST(SeqTracker, RepeatsAndOlderNumbersAreDuplicatesAndChangeNothing) {
  for (bool sparse : {false, true}) {
    seq_tracker t;
    uint64_t missing = 0;
    EXPECT_EQ(t.accept(1, sparse, missing), verdict::ok);
    EXPECT_EQ(t.accept(2, sparse, missing), verdict::ok);
    EXPECT_EQ(t.accept(2, sparse, missing), verdict::duplicate);
    EXPECT_EQ(t.accept(1, sparse, missing), verdict::duplicate);
    EXPECT_EQ(t.last(), 2u);
    EXPECT_EQ(t.received(), 2u);
  }
}

TEST(SeqTracker, SparseAcceptsIncreasingNumbersWithHoles) {
  seq_tracker t;
  uint64_t missing = 99;
  EXPECT_EQ(t.accept(1041, true, missing), verdict::ok);
  EXPECT_EQ(t.accept(1090, true, missing), verdict::ok);
  EXPECT_EQ(t.accept(2000, true, missing), verdict::ok);
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(t.received(), 3u);
}

TEST(SeqTracker, ShortfallDenseIsTheDistanceToTheLastPublication) {
  seq_tracker t;
  uint64_t missing = 0;
  t.accept(1, false, missing);
  t.accept(2, false, missing);
  EXPECT_EQ(t.shortfall(7, 7, false), 5u);
  EXPECT_EQ(t.shortfall(2, 2, false), 0u);
}

TEST(SeqTracker, ShortfallSparseCountsPublicationsNotReceived) {
  seq_tracker t;
  uint64_t missing = 0;
  t.accept(100, true, missing);
  t.accept(300, true, missing);
  // Three were published (100, 200, 300): one never arrived although the last did.
  EXPECT_EQ(t.shortfall(300, 3, true), 1u);
  EXPECT_EQ(t.shortfall(300, 2, true), 0u);
  // A hole in the numbers is not a loss when sparse.
  EXPECT_EQ(t.shortfall(300, 2, false), 0u);
  EXPECT_EQ(t.shortfall(301, 2, false), 1u);
}

}  // namespace
}  // namespace rc::load
