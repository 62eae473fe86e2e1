// nats_client against a fake server that misbehaves: garbage, a message beyond max_payload,
// -ERR in the handshake and after it, a close in the middle of a payload, no PONG (stale),
// no INFO (handshake timeout), a server without headers. Each time the client drops the
// connection, says why (last_error), delivers nothing partial, and reconnects.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "fake_nats_server.h"
#include "nats_server_fixture.h"
#include "server/nats_client.h"

namespace rc::server {
namespace {

using test::fake_peer;
using test::fake_server;
using test::info_line;
using test::nats_loop;
using test::run_nats;

nats_options fake_options(const fake_server& s) {
  nats_options o;
  o.urls = {s.url()};
  o.reconnect_min_ms = 10;
  o.reconnect_max_ms = 50;
  o.connect_timeout_ms = 2000;
  return o;
}

// A well-behaved second connection: handshake, then hold until the client leaves.
void behave(fake_peer& p) {
  if (p.handshake()) p.wait_closed(10000);
}

// Runs the client until it has connected `connects` times; returns the reasons it gave for
// each connection it lost or try that failed (last_error at each disconnect/reconnect).
struct outcome {
  std::vector<std::string> errors;
  std::vector<std::string> delivered;
  nats_stats stats;
};
outcome run_until_connects(fake_server&, nats_options o, uint64_t connects,
                           std::function<void(nats_client&)> setup = {}) {
  outcome out;
  run_nats([&](nats_loop& run) {
    nats_client& c = run.client(o);
    c.subscribe("big", "", [&](const nats_msg& m) { out.delivered.emplace_back(m.data); });
    if (setup) setup(c);
    std::string last;
    run.poll(2, [&, last]() mutable {
      if (!c.last_error().empty() && c.last_error() != last) {
        last = c.last_error();
        out.errors.push_back(last);
      }
      if (c.stats().connects < connects) return false;
      out.stats = c.stats();
      run.later(20, [&] { run.done(); });
      return true;
    });
  });
  return out;
}

bool contains(const std::vector<std::string>& v, std::string_view what) {
  for (const auto& s : v)
    if (s.find(what) != std::string::npos) return true;
  return false;
}

TEST(NatsHostile, GarbageDropsTheConnection) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  fake_server srv([](fake_peer& p, int n) {
    if (n > 0) return behave(p);
    if (p.handshake()) p.send(std::string("\x16\x03\x01 garbage\r\n", 13));
    p.wait_closed();
  });
  outcome o = run_until_connects(srv, fake_options(srv), 2);
  EXPECT_TRUE(contains(o.errors, "protocol error: unknown operation")) << o.errors.size();
  EXPECT_EQ(o.stats.reconnects, 1u);
}

// INFO's max_payload bounds what the client publishes, not what it receives: a delivery beyond
// it (stored before the limit was lowered, or from a server of the cluster configured otherwise)
// arrives; only one beyond inbound_bytes_max drops the connection, unread.
TEST(NatsHostile, MaxPayloadBoundsPublishesInboundBytesMaxBoundsDeliveries) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  size_t max_payload_seen = 0;
  bool publish_over_max = true;
  fake_server srv([](fake_peer& p, int n) {
    if (n > 0) return behave(p);
    std::string info = "INFO {\"server_id\":\"FAKE\",\"headers\":true,\"max_payload\":100}\r\n";
    if (p.handshake(info) && p.until("SUB big")) {
      p.send("MSG big 2 100\r\n" + std::string(100, 'a') + "\r\n");
      p.send("MSG big 2 101\r\n" + std::string(101, 'b') + "\r\n");
      p.send("MSG big 2 200\r\n" + std::string(200, 'c') + "\r\n");
      p.send("MSG big 2 201\r\n" + std::string(201, 'd') + "\r\n");
    }
    p.wait_closed();
  });
  nats_options opts = fake_options(srv);
  opts.inbound_bytes_max = 200;
  outcome o = run_until_connects(srv, opts, 2, [&](nats_client& c) {
    c.add_state_listener([&](nats_state s) {
      if (s != nats_state::connected || max_payload_seen != 0) return;
      max_payload_seen = c.max_payload();
      publish_over_max = c.publish("x", "", "", std::string(101, 'x'));
    });
  });
  EXPECT_EQ(max_payload_seen, 100u);
  EXPECT_FALSE(publish_over_max);
  EXPECT_TRUE(contains(o.errors, "message exceeds max_payload"));
  ASSERT_EQ(o.delivered.size(), 3u) << "up to inbound_bytes_max arrives, beyond not";
  EXPECT_EQ(o.delivered[0], std::string(100, 'a'));
  EXPECT_EQ(o.delivered[1], std::string(101, 'b'));
  EXPECT_EQ(o.delivered[2], std::string(200, 'c'));
}

// Nothing is subscribed before the handshake ends: a message then is a protocol error, refused
// from its control line (a peer that is not a NATS server cannot make us buffer its payload).
TEST(NatsHostile, MessageBeforeTheHandshakeDropsTheConnection) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  fake_server srv([](fake_peer& p, int n) {
    if (n > 0) return behave(p);
    p.send(info_line);
    p.send("MSG big 2 1000000\r\n");
    p.wait_closed();
  });
  outcome o = run_until_connects(srv, fake_options(srv), 1);
  EXPECT_TRUE(contains(o.errors, "protocol error")) << (o.errors.empty() ? "" : o.errors[0]);
  EXPECT_EQ(srv.connections(), 2);
}

TEST(NatsHostile, ErrInTheHandshakeFailsTheTry) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  fake_server srv([](fake_peer& p, int n) {
    if (n > 0) return behave(p);
    p.send(info_line);
    p.line();  // CONNECT
    p.line();  // PING
    p.send("-ERR 'Authorization Violation'\r\n");
  });
  outcome o = run_until_connects(srv, fake_options(srv), 1);
  EXPECT_TRUE(contains(o.errors, "server error: Authorization Violation"));
  EXPECT_EQ(o.stats.reconnects, 0u) << "a failed handshake is not a connection";
}

TEST(NatsHostile, ErrAfterTheHandshake) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  fake_server srv([](fake_peer& p, int n) {
    if (n > 0) return behave(p);
    if (p.handshake() && p.until("SUB big")) {
      // A permissions violation concerns one subject: the connection stays.
      p.send("-ERR 'Permissions Violation for Publish to \"x\"'\r\nMSG big 2 2\r\nok\r\n");
      p.send("-ERR 'Unknown Protocol Operation'\r\nMSG big 2 4\r\nlost\r\n");
    }
    p.wait_closed();
  });
  outcome o = run_until_connects(srv, fake_options(srv), 2);
  EXPECT_TRUE(contains(o.errors, "server error: Unknown Protocol Operation"));
  ASSERT_EQ(o.delivered.size(), 1u);
  EXPECT_EQ(o.delivered[0], "ok");
}

TEST(NatsHostile, CloseInTheMiddleOfAPayload) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  fake_server srv([](fake_peer& p, int n) {
    if (!p.handshake() || !p.until("SUB big")) return;
    if (n == 0) {
      p.send("MSG big 2 10\r\nhel");  // and close
      return;
    }
    // The next connection starts with a fresh parser: nothing of the first one's remains.
    p.send("MSG big 2 5\r\nworld\r\n");
    p.wait_closed();
  });
  outcome out;
  run_nats([&](nats_loop& run) {
    nats_client& c = run.client(fake_options(srv));
    c.subscribe("big", "", [&](const nats_msg& m) {
      out.delivered.emplace_back(m.data);
      out.errors.push_back(c.last_error());
      run.done();
    });
  });
  ASSERT_EQ(out.delivered.size(), 1u);
  EXPECT_EQ(out.delivered[0], "world");
  EXPECT_EQ(srv.connections(), 2);
}

TEST(NatsHostile, NoPongMeansStale) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  std::atomic<int> pings{0};
  std::atomic<bool> client_closed{false};
  fake_server srv([&](fake_peer& p, int n) {
    if (n > 0) return behave(p);
    if (!p.handshake()) return;
    for (;;) {
      std::string l = p.line(3000);
      if (l.empty()) break;
      if (l == "PING") ++pings;  // never answered
    }
    client_closed = true;
  });
  nats_options o = fake_options(srv);
  o.ping_interval_ms = 40;
  o.max_pings_out = 2;
  outcome out = run_until_connects(srv, o, 2);
  EXPECT_TRUE(contains(out.errors, "stale connection"));
  EXPECT_EQ(pings.load(), 2);
  EXPECT_TRUE(client_closed.load());
}

TEST(NatsHostile, AnswersServerPings) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  std::atomic<bool> ponged{false};
  fake_server srv([&](fake_peer& p, int) {
    if (!p.handshake()) return;
    p.send("PING\r\n");
    ponged = p.until("PONG");
    p.wait_closed();
  });
  run_nats([&](nats_loop& run) {
    run.client(fake_options(srv));
    run.poll(5, [&] {
      if (!ponged) return false;
      run.done();
      return true;
    });
  });
  EXPECT_TRUE(ponged.load());
}

TEST(NatsHostile, NoInfoTimesTheHandshakeOut) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  fake_server srv([](fake_peer& p, int n) {
    if (n > 0) return behave(p);
    p.wait_closed();  // says nothing
  });
  nats_options o = fake_options(srv);
  o.connect_timeout_ms = 150;
  outcome out = run_until_connects(srv, o, 1);
  EXPECT_TRUE(contains(out.errors, "handshake timed out"));
}

TEST(NatsHostile, ServerWithoutHeadersOrWithBadInfoIsRefused) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  fake_server srv([](fake_peer& p, int n) {
    if (n == 0) p.send("INFO {\"server_id\":\"OLD\"}\r\n");
    if (n == 1) p.send("INFO [not an object]\r\n");
    if (n < 2) return p.wait_closed(), void();
    behave(p);
  });
  nats_options o = fake_options(srv);
  o.reconnect_min_ms = 100;  // the poll sees each reason before the next try replaces it
  o.reconnect_max_ms = 200;
  outcome out = run_until_connects(srv, o, 1);
  EXPECT_TRUE(contains(out.errors, "does not support headers"));
  EXPECT_TRUE(contains(out.errors, "malformed INFO"));
}

}  // namespace
}  // namespace rc::server
