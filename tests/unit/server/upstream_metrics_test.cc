// Upstream metrics: entries found by name, merged across shards, rendered as totals.
#include "server/upstream_metrics.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server/metrics.h"

namespace rc::server {
namespace {

TEST(UpstreamMetrics, IndexIsStableAndFoundByName) {
  std::vector<upstream_metrics> all;
  EXPECT_EQ(upstream_metrics_index(all, "a"), 0u);
  EXPECT_EQ(upstream_metrics_index(all, "b"), 1u);
  EXPECT_EQ(upstream_metrics_index(all, "a"), 0u);
  EXPECT_EQ(all.size(), 2u);
}

TEST(UpstreamMetrics, ShardsMergeByNameAndRenderTotals) {
  std::vector<shard_metrics> shards(2);
  for (size_t s = 0; s < shards.size(); ++s) {
    upstream_metrics& u = shards[s].upstreams[upstream_metrics_index(shards[s].upstreams, "gpu\"pool")];
    u.requests = 3;
    u.retries = s;
    u.errors[static_cast<size_t>(upstream_error_kind::http_429)] = 2;
    u.first_token.observe_us(700);
    upstream_endpoint_metrics& e = u.endpoint("http://127.0.0.1:8000/v1");
    e.requests = 3;
    e.breaker_open = s == 1;
    e.idle = 2;
  }
  byte_buffer out;
  render_upstream_metrics(shards, out);
  std::string text(out.view());
  EXPECT_NE(text.find("ringcast_upstream_requests_total{upstream=\"gpu\\\"pool\"} 6\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ringcast_upstream_retries_total{upstream=\"gpu\\\"pool\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("ringcast_upstream_errors_total{upstream=\"gpu\\\"pool\",kind=\"http_429\"} 4\n"),
            std::string::npos);
  EXPECT_EQ(text.find("kind=\"reset\""), std::string::npos);  // only kinds that happened
  EXPECT_NE(text.find("ringcast_upstream_first_token_seconds_bucket{upstream=\"gpu\\\"pool\",le=\"0.001\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("ringcast_upstream_endpoint_breaker_open{upstream=\"gpu\\\"pool\","
                      "endpoint=\"http://127.0.0.1:8000/v1\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("endpoint=\"http://127.0.0.1:8000/v1\",state=\"idle\"} 4\n"), std::string::npos);
}

TEST(UpstreamMetrics, NothingRenderedWithoutUpstreams) {
  std::vector<shard_metrics> shards(1);
  byte_buffer out;
  render_upstream_metrics(shards, out);
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace rc::server
