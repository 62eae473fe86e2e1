// targets: several --target servers, connection n to target n % K, the publisher's own target.
#include "load/targets.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace rc::load {
namespace {

TEST(Targets, DefaultIsTheSingleTarget) {
  load_options o;
  o.target = "127.0.0.1:9000";
  ASSERT_EQ(resolve_targets(o), "");
  ASSERT_EQ(o.targets.size(), 1u);
  EXPECT_EQ(target_for(o, 0).text, "127.0.0.1:9000");
  EXPECT_EQ(target_for(o, 12345).text, "127.0.0.1:9000");
  EXPECT_EQ(o.host_header, "127.0.0.1:9000");
  EXPECT_EQ(o.pub_target_address.text, "127.0.0.1:9000");
  EXPECT_TRUE(all_loopback(o));
}

TEST(Targets, ConnectionsAreSpreadEvenlyOverTargets) {
  load_options o;
  o.targets = {"127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"};
  ASSERT_EQ(resolve_targets(o), "");
  EXPECT_EQ(o.target, "127.0.0.1:9001");
  EXPECT_EQ(o.host_header, "127.0.0.1:9001");
  std::map<std::string, int> per;
  for (uint32_t n = 0; n < 100; ++n) ++per[target_for(o, n).text];
  ASSERT_EQ(per.size(), 3u);
  EXPECT_EQ(per["127.0.0.1:9001"], 34);
  EXPECT_EQ(per["127.0.0.1:9002"], 33);
  EXPECT_EQ(per["127.0.0.1:9003"], 33);
  EXPECT_EQ(target_for(o, 4).text, "127.0.0.1:9002");
}

TEST(Targets, PublisherTargetDefaultsToTheFirstAndCanBeAnother) {
  load_options o;
  o.targets = {"127.0.0.1:9001", "127.0.0.1:9002"};
  o.pub_target = "127.0.0.1:9002";
  ASSERT_EQ(resolve_targets(o), "");
  EXPECT_EQ(o.pub_target_address.text, "127.0.0.1:9002");
}

TEST(Targets, RefusesAMissingPortOrABadAddress) {
  load_options a;
  a.targets = {"127.0.0.1:9001", "127.0.0.1:0"};
  EXPECT_NE(resolve_targets(a).find("--target"), std::string::npos);
  load_options b;
  b.targets = {"not an address"};
  EXPECT_NE(resolve_targets(b), "");
  load_options c;
  c.pub_target = "127.0.0.1";
  EXPECT_NE(resolve_targets(c).find("--pub-target"), std::string::npos);
}

TEST(Targets, LoopbackOnlyWhenEveryTargetIs) {
  load_options o;
  o.targets = {"127.0.0.1:9001", "10.0.0.1:9002"};
  ASSERT_EQ(resolve_targets(o), "");
  EXPECT_FALSE(all_loopback(o));
  load_options p;
  p.targets = {"127.0.0.1:9001"};
  p.pub_target = "10.0.0.1:9002";
  ASSERT_EQ(resolve_targets(p), "");
  EXPECT_FALSE(all_loopback(p));
}

}  // namespace
}  // namespace rc::load
