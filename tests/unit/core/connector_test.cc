// connector over real TCP on loopback, driven by a one-shard reactor: source addresses, the
// in-flight cap, refusals and deadlines.
#include "core/connector.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/listener.h"
#include "core/shard_group.h"

namespace rc {
namespace {

bool uring_usable() {
  uring_support s;
  return probe_uring(s).empty();
}

sockaddr_in loopback(const char* ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

// A listening socket on 127.0.0.1 with a kernel-chosen port; nobody accepts.
struct listening {
  int fd = -1;
  uint16_t port = 0;
  explicit listening(int backlog) {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = loopback("127.0.0.1", 0);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(listen(fd, backlog), 0);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~listening() { close(fd); }
};

struct outcome {
  int fd = -1;
  int error = -1;
};

// Runs a one-shard reactor; `body` queues connects and returns how many results to wait for.
std::vector<outcome> run_connects(
    const connector_options& opts,
    const std::function<void(connector&, std::vector<outcome>&, size_t& max_in_flight)>& body,
    size_t expected, size_t* max_in_flight = nullptr) {
  shard_group_options o;
  o.shards = 1;
  o.reactor.ring.sq_entries = 256;
  o.reactor.ring.cq_entries = 1024;
  o.reactor.buffers.count = 16;
  std::vector<outcome> results;
  size_t peak = 0;
  auto err = run_shards(o, [&](reactor& r) {
    connector c(r, opts);
    body(c, results, peak);
    uint64_t give_up_ms = monotonic_ms() + 10000;
    bool cancelled = false;
    r.add_turn_hook([&] {
      peak = std::max(peak, c.in_flight());
      if (!cancelled && (results.size() == expected || monotonic_ms() > give_up_ms)) {
        c.cancel_all();
        cancelled = true;
      }
      if (cancelled && c.idle()) r.stop();
    });
    r.run();
  });
  EXPECT_EQ(err, "");
  if (max_in_flight) *max_in_flight = peak;
  return results;
}

connector::done_fn record(std::vector<outcome>& out) {
  return [&out](int fd, int error) { out.push_back({fd, error}); };
}

TEST(Connector, ConnectsFromTheChosenSourceAddress) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  listening l(16);
  sockaddr_in remote = loopback("127.0.0.1", l.port);
  sockaddr_in source = loopback("127.0.0.7", 0);
  auto results = run_connects(
      connector_options{},
      [&](connector& c, std::vector<outcome>& out, size_t&) {
        c.connect(reinterpret_cast<sockaddr*>(&remote), sizeof remote,
                  reinterpret_cast<sockaddr*>(&source), sizeof source, record(out));
        c.connect(reinterpret_cast<sockaddr*>(&remote), sizeof remote, nullptr, 0, record(out));
      },
      2);
  ASSERT_EQ(results.size(), 2u);
  ASSERT_GE(results[0].fd, 0);
  ASSERT_GE(results[1].fd, 0);
  sockaddr_in local{};
  socklen_t len = sizeof local;
  ASSERT_EQ(getsockname(results[0].fd, reinterpret_cast<sockaddr*>(&local), &len), 0);
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &local.sin_addr, ip, sizeof ip);
  EXPECT_STREQ(ip, "127.0.0.7");
  EXPECT_NE(local.sin_port, 0);
  for (auto& r : results) close(r.fd);
}

TEST(Connector, CapsConnectsInFlightAndFinishesAll) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  listening l(128);
  sockaddr_in remote = loopback("127.0.0.1", l.port);
  size_t peak = 0;
  constexpr size_t n = 50;
  auto results = run_connects(
      connector_options{.in_flight_max = 3},
      [&](connector& c, std::vector<outcome>& out, size_t&) {
        for (size_t i = 0; i < n; ++i)
          c.connect(reinterpret_cast<sockaddr*>(&remote), sizeof remote, nullptr, 0, record(out));
        EXPECT_EQ(c.in_flight(), 3u);
        EXPECT_EQ(c.queued(), n - 3);
      },
      n, &peak);
  ASSERT_EQ(results.size(), n);
  EXPECT_LE(peak, 3u);
  for (auto& r : results) {
    EXPECT_GE(r.fd, 0);
    EXPECT_EQ(r.error, 0);
    close(r.fd);
  }
}

TEST(Connector, ReportsRefusal) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  uint16_t port;
  {
    listening l(1);
    port = l.port;
  }  // closed: nothing listens on the port now
  sockaddr_in remote = loopback("127.0.0.1", port);
  auto results = run_connects(
      connector_options{},
      [&](connector& c, std::vector<outcome>& out, size_t&) {
        c.connect(reinterpret_cast<sockaddr*>(&remote), sizeof remote, nullptr, 0, record(out));
      },
      1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].fd, -1);
  EXPECT_EQ(results[0].error, ECONNREFUSED);
}

TEST(Connector, ReportsBindFailureWithoutCallingBackInline) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  listening l(1);
  sockaddr_in remote = loopback("127.0.0.1", l.port);
  sockaddr_in source = loopback("192.0.2.1", 0);  // TEST-NET-1: not an address of this host
  auto results = run_connects(
      connector_options{},
      [&](connector& c, std::vector<outcome>& out, size_t&) {
        c.connect(reinterpret_cast<sockaddr*>(&remote), sizeof remote,
                  reinterpret_cast<sockaddr*>(&source), sizeof source, record(out));
        EXPECT_TRUE(out.empty());
      },
      1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].fd, -1);
  EXPECT_EQ(results[0].error, EADDRNOTAVAIL);
}

TEST(Connector, TimesOutWhenTheAcceptQueueIsFull) {
  if (!uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  // Backlog 0 and nobody accepting: the first connection fills the queue; Linux drops the SYNs of
  // the next ones, whose connects then hang until our deadline.
  listening l(0);
  sockaddr_in remote = loopback("127.0.0.1", l.port);
  uint64_t started = monotonic_ms();
  auto results = run_connects(
      connector_options{.timeout_ms = 150},
      [&](connector& c, std::vector<outcome>& out, size_t&) {
        for (int i = 0; i < 4; ++i)
          c.connect(reinterpret_cast<sockaddr*>(&remote), sizeof remote, nullptr, 0, record(out));
      },
      4);
  uint64_t elapsed = monotonic_ms() - started;
  ASSERT_EQ(results.size(), 4u);
  int timed_out = 0;
  for (auto& r : results) {
    if (r.fd >= 0) close(r.fd);
    if (r.error == ETIMEDOUT) ++timed_out;
  }
  EXPECT_GE(timed_out, 1);
  EXPECT_GE(elapsed, 140u);  // the wheel ticks in whole milliseconds
}

}  // namespace
}  // namespace rc
