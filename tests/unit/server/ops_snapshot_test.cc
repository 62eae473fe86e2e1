// The ops snapshot (ops_snapshot.h): rates from one snapshot to the next, first-token quantiles
// from histogram growth, refusals, upstreams and workers; and the credentials the dashboard takes
// (HTTP Basic, admin keys).
#include "server/ops_snapshot.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "proto/json_reader.h"
#include "server/admission.h"
#include "server/authentication.h"
#include "server/metrics.h"

namespace rc::server {
namespace {

// Writes a snapshot and parses it back.
class Snapshot {
 public:
  Snapshot(const std::vector<shard_metrics>& shards, uint64_t now_us, ops_baseline& baseline) {
    ops_header h;
    h.time_ms = 1764900000000;
    h.uptime_s = 2.5;
    h.node = "node-1";
    h.version = "0.1.0";
    write_ops_snapshot(out_, shards, h, now_us, baseline);
    text_ = std::string(out_.view());
    auto r = parser_.parse(text_);
    EXPECT_TRUE(r.ok()) << r.message << "\n" << text_;
    root_ = r.root;
  }
  json::value root() const { return root_; }
  json::value totals() const { return root_.find("totals"); }
  json::value shard(size_t i) const {
    size_t n = 0;
    for (json::value s : root_.find("shards").elements())
      if (n++ == i) return s;
    return {};
  }
  const std::string& text() const { return text_; }

 private:
  byte_buffer out_;
  std::string text_;
  json::parser parser_;
  json::value root_;
};

TEST(OpsSnapshot, QuantileInterpolatesWithinTheBucket) {
  latency_histogram h;
  for (int i = 0; i < 100; ++i) h.observe_us(700);  // all in (500 µs, 1000 µs]
  EXPECT_DOUBLE_EQ(histogram_quantile_ms(h, 0.5), 0.75);
  EXPECT_DOUBLE_EQ(histogram_quantile_ms(h, 0.99), 0.995);
  latency_histogram two;
  for (int i = 0; i < 50; ++i) two.observe_us(40);       // [0, 50 µs]
  for (int i = 0; i < 50; ++i) two.observe_us(20'000);   // (10 ms, 25 ms]
  EXPECT_DOUBLE_EQ(histogram_quantile_ms(two, 0.5), 0.05);
  EXPECT_DOUBLE_EQ(histogram_quantile_ms(two, 0.99), 10.0 + 15.0 * 0.98);
  latency_histogram slow;
  slow.observe_us(60'000'000);  // beyond the last bound: all we know is "above 10 s"
  EXPECT_DOUBLE_EQ(histogram_quantile_ms(slow, 0.99), 10'000.0);
}

TEST(OpsSnapshot, FirstSnapshotHasNoRatesThenRatesOverTheInterval) {
  std::vector<shard_metrics> shards(2);
  shards[0].requests[0][status_slot(200)] = 100;
  shards[1].requests[3][status_slot(404)] = 7;
  shards[0].deliveries = 50;
  shards[1].connections_open[static_cast<size_t>(protocol::ws)] = 3;
  shards[0].first_event_latency.observe_us(700);
  ops_baseline base;
  {
    Snapshot s(shards, 1'000'000, base);
    EXPECT_EQ(s.totals().find("requests_per_s").get_double(), 0.0) << s.text();
    EXPECT_EQ(s.totals().find("connections").find("ws").get_int64(), 3);
    EXPECT_EQ(s.root().find("first_token_ms").find("count").get_uint64(), 0u);
    EXPECT_TRUE(s.root().find("first_token_ms").find("p50").is_null());
    EXPECT_TRUE(s.root().find("cluster").is_null());
    EXPECT_EQ(s.root().find("node").get_string(), "node-1");
  }
  // Two seconds later: shard 0 answered 10 more requests, shard 1 4 more; 20 more deliveries;
  // four generations got their first token.
  shards[0].requests[0][status_slot(200)] += 10;
  shards[1].requests[5][status_slot(503)] += 4;
  shards[0].deliveries += 20;
  for (int i = 0; i < 4; ++i) shards[1].first_event_latency.observe_us(2'000);
  Snapshot s(shards, 3'000'000, base);
  EXPECT_DOUBLE_EQ(s.shard(0).find("requests_per_s").get_double(), 5.0) << s.text();
  EXPECT_DOUBLE_EQ(s.shard(1).find("requests_per_s").get_double(), 2.0);
  EXPECT_DOUBLE_EQ(s.totals().find("requests_per_s").get_double(), 7.0);
  EXPECT_DOUBLE_EQ(s.totals().find("deliveries_per_s").get_double(), 10.0);
  EXPECT_EQ(s.shard(1).find("shard").get_uint64(), 1u);
  EXPECT_FALSE(s.totals().find("shard"));
  json::value ft = s.root().find("first_token_ms");
  EXPECT_EQ(ft.find("count").get_uint64(), 4u);  // only the interval's, not the one before
  EXPECT_DOUBLE_EQ(ft.find("p50").get_double(), 1.0 + 1.5 * 0.5);  // (1 ms, 2.5 ms]
  // Nothing happened since: the rates fall back to 0.
  Snapshot quiet(shards, 4'000'000, base);
  EXPECT_EQ(quiet.totals().find("requests_per_s").get_double(), 0.0);
  EXPECT_EQ(quiet.root().find("first_token_ms").find("count").get_uint64(), 0u);
}

TEST(OpsSnapshot, RefusalsListEveryReason) {
  std::vector<shard_metrics> shards(2);
  shards[0].rejected[static_cast<size_t>(reject_reason::auth)] = 2;
  shards[1].rejected[static_cast<size_t>(reject_reason::rate)] = 3;
  ops_baseline base;
  Snapshot first(shards, 1'000'000, base);
  shards[1].rejected[static_cast<size_t>(reject_reason::rate)] += 5;
  Snapshot s(shards, 1'500'000, base);
  json::value r = s.root().find("refusals");
  EXPECT_EQ(r.find("total").get_uint64(), 10u);
  EXPECT_DOUBLE_EQ(r.find("per_s").get_double(), 10.0);  // 5 in half a second
  size_t reasons = 0;
  for (auto m : r.find("by_reason").members()) {
    (void)m;
    ++reasons;
  }
  EXPECT_EQ(reasons, static_cast<size_t>(reject_reason::count));
  EXPECT_EQ(r.find("by_reason").find("auth").get_uint64(), 2u);
  EXPECT_EQ(r.find("by_reason").find("rate").get_uint64(), 8u);
  EXPECT_EQ(r.find("by_reason").find("permission").get_uint64(), 0u);
}

TEST(OpsSnapshot, UpstreamsAndWorkers) {
  std::vector<shard_metrics> shards(2);
  for (size_t s = 0; s < 2; ++s) {
    upstream_metrics& a = shards[s].upstreams[upstream_metrics_index(shards[s].upstreams, "a")];
    a.endpoint("http://one").breaker_open = s == 1;  // open on one shard only: mixed
    a.endpoint("http://two");
    upstream_metrics& b = shards[s].upstreams[upstream_metrics_index(shards[s].upstreams, "b")];
    b.endpoint("http://three").breaker_open = 1;  // open everywhere
    upstream_metrics& c = shards[s].upstreams[upstream_metrics_index(shards[s].upstreams, "c")];
    c.endpoint("http://four").breaker_half_open = 1;  // half-open everywhere
    upstream_metrics& d = shards[s].upstreams[upstream_metrics_index(shards[s].upstreams, "d")];
    d.endpoint("http://five").breaker_half_open = s == 0;  // half-open on one shard: mixed
  }
  worker_metrics& w = shards[1].workers[worker_metrics_index(shards[1].workers, "local", 0)];
  w.state = 2;  // ready
  w.inflight = 1;
  w.restarts[0] = 2;
  ops_baseline base;
  Snapshot first(shards, 1'000'000, base);
  shards[0].upstreams[0].requests += 4;
  shards[1].upstreams[0].errors[static_cast<size_t>(upstream_error_kind::http_5xx)] += 2;
  Snapshot s(shards, 2'000'000, base);
  std::vector<json::value> ups;
  for (json::value u : s.root().find("upstreams").elements()) ups.push_back(u);
  ASSERT_EQ(ups.size(), 4u) << s.text();
  EXPECT_EQ(ups[0].find("name").get_string(), "a");
  EXPECT_EQ(ups[0].find("breaker").get_string(), "mixed");
  EXPECT_EQ(ups[0].find("endpoints").get_uint64(), 2u);
  EXPECT_DOUBLE_EQ(ups[0].find("requests_per_s").get_double(), 4.0);
  EXPECT_DOUBLE_EQ(ups[0].find("errors_per_s").get_double(), 2.0);
  EXPECT_EQ(ups[1].find("breaker").get_string(), "open");
  EXPECT_EQ(ups[2].find("breaker").get_string(), "half_open");
  EXPECT_EQ(ups[3].find("breaker").get_string(), "mixed");
  size_t n = 0;
  for (json::value wv : s.root().find("workers").elements()) {
    ++n;
    EXPECT_EQ(wv.find("upstream").get_string(), "local");
    EXPECT_EQ(wv.find("state").get_string(), "ready");
    EXPECT_EQ(wv.find("inflight").get_int64(), 1);
    EXPECT_EQ(wv.find("restarts").get_uint64(), 2u);
  }
  EXPECT_EQ(n, 1u);
}

TEST(DashboardCredentials, BasicPasswordIsTheKey) {
  EXPECT_EQ(basic_password("Basic dXNlcjpzay1hZG1pbg=="), "sk-admin");  // user:sk-admin
  EXPECT_EQ(basic_password("basic OnNrLWFkbWlu"), "sk-admin");          // :sk-admin
  EXPECT_EQ(basic_password("Basic   dTphOmI=  "), "a:b");               // u:a:b
  EXPECT_EQ(basic_password("Basic !!!"), "");                           // not base64
  EXPECT_EQ(basic_password("Basic bm9jb2xvbg=="), "");                  // nocolon
  EXPECT_EQ(basic_password("Basic dXNlcjo="), "");                      // user: (no password)
  EXPECT_EQ(basic_password("BaSiC dXNlcjpzay1hZG1pbg=="), "sk-admin");  // any case (RFC 7235)
  EXPECT_EQ(basic_password("bASIC\tdXNlcjpzay1hZG1pbg=="), "sk-admin");  // a tab after it
  EXPECT_EQ(basic_password("Basic"), std::nullopt);
  EXPECT_EQ(basic_password("Basics dXNlcjpzay1hZG1pbg=="), std::nullopt);
  EXPECT_EQ(basic_password("Bearer sk-admin"), std::nullopt);
  EXPECT_EQ(basic_password(""), std::nullopt);
}

TEST(DashboardCredentials, AdminKeys) {
  api_keys keys;
  EXPECT_EQ(keys.add("sk-user"), "");
  EXPECT_FALSE(keys.any_admin());
  EXPECT_EQ(keys.add("sk-admin", true), "");
  EXPECT_TRUE(keys.any_admin());
  EXPECT_TRUE(keys.find("sk-admin")->admin);
  EXPECT_FALSE(keys.find("sk-user")->admin);
  EXPECT_EQ(keys.add("sk-user", true), "--admin-key: duplicate key");

  char path[] = "/tmp/ringcast-keys-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  auto load = [&](const std::string& text) {
    FILE* f = std::fopen(path, "w");
    std::fputs(text.c_str(), f);
    std::fclose(f);
    api_keys k;
    std::string err = k.load_file(path);
    return std::make_pair(err, k.any_admin());
  };
  EXPECT_EQ(load("sk-a admin=yes\nsk-b\n"), std::make_pair(std::string(), true));
  EXPECT_EQ(load("sk-a admin=no\n"), std::make_pair(std::string(), false));
  EXPECT_EQ(load("sk-a admin=maybe\n").first, std::string(path) + ":1: admin= is yes or no");
  EXPECT_EQ(load("sk-a\nsk-b publish=x admin=yes\n").first,
            std::string(path) +
                ":2: an admin key has no topic limits (drop subscribe=/publish= or admin=yes)");
  close(fd);
  unlink(path);
}

}  // namespace
}  // namespace rc::server
