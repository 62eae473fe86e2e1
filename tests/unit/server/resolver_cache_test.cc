// resolver: broken servers, the search list, the cache, coalescing, cancellation, and the
// parsing of resolv.conf and hosts.
#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "resolver_harness.h"
#include "server/resolver.h"
#include "server/resolver_files.h"

namespace rc::test {
namespace {

std::string malformed_answer(const dns_query_view& q) {
  dns_message m = reply_to(q, 1);
  m.name(q.name).rr_fixed(q.type, 60, 5).u32(0).u8(0);  // an address of 5 bytes
  return m.bytes;
}

TEST(Resolver, MalformedAnswerMovesToTheNextServer) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  two_servers servers(
      [](const dns_query_view& q, size_t) { return std::vector{malformed_answer(q)}; },
      both_addresses);
  ASSERT_TRUE(servers.second && servers.second->ok());
  setup s("nameserver 127.0.0.1\nnameserver 127.0.0.2\n");
  s.opts.nameserver_port = servers.first->port();
  s.opts.attempts = 1;
  auto out = run(
      s.opts, [](context& c) { c.res.resolve("broken.test", 80, c.record()); }, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].error, 0) << out[0].message;
  EXPECT_EQ(out[0].addrs.size(), 2u);
}

TEST(Resolver, MalformedAnswersEverywhereFailWithEproto) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  fake_dns dns("127.0.0.1", 0,
               [](const dns_query_view& q, size_t) { return std::vector{malformed_answer(q)}; });
  setup s("nameserver 127.0.0.1\n");
  s.opts.nameserver_port = dns.port();
  auto out = run(
      s.opts, [](context& c) { c.res.resolve("broken.test", 80, c.record()); }, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].error, EPROTO);
  EXPECT_NE(out[0].message.find("malformed"), std::string::npos) << out[0].message;
}

TEST(Resolver, TruncatedAnswersAreUsedForWhatTheyHold) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  // A: truncated with one address; AAAA: truncated and empty.
  fake_dns dns("127.0.0.1", 0, [](const dns_query_view& q, size_t) {
    dns_message m = reply_to(q, q.type == 1 ? 2 : 1, 0x8380);
    if (q.type == 1) m.a(q.name, 60, 192, 0, 2, 9);
    m.name(q.name).u16(q.type);  // the record the server had to cut
    return std::vector{m.bytes};
  });
  setup s("nameserver 127.0.0.1\n");
  s.opts.nameserver_port = dns.port();
  auto out = run(
      s.opts, [](context& c) { c.res.resolve("big.test", 80, c.record()); }, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].addrs, std::vector<std::string>{"192.0.2.9:80"});

  s.opts.family = address_family::ipv6;  // only the empty truncated answer
  out = run(
      s.opts, [](context& c) { c.res.resolve("big.test", 80, c.record()); }, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].error, EPROTO);
  EXPECT_NE(out[0].message.find("TCP"), std::string::npos) << out[0].message;
}

TEST(Resolver, UnreachableServerFailsWithoutWaitingForTheTimeout) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  uint16_t port = 0;
  {
    fake_dns gone("127.0.0.1", 0, both_addresses);  // a port nobody listens on afterwards
    port = gone.port();
  }
  setup s("nameserver 127.0.0.1\n");
  s.opts.nameserver_port = port;
  s.opts.timeout_ms = 30000;  // the test's 20 s give-up would catch a wait for it
  auto out = run(
      s.opts, [](context& c) { c.res.resolve("nobody.test", 80, c.record()); }, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].error, ECONNREFUSED) << out[0].message;
}

TEST(Resolver, SearchDomainsComeFirstForShortNames) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  fake_dns dns("127.0.0.1", 0, [](const dns_query_view& q, size_t nth) {
    if (q.name == "svc.corp.test" || q.name == "other") return both_addresses(q, nth);
    return std::vector{rcode_answer(q, 3)};
  });
  setup s("nameserver 127.0.0.1\nsearch corp.test\n");
  s.opts.nameserver_port = dns.port();
  auto out = run(
      s.opts,
      [](context& c) {
        c.res.resolve("svc", 80, c.record());
        c.res.resolve("other", 81, c.record());
      },
      2);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].error, 0) << out[0].message;
  EXPECT_EQ(out[1].error, 0) << out[1].message;
  size_t plain_svc = 0, other_searched = 0;
  for (const auto& q : dns.log()) {
    plain_svc += q.name == "svc";
    other_searched += q.name == "other.corp.test";
  }
  EXPECT_EQ(plain_svc, 0u);
  EXPECT_EQ(other_searched, 2u);  // A and AAAA, NXDOMAIN, then "other" as is
}

TEST(Resolver, CacheKeepsAnswersForTheirTtl) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  fake_dns dns("127.0.0.1", 0, [](const dns_query_view& q, size_t) {
    bool zero = q.name.starts_with("zero");
    return std::vector{address_answer(q, q.type == 28 ? 6 : 4, zero ? 0 : 60)};
  });
  setup s("nameserver 127.0.0.1\n");
  s.opts.nameserver_port = dns.port();
  resolver_stats stats;
  auto twice = [](const char* name) {
    return [name](context& c) {
      c.res.resolve(
          name, 80,
          [&c, name, first = c.record()](auto addrs, int error, std::string_view m) mutable {
            first(std::move(addrs), error, m);
            c.res.resolve(name, 90, c.record());
          });
    };
  };
  auto out = run(s.opts, twice("cached.test"), 2, &stats);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].addrs, (std::vector<std::string>{"192.0.2.4:90", "[2001:db8::6]:90"}));
  EXPECT_EQ(stats.cache_hits, 1u);
  EXPECT_EQ(dns.queries(), 2u);

  out = run(s.opts, twice("zero.test"), 2, &stats);  // TTL 0: not cached
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].error, 0);
  EXPECT_EQ(stats.cache_hits, 0u);
  EXPECT_EQ(dns.queries(), 6u);
}

TEST(Resolver, CacheIsBounded) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  fake_dns dns("127.0.0.1", 0, both_addresses);
  setup s("nameserver 127.0.0.1\n");
  s.opts.nameserver_port = dns.port();
  s.opts.cache_entries_max = 2;
  size_t cache_size = 0;
  auto out = run(
      s.opts,
      [&](context& c) {
        for (const char* n : {"a.test", "b.test", "c.test", "d.test"})
          c.res.resolve(n, 80,
                        [&c, &cache_size, rec = c.record()](auto addrs, int error,
                                                            std::string_view m) mutable {
                          rec(std::move(addrs), error, m);
                          cache_size = std::max(cache_size, c.res.cache_size());
                        });
      },
      4);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(cache_size, 2u);
}

TEST(Resolver, ConcurrentLookupsOfOneNameShareTheQueries) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  fake_dns dns("127.0.0.1", 0, both_addresses);
  setup s("nameserver 127.0.0.1\n");
  s.opts.nameserver_port = dns.port();
  resolver_stats stats;
  auto out = run(
      s.opts,
      [](context& c) {
        c.res.resolve("shared.test", 1, c.record());
        c.res.resolve("Shared.Test", 2, c.record());
        c.res.resolve("shared.test", 3, c.record());
      },
      3, &stats);
  ASSERT_EQ(out.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(out[i].addrs, (std::vector<std::string>{"192.0.2.4:" + std::to_string(i + 1),
                                                      "[2001:db8::6]:" + std::to_string(i + 1)}));
  }
  EXPECT_EQ(dns.queries(), 2u);
  EXPECT_EQ(stats.coalesced, 2u);
}

TEST(Resolver, CancelAllAnswersEveryoneAtOnce) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  fake_dns dns("127.0.0.1", 0,
               [](const dns_query_view&, size_t) { return std::vector<std::string>{}; });
  setup s("nameserver 127.0.0.1\n");
  s.opts.nameserver_port = dns.port();
  s.opts.timeout_ms = 10000;
  std::vector<outcome> after_cancel;
  auto out = run(
      s.opts,
      [&](context& c) {
        c.res.resolve("silent.test", 80, c.record());
        c.res.resolve("10.0.0.1", 80, c.record());  // answered, but not yet delivered
        c.res.cancel_all();
        after_cancel = c.out;
        EXPECT_FALSE(c.res.idle());  // the query's receive is still in the kernel
      },
      2);
  ASSERT_EQ(after_cancel.size(), 2u);
  for (const auto& o : after_cancel) EXPECT_EQ(o.error, ECANCELED);
  EXPECT_EQ(out.size(), 2u);
}

TEST(Resolver, MayBeDestroyedWithQueriesInFlight) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  fake_dns dns("127.0.0.1", 0,
               [](const dns_query_view&, size_t) { return std::vector<std::string>{}; });
  setup s("nameserver 127.0.0.1\n");
  s.opts.nameserver_port = dns.port();
  s.opts.timeout_ms = 10000;
  size_t calls = 0;
  shard_group_options o;
  o.shards = 1;
  o.reactor.ring.sq_entries = 64;
  o.reactor.ring.cq_entries = 256;
  o.reactor.buffers.count = 16;
  auto err = run_shards(o, [&](reactor& r) {
    auto res = std::make_unique<resolver>(r, s.opts);
    res->resolve("silent.test", 80, [&](auto, int, std::string_view) { ++calls; });
    uint64_t stop_ms = 0;
    r.add_turn_hook([&] {
      if (res && dns.queries() == 2) {
        res->resolve("10.0.0.1", 80, [&](auto, int, std::string_view) { ++calls; });
        res.reset();  // the receive is in the kernel; its completion must find a live handler
        stop_ms = monotonic_ms() + 100;
      }
      if (!res && monotonic_ms() > stop_ms) r.stop();
      r.request_turn();  // spin: nothing else would wake the loop
    });
    r.run();
  });
  EXPECT_EQ(err, "");
  EXPECT_EQ(calls, 0u);
}

TEST(ResolverFiles, ResolvConf) {
  resolv_conf c = parse_resolv_conf(
      "# comment\n"
      "nameserver 10.0.0.1\n"
      "nameserver ::1 ; trailing comment\n"
      "nameserver not-an-ip\n"
      "nameserver 10.0.0.3\n"
      "nameserver 10.0.0.4\n"
      "domain ignored.test\n"
      "search Corp.Test. example.com\n"
      "options ndots:3 timeout:99 attempts:0 rotate edns0 unknown:1 ndots:x\n");
  ASSERT_EQ(c.nameservers.size(), 3u);
  EXPECT_EQ(to_string(c.nameservers[1], 53), "[::1]:53");
  EXPECT_EQ(to_string(c.nameservers[2], 53), "10.0.0.3:53");
  EXPECT_EQ(c.search, (std::vector<std::string>{"corp.test", "example.com"}));
  EXPECT_EQ(c.ndots, 3u);
  EXPECT_EQ(c.timeout_s, 30u);
  EXPECT_EQ(c.attempts, 1u);
  EXPECT_TRUE(c.rotate);
  EXPECT_TRUE(c.edns0);

  resolv_conf empty = parse_resolv_conf("");
  ASSERT_EQ(empty.nameservers.size(), 1u);
  EXPECT_EQ(to_string(empty.nameservers[0], 53), "127.0.0.1:53");
  EXPECT_EQ(empty.timeout_s, 5u);
  EXPECT_EQ(empty.attempts, 2u);
  EXPECT_EQ(parse_resolv_conf("domain a.test\n").search, std::vector<std::string>{"a.test"});
}

TEST(ResolverFiles, Hosts) {
  hosts_table t = parse_hosts(
      "127.0.0.1 localhost\n"
      "::1 localhost ip6-localhost\n"
      "  10.0.0.5\tWeb web.Example.  # web server\n"
      "10.0.0.5 web\n"
      "# 10.0.0.6 commented\n"
      "bogus name\n"
      "[::2] bracketed\n");
  ASSERT_EQ(t["localhost"].size(), 2u);
  EXPECT_FALSE(t["localhost"][0].v6);
  EXPECT_TRUE(t["localhost"][1].v6);
  EXPECT_EQ(t["web"].size(), 1u);
  EXPECT_EQ(t["web.example"].size(), 1u);
  EXPECT_FALSE(t.contains("commented"));
  EXPECT_FALSE(t.contains("name"));
  EXPECT_FALSE(t.contains("bracketed"));
}

TEST(ResolverFiles, IpLiterals) {
  dns::address a;
  EXPECT_TRUE(parse_ip_literal("192.0.2.1", a));
  EXPECT_FALSE(a.v6);
  EXPECT_TRUE(parse_ip_literal("[2001:db8::1]", a));
  EXPECT_TRUE(a.v6);
  EXPECT_EQ(to_string(a, 8080), "[2001:db8::1]:8080");
  EXPECT_FALSE(parse_ip_literal("[192.0.2.1]", a));
  EXPECT_FALSE(parse_ip_literal("example.com", a));
  EXPECT_FALSE(parse_ip_literal("1.2.3", a));
  EXPECT_FALSE(parse_ip_literal("", a));
}

}  // namespace
}  // namespace rc::test
