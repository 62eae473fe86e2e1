// Endpoint choice, circuit breakers and the retry policy (server/upstream_endpoints.h,
// server/retry_policy.h); the choice also against real pools on loopback.
#include "server/upstream_endpoints.h"

#include <gtest/gtest.h>

#include <string>

#include "http_test_server.h"
#include "server/retry_policy.h"

namespace rc::server {
namespace {

TEST(CircuitBreaker, OpensAfterConsecutiveFailuresAndProbesAfterCoolDown) {
  circuit_breaker b({3, 1000});
  EXPECT_EQ(b.state(0), breaker_state::closed);
  b.on_failure(10);
  b.on_failure(20);
  b.on_success();  // resets the count: failures must be consecutive
  b.on_failure(30);
  b.on_failure(40);
  EXPECT_TRUE(b.available(40));
  b.on_failure(50);
  EXPECT_EQ(b.state(50), breaker_state::open);
  EXPECT_FALSE(b.available(1049));
  EXPECT_EQ(b.reopens_at_ms(), 1050u);
  EXPECT_EQ(b.state(1050), breaker_state::half_open);
  ASSERT_TRUE(b.available(1050));
  b.admit(1050);
  EXPECT_FALSE(b.available(1051)) << "one probe at a time";
  b.on_failure(1100);  // the probe failed: another cool-down
  EXPECT_EQ(b.state(1100), breaker_state::open);
  EXPECT_FALSE(b.available(2099));
  b.admit(2100);
  b.on_success();
  EXPECT_EQ(b.state(2100), breaker_state::closed);
  EXPECT_EQ(b.times_opened(), 2u);
}

TEST(CircuitBreaker, AbandonedProbeFreesTheSlot) {
  circuit_breaker b({1, 100});
  b.on_failure(0);
  b.admit(100);
  EXPECT_FALSE(b.available(100));
  b.on_abandoned();
  EXPECT_TRUE(b.available(100));
}

TEST(EndpointChoice, LeastOutstandingWithRotationAndAvoid) {
  std::vector<endpoint_candidate> c = {{true, 3}, {true, 1}, {true, 2}};
  EXPECT_EQ(choose_least_outstanding(c, 0, -1), 1);
  EXPECT_EQ(choose_least_outstanding(c, 0, 1), 2);  // avoid the one that failed
  c[1].available = false;
  EXPECT_EQ(choose_least_outstanding(c, 0, -1), 2);
  std::vector<endpoint_candidate> tie = {{true, 0}, {true, 0}, {true, 0}};
  EXPECT_EQ(choose_least_outstanding(tie, 0, -1), 0);
  EXPECT_EQ(choose_least_outstanding(tie, 1, -1), 1);
  EXPECT_EQ(choose_least_outstanding(tie, 2, -1), 2);
  std::vector<endpoint_candidate> one = {{true, 5}};
  EXPECT_EQ(choose_least_outstanding(one, 0, 0), 0) << "the avoided one when it is the last";
  std::vector<endpoint_candidate> none = {{false, 0}, {false, 0}};
  EXPECT_EQ(choose_least_outstanding(none, 0, -1), -1);
}

TEST(RetryPolicy, Decisions) {
  retry_policy p({2, 100, 1000, 5000});
  attempt_result r;
  r.error = client_error::connect_failed;
  retry_decision d = p.decide(r, 1, 0, 0);
  EXPECT_TRUE(d.retry);
  EXPECT_TRUE(d.prefer_other_endpoint);
  EXPECT_GE(d.delay_ms, 50u);
  EXPECT_LE(d.delay_ms, 100u);
  EXPECT_FALSE(p.decide(r, 3, 0, 0).retry) << "retries exhausted";
  EXPECT_EQ(p.decide(r, 3, 0, 0).reason, "retries exhausted");
  EXPECT_FALSE(p.decide(r, 1, 0, 50).retry) << "past the deadline";

  r.error = client_error::reset;
  EXPECT_TRUE(p.decide(r, 1, 0, 0).retry);
  r.got_response_bytes = true;
  EXPECT_FALSE(p.decide(r, 1, 0, 0).retry);

  for (client_error e : {client_error::protocol, client_error::tls, client_error::timeout_idle,
                         client_error::timeout_total, client_error::timeout_first_byte}) {
    attempt_result x;
    x.error = e;
    EXPECT_FALSE(p.decide(x, 1, 0, 0).retry) << name_of(e);
  }
  attempt_result s;
  for (int status : {429, 502, 503, 504}) {
    s.status = status;
    EXPECT_TRUE(p.decide(s, 1, 0, 0).retry) << status;
  }
  for (int status : {200, 400, 401, 403, 404, 408, 409, 422, 500}) {
    s.status = status;
    EXPECT_FALSE(p.decide(s, 1, 0, 0).retry) << status;
  }
  s.status = 503;
  s.relayed = true;
  EXPECT_FALSE(p.decide(s, 1, 0, 0).retry);
}

TEST(RetryPolicy, RetryAfterIsHonouredUpToTheCap) {
  retry_policy p({3, 100, 1000, 5000});
  attempt_result r;
  r.status = 429;
  r.retry_after_ms = 3000;
  retry_decision d = p.decide(r, 1, 0, 0);
  EXPECT_TRUE(d.retry);
  EXPECT_EQ(d.delay_ms, 3000u);
  r.retry_after_ms = 6000;
  d = p.decide(r, 1, 0, 0);
  EXPECT_FALSE(d.retry);
  EXPECT_EQ(d.reason, "retry-after beyond the cap");
  r.retry_after_ms = 3000;
  EXPECT_FALSE(p.decide(r, 1, 1000, 3500).retry) << "the wait would end after the deadline";
}

TEST(RetryPolicy, BackoffGrowsWithJitterAndCap) {
  retry_policy p({10, 100, 1000, 5000}, 42);
  bool varied = false;
  uint32_t first = p.backoff_ms(1);
  for (int i = 0; i < 50; ++i) {
    uint32_t b1 = p.backoff_ms(1), b3 = p.backoff_ms(3), b9 = p.backoff_ms(9);
    EXPECT_GE(b1, 50u);
    EXPECT_LE(b1, 100u);
    EXPECT_GE(b3, 200u);
    EXPECT_LE(b3, 400u);
    EXPECT_GE(b9, 500u);
    EXPECT_LE(b9, 1000u);
    varied = varied || b1 != first;
  }
  EXPECT_TRUE(varied) << "jitter";
}

TEST(RetryPolicy, ParsesRetryAfter) {
  EXPECT_EQ(parse_retry_after("7", 0), 7000u);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111767), 10000u);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111800), 0u);
  EXPECT_FALSE(parse_retry_after("soon", 0).has_value());
  EXPECT_FALSE(parse_retry_after("-1", 0).has_value());
  http1::response head;
  std::string raw = "HTTP/1.1 429 Too Many\r\nretry-after-ms: 1500.5\r\nRetry-After: 9\r\n\r\n";
  ASSERT_EQ(http1::parse_response_head(raw.data(), raw.size(), {},
                                       http1::request_method_kind::other, head)
                .status,
            http1::status::complete);
  EXPECT_EQ(retry_after_of(head, 0), 1500u);
}

// Two endpoints whose servers hold every request open: the set spreads requests by outstanding
// count, skips an endpoint whose breaker is open, and tells when one reopens.
TEST(EndpointSet, SpreadsByOutstandingAndSkipsOpenBreakers) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  auto hold = [](test::peer& p, int) {
    p.read_request();
    p.wait_closed();
  };
  test::script_server a(hold), b(hold);
  std::vector<int> chosen;
  uint64_t retry_after = 0;
  struct idle_sink final : response_sink {
    void on_response_head(const http1::response&) override {}
    void on_response_body(std::string_view) override {}
    void on_response_end() override {}
    void on_response_error(client_error, std::string_view) override {}
  } sink;
  std::vector<request_handle> handles;
  test::run_client([&](test::client_run& run) {
    endpoint_set set(*run.client, {a.endpoint(), b.endpoint()}, {}, {1, 1000});
    for (int i = 0; i < 4; ++i) {
      int e = set.choose(0);
      chosen.push_back(e);
      handles.push_back(run.client->start(set.pool(e), http_request{}, sink));
    }
    set.on_failure(0, 0);  // opens endpoint 0 (failures_to_open = 1)
    chosen.push_back(set.choose(10));
    chosen.push_back(set.choose(10, 1));  // avoid 1: but 0 is open, so 1 it is
    set.on_failure(1, 20);
    chosen.push_back(set.choose(30));
    retry_after = set.retry_after_ms(30);
    chosen.push_back(set.choose(1000));  // endpoint 0's cool-down is over: the probe
    chosen.push_back(set.choose(1000));  // the probe is out; 1 is still cooling down
    handles.clear();
    run.done();
  });
  EXPECT_EQ(chosen, (std::vector<int>{0, 1, 0, 1, 1, 1, -1, 0, -1}));
  EXPECT_EQ(retry_after, 970u);
}

}  // namespace
}  // namespace rc::server
