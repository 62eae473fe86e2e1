// render_prometheus's labelling convention: one series per shard (shard="0".."N-1"), no
// pre-summed shard="all" series (a sum() over a family must count everything once), and the
// process-wide ringcast_shards and ringcast_uptime_seconds without a shard label.
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "server/metrics.h"
#include "server/router.h"

namespace rc::server {
namespace {

struct sample {
  std::string name, labels_without_shard, shard;  // shard "" when the sample has no shard label
  double value = 0;
};

std::vector<sample> parse(const std::string& text) {
  static const std::regex line_re(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$)");
  static const std::regex label_re(R"re((\w+)="((?:[^"\\]|\\.)*)")re");
  std::vector<sample> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::smatch m;
    EXPECT_TRUE(std::regex_match(line, m, line_re)) << line;
    if (m.empty()) continue;
    sample s{m[1], "", "", std::stod(m[4])};
    std::string labels = m[3];
    for (std::sregex_iterator it(labels.begin(), labels.end(), label_re), end; it != end; ++it) {
      if ((*it)[1] == "shard")
        s.shard = (*it)[2];
      else
        s.labels_without_shard += std::string((*it)[0]) + ",";
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<shard_metrics> two_busy_shards() {
  std::vector<shard_metrics> shards(2);
  for (size_t i = 0; i < shards.size(); ++i) {
    shard_metrics& m = shards[i];
    m.connections_accepted = 3 + i;
    m.connections_open[0] = 1 + i;
    m.requests[static_cast<size_t>(route_id::healthz)][status_slot(200)] = 5 + i;
    m.request_latency.observe_us(80 + 1000 * i);
    m.first_event_latency.observe_us(400);
    m.rejected[static_cast<size_t>(reject_reason::rate)] = 2;
    m.deliveries = 10 * (i + 1);
    m.uptime_s = 7 + i;
    upstream_metrics& u = m.upstreams[upstream_metrics_index(m.upstreams, "up")];
    u.requests = 4;
  }
  return shards;
}

TEST(PrometheusRender, NoPreSummedShardAllSeries) {
  byte_buffer out;
  render_prometheus(two_busy_shards(), out);
  std::string text(out.view());
  EXPECT_EQ(text.find("shard=\"all\""), std::string::npos) << text;
  for (const sample& s : parse(text))
    EXPECT_TRUE(s.shard.empty() || s.shard == "0" || s.shard == "1") << s.name << " " << s.shard;
}

TEST(PrometheusRender, ProcessWideFiguresHaveNoShardLabel) {
  byte_buffer out;
  render_prometheus(two_busy_shards(), out);
  std::string text(out.view());
  EXPECT_NE(text.find("\nringcast_shards 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nringcast_uptime_seconds 8\n"), std::string::npos) << text;  // the oldest shard
  EXPECT_EQ(text.find("ringcast_shards{"), std::string::npos);
  EXPECT_EQ(text.find("ringcast_uptime_seconds{"), std::string::npos);
}

TEST(PrometheusRender, SumOverAFamilyCountsEverythingOnce) {
  byte_buffer out;
  render_prometheus(two_busy_shards(), out);
  std::map<std::string, double> sums;  // name{labels without shard} -> sum over the samples
  std::map<std::string, int> per_shard_series;
  for (const sample& s : parse(std::string(out.view()))) {
    sums[s.name + "{" + s.labels_without_shard + "}"] += s.value;
    if (!s.shard.empty()) ++per_shard_series[s.name + "{" + s.labels_without_shard + "}"];
  }
  EXPECT_EQ(sums["ringcast_connections_accepted_total{}"], 7);
  EXPECT_EQ(sums["ringcast_connections_open{protocol=\"http\",}"], 3);
  EXPECT_EQ(sums["ringcast_requests_total{route=\"/healthz\",status=\"200\",}"], 11);
  EXPECT_EQ(sums["ringcast_request_duration_seconds_count{}"], 2);
  EXPECT_EQ(sums["ringcast_request_duration_seconds_bucket{le=\"+Inf\",}"], 2);
  EXPECT_EQ(sums["ringcast_first_token_seconds_count{}"], 2);
  EXPECT_EQ(sums["ringcast_admission_rejected_total{reason=\"rate\",}"], 4);
  EXPECT_EQ(sums["ringcast_topic_deliveries_total{}"], 30);
  EXPECT_EQ(sums["ringcast_upstream_requests_total{upstream=\"up\",}"], 8);  // no shard label
  // Every per-shard series has exactly one sample per shard.
  for (const auto& [series, n] : per_shard_series) EXPECT_EQ(n, 2) << series;
}

}  // namespace
}  // namespace rc::server
