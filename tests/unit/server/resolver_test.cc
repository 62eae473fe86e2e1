// resolver on a one-shard reactor against fake DNS servers on loopback (fake_dns.h), with
// resolv.conf and hosts files written to a temp directory: answers, failures, retries, the
// cache and coalescing.
#include "server/resolver.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "resolver_harness.h"

namespace rc::test {
namespace {

TEST(Resolver, IpLiteralsAnswerInALaterTurn) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  setup s("nameserver 127.0.0.1\n");
  auto out = run(
      s.opts,
      [](context& c) {
        c.res.resolve("10.1.2.3", 80, c.record());
        c.res.resolve("::1", 443, c.record());
        c.res.resolve("[2001:db8::7]", 8000, c.record());
        EXPECT_TRUE(c.out.empty());  // never inside resolve()
      },
      3);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].addrs, std::vector<std::string>{"10.1.2.3:80"});
  EXPECT_EQ(out[1].addrs, std::vector<std::string>{"[::1]:443"});
  EXPECT_EQ(out[2].addrs, std::vector<std::string>{"[2001:db8::7]:8000"});
  EXPECT_EQ(out[0].error, 0);
}

TEST(Resolver, HostsFileAndLocalhostNeedNoDns) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  fake_dns dns("127.0.0.1", 0, both_addresses);
  setup s("nameserver 127.0.0.1\n", "10.9.9.9 MyHost alias # comment\n");
  s.opts.nameserver_port = dns.port();
  auto out = run(
      s.opts,
      [](context& c) {
        c.res.resolve("myhost", 1, c.record());
        c.res.resolve("ALIAS.", 2, c.record());
        c.res.resolve("localhost", 3, c.record());
      },
      3);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].addrs, std::vector<std::string>{"10.9.9.9:1"});
  EXPECT_EQ(out[1].addrs, std::vector<std::string>{"10.9.9.9:2"});
  EXPECT_EQ(out[2].addrs, (std::vector<std::string>{"127.0.0.1:3", "[::1]:3"}));
  EXPECT_EQ(dns.queries(), 0u);
}

TEST(Resolver, InvalidNameIsRefused) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  setup s("nameserver 127.0.0.1\n");
  auto out = run(
      s.opts, [](context& c) { c.res.resolve("bad name!", 80, c.record()); }, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].error, EINVAL);
  EXPECT_TRUE(out[0].addrs.empty());
}

TEST(Resolver, AsksAAndAaaaAndPutsIpv4First) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  fake_dns dns("127.0.0.1", 0, both_addresses);
  setup s("nameserver 127.0.0.1\n");
  s.opts.nameserver_port = dns.port();
  auto out = run(
      s.opts, [](context& c) { c.res.resolve("API.Example.com", 8443, c.record()); }, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].error, 0) << out[0].message;
  EXPECT_EQ(out[0].addrs, (std::vector<std::string>{"192.0.2.4:8443", "[2001:db8::6]:8443"}));
  auto log = dns.log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].name, "api.example.com");
  EXPECT_NE(log[0].type, log[1].type);
}

TEST(Resolver, NxdomainIsFinalAndCachedBriefly) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  two_servers servers(
      [](const dns_query_view& q, size_t) { return std::vector{rcode_answer(q, 3)}; },
      both_addresses);
  ASSERT_TRUE(servers.second && servers.second->ok());
  setup s("nameserver 127.0.0.1\nnameserver 127.0.0.2\n");
  s.opts.nameserver_port = servers.first->port();
  resolver_stats stats;
  auto out = run(
      s.opts,
      [](context& c) {
        c.res.resolve("gone.test", 80,
                      [&c, again = c.record()](auto addrs, int error, std::string_view m) mutable {
                        again(std::move(addrs), error, m);
                        c.res.resolve("gone.test", 80, c.record());
                      });
      },
      2, &stats);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].error, ENOENT);
  EXPECT_NE(out[0].message.find("NXDOMAIN"), std::string::npos) << out[0].message;
  EXPECT_EQ(out[1].error, ENOENT);
  EXPECT_EQ(stats.cache_hits, 1u);
  EXPECT_EQ(servers.second->queries(), 0u);  // NXDOMAIN does not try the next server
}

TEST(Resolver, ServfailMovesToTheNextServer) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  two_servers servers(
      [](const dns_query_view& q, size_t) { return std::vector{rcode_answer(q, 2)}; },
      both_addresses);
  ASSERT_TRUE(servers.second && servers.second->ok());
  setup s("nameserver 127.0.0.1\nnameserver 127.0.0.2\n");
  s.opts.nameserver_port = servers.first->port();
  auto out = run(
      s.opts, [](context& c) { c.res.resolve("svc.test", 80, c.record()); }, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].error, 0) << out[0].message;
  EXPECT_EQ(out[0].addrs.size(), 2u);
  EXPECT_GE(servers.first->queries(), 1u);
  EXPECT_EQ(servers.second->queries(), 2u);
}

TEST(Resolver, ServfailEverywhereFailsWithEagain) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  fake_dns dns("127.0.0.1", 0,
               [](const dns_query_view& q, size_t) { return std::vector{rcode_answer(q, 2)}; });
  setup s("nameserver 127.0.0.1\n");
  s.opts.nameserver_port = dns.port();
  auto out = run(
      s.opts, [](context& c) { c.res.resolve("svc.test", 80, c.record()); }, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].error, EAGAIN);
  EXPECT_NE(out[0].message.find("SERVFAIL"), std::string::npos) << out[0].message;
}

TEST(Resolver, RetriesAfterATimeout) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  // The first query of each type is dropped; the retry is answered.
  fake_dns dns("127.0.0.1", 0, [](const dns_query_view& q, size_t nth) {
    return nth == 0 ? std::vector<std::string>{} : both_addresses(q, nth);
  });
  setup s("nameserver 127.0.0.1\n");
  s.opts.nameserver_port = dns.port();
  s.opts.timeout_ms = 200;
  resolver_stats stats;
  auto out = run(
      s.opts, [](context& c) { c.res.resolve("slow.test", 80, c.record()); }, 1, &stats);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].error, 0) << out[0].message;
  EXPECT_EQ(out[0].addrs.size(), 2u);
  EXPECT_EQ(dns.queries(), 4u);
  EXPECT_EQ(stats.query_timeouts, 1u);
}

TEST(Resolver, TimesOutAfterEveryAttempt) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  fake_dns dns("127.0.0.1", 0,
               [](const dns_query_view&, size_t) { return std::vector<std::string>{}; });
  setup s("nameserver 127.0.0.1\noptions attempts:3\n");
  s.opts.nameserver_port = dns.port();
  s.opts.timeout_ms = 100;
  s.opts.attempts = 0;  // from resolv.conf
  auto out = run(
      s.opts, [](context& c) { c.res.resolve("void.test", 80, c.record()); }, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].error, ETIMEDOUT);
  EXPECT_NE(out[0].message.find("no answer"), std::string::npos) << out[0].message;
  EXPECT_EQ(dns.queries(), 6u);
}

TEST(Resolver, AddressesOfOneFamilyEndTheLookupWhenTheOtherTimesOut) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  fake_dns dns("127.0.0.1", 0, [](const dns_query_view& q, size_t nth) {
    return q.type == 28 ? std::vector<std::string>{} : both_addresses(q, nth);
  });
  setup s("nameserver 127.0.0.1\n");
  s.opts.nameserver_port = dns.port();
  s.opts.timeout_ms = 150;
  s.opts.attempts = 5;
  auto out = run(
      s.opts, [](context& c) { c.res.resolve("v4only.test", 80, c.record()); }, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].addrs, std::vector<std::string>{"192.0.2.4:80"});
  EXPECT_EQ(dns.queries(), 2u);  // one try, not five
}

TEST(Resolver, IgnoresAnswersWithAnotherId) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  fake_dns dns("127.0.0.1", 0, [](const dns_query_view& q, size_t) {
    dns_query_view forged = q;
    forged.id = static_cast<uint16_t>(q.id + 1);
    return std::vector{address_answer(forged, 66), address_answer(q, q.type == 28 ? 6 : 4)};
  });
  setup s("nameserver 127.0.0.1\n");
  s.opts.nameserver_port = dns.port();
  resolver_stats stats;
  auto out = run(
      s.opts, [](context& c) { c.res.resolve("spoof.test", 80, c.record()); }, 1, &stats);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].addrs, (std::vector<std::string>{"192.0.2.4:80", "[2001:db8::6]:80"}));
  EXPECT_GE(stats.ignored_datagrams, 1u);
}

TEST(Resolver, RotateStartsEachLookupAtTheNextServer) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  two_servers servers(both_addresses, both_addresses);
  ASSERT_TRUE(servers.second && servers.second->ok());
  setup s("nameserver 127.0.0.1\nnameserver 127.0.0.2\noptions rotate edns0\n");
  s.opts.nameserver_port = servers.first->port();
  auto out = run(
      s.opts,
      [](context& c) {
        c.res.resolve("one.test", 80, c.record());
        c.res.resolve("two.test", 80, c.record());
      },
      2);
  ASSERT_EQ(out.size(), 2u);
  auto first = servers.first->log(), second = servers.second->log();
  ASSERT_EQ(first.size(), 2u);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(first[0].name, "one.test");
  EXPECT_EQ(second[0].name, "two.test");
  EXPECT_TRUE(first[0].edns);  // options edns0
}

TEST(Resolver, CachedAnswersExpireWithTheirTtl) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  fake_dns dns("127.0.0.1", 0, [](const dns_query_view& q, size_t) {
    return std::vector{address_answer(q, q.type == 28 ? 6 : 4, 1)};
  });
  setup s("nameserver 127.0.0.1\n");
  s.opts.nameserver_port = dns.port();
  timer later;
  auto out = run(
      s.opts,
      [&](context& c) {
        c.res.resolve("short.test", 80, c.record());
        later.set_callback(
            [](timer&, void* ctx) {
              auto* cc = static_cast<context*>(ctx);
              cc->res.resolve("short.test", 80, cc->record());
            },
            &c);
        c.r.arm_after_ms(later, 1100);  // past the 1 s TTL
      },
      2);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].error, 0);
  EXPECT_EQ(dns.queries(), 4u);
}

}  // namespace
}  // namespace rc::test
