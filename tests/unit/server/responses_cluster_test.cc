#include "server/responses_cluster.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server/metrics.h"

namespace rc::server {
namespace {

TEST(ResponsesCluster, HomeIsTheEncodedShardModuloThisNodesShards) {
  EXPECT_EQ(response_home("resp_0_0123456789abcdef", 4), 0);
  EXPECT_EQ(response_home("resp_3_0123456789abcdef", 4), 3);
  // Minted on a node with more shards: still found here, on a shard of this node.
  EXPECT_EQ(response_home("resp_7_0123456789abcdef", 4), 3);
  EXPECT_EQ(response_home("resp_7_0123456789abcdef", 1), 0);
}

TEST(ResponsesCluster, IdsOfOtherShapesHaveNoHome) {
  for (const char* id :
       {"", "resp_", "resp_1", "resp_1_", "resp_x_0123456789abcdef", "resp_1_0123456789abcde",
        "resp_1_0123456789abcdef0", "msg_1_0123456789abcdef", "resp_99999999_0123456789abcdef"}) {
    EXPECT_EQ(response_home(id, 4), -1) << id;
  }
  EXPECT_EQ(response_home("resp_1_0123456789abcdef", 0), -1);
}

TEST(ResponsesCluster, NatsUnavailableIsA503ServerError) {
  openai::api_error e = responses_nats_unavailable();
  EXPECT_EQ(e.status, 503);
  EXPECT_EQ(e.type, "server_error");
  EXPECT_EQ(e.code, "nats_unavailable");
}

TEST(ResponsesCluster, CountersMergeAndRenderPerShard) {
  std::vector<shard_metrics> shards(2);
  byte_buffer none;
  render_responses_kv_metrics(shards, none);
  EXPECT_EQ(none.view(), "") << "nothing without --nats";
  for (auto& s : shards) s.cluster.enabled = true;
  shards[0].responses_kv.hits = 3;
  shards[1].responses_kv.write_errors = 2;
  shards[1].responses_kv.writes_too_large = 1;
  shard_metrics total;
  for (const auto& s : shards) total.merge(s);
  EXPECT_EQ(total.responses_kv.hits, 3u);
  EXPECT_EQ(total.responses_kv.write_errors, 2u);
  byte_buffer out;
  render_responses_kv_metrics(shards, out);
  std::string text(out.view());
  EXPECT_NE(text.find("# TYPE ringcast_responses_kv_lookups_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("ringcast_responses_kv_lookups_total{shard=\"0\",result=\"hit\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("ringcast_responses_kv_lookups_total{shard=\"1\",result=\"hit\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("ringcast_responses_kv_writes_total{shard=\"1\",result=\"error\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("ringcast_responses_kv_writes_total{shard=\"1\",result=\"too_large\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("ringcast_responses_kv_deletes_total{shard=\"0\",result=\"ok\"} 0\n"),
            std::string::npos);
  EXPECT_EQ(text.find("shard=\"all\""), std::string::npos);
}

}  // namespace
}  // namespace rc::server
