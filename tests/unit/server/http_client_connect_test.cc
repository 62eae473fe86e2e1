// http_client's connections: connect failures, name lookup through an installed resolver,
// waiting for a pool slot, and the hand-off of upgraded (101) connections.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "http_test_server.h"
#include "proto/ws.h"
#include "server/http_client.h"

namespace rc::server {
namespace {

using test::client_run;
using test::get;
using test::ok;
using test::peer;
using test::recording_sink;
using test::run_client;
using test::script_server;

// A fake name lookup (the shard resolver's shape): answers in a later turn.
void install_fake_lookup(client_run& run, std::vector<sockaddr_storage> answer, int error) {
  run.client->set_lookup([&run, answer, error](std::string_view host, uint16_t,
                                               http_client::lookup_done done) {
    std::string name(host);
    run.loop->post(run.loop->shard_id(), [answer, error, name, done = std::move(done)]() mutable {
      done(error ? std::vector<sockaddr_storage>{} : answer, error,
           error ? test::cat("no such name ", name) : std::string());
    });
  });
}

sockaddr_storage loopback(uint16_t port) {
  sockaddr_storage s{};
  auto* a = reinterpret_cast<sockaddr_in*>(&s);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return s;
}

TEST(HttpClient, ConnectRefused) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  url::endpoint ep;
  {
    script_server gone([](peer&, int) {});
    ep = gone.endpoint();
  }
  recording_sink s;
  request_handle h;
  run_client([&](client_run& run) {
    s.on_end_hook = [&] { run.done(); };
    h = run.client->start(run.client->pool(ep), get(), s);
  });
  EXPECT_EQ(s.error, client_error::connect_failed);
  EXPECT_NE(s.error_message.find("Connection refused"), std::string::npos) << s.error_message;
}

// A resolver that reads hosts and resolv.conf from a temporary directory, and whose only
// nameserver is a closed UDP port on loopback (it refuses at once).
struct private_resolver {
  std::string dir;
  client_options opts;
  private_resolver() {
    char tmpl[] = "/tmp/rc-http-client-XXXXXX";
    dir = mkdtemp(tmpl);
    write(dir + "/hosts", "127.0.0.1 localhost upstream.local\n");
    write(dir + "/resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(udp, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(udp, reinterpret_cast<sockaddr*>(&a), &len);
    close(udp);
    opts.resolver_options.hosts_path = dir + "/hosts";
    opts.resolver_options.resolv_conf_path = dir + "/resolv.conf";
    opts.resolver_options.nameserver_port = ntohs(a.sin_port);
  }
  ~private_resolver() { std::filesystem::remove_all(dir); }
  static void write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
  }
};

TEST(HttpClient, NamesResolveThroughTheResolversHostsFile) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  private_resolver names;
  std::string request;
  script_server server([&](peer& p, int) {
    request = p.read_request();
    p.write(ok("by name"));
    p.wait_closed();
  });
  recording_sink s;
  request_handle h;
  run_client(
      [&](client_run& run) {
        url::endpoint ep;
        ep.host = "upstream.local";
        ep.port = server.port();
        s.on_end_hook = [&] { run.done(); };
        h = run.client->start(run.client->pool(ep), get(), s);
      },
      20000, names.opts);
  EXPECT_EQ(s.body, "by name") << s.error_message;
  EXPECT_NE(request.find(test::cat("Host: upstream.local:", std::to_string(server.port()))),
            std::string::npos);
}

TEST(HttpClient, UnresolvableHostFailsClearly) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  private_resolver names;
  url::endpoint ep;
  ep.host = "upstream.invalid";
  ep.port = 80;
  recording_sink s;
  request_handle h;
  run_client(
      [&](client_run& run) {
        s.on_end_hook = [&] { run.done(); };
        h = run.client->start(run.client->pool(ep), get(), s);
      },
      20000, names.opts);
  EXPECT_EQ(s.error, client_error::connect_failed);
  EXPECT_NE(s.error_message.find("cannot resolve host \"upstream.invalid\": "), std::string::npos)
      << s.error_message;
}

// Waiting for a pool slot is not the endpoint failing to connect: its own kind (no breaker verdict
// upstream of here).
TEST(HttpClient, PoolExhaustedWhileWaitingForAPoolSlot) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  script_server server([&](peer& p, int) {
    p.read_request();
    p.wait_closed();
  });
  recording_sink a, b;
  request_handle ha, hb;
  run_client([&](client_run& run) {
    pool_options o;
    o.max_connections = 1;
    client_pool& pool = run.client->pool(server.endpoint(), o);
    b.on_end_hook = [&] { run.done(); };
    ha = run.client->start(pool, get(), a);
    http_request r = get();
    r.timeouts.connect_ms = 100;
    hb = run.client->start(pool, std::move(r), b);
  });
  EXPECT_EQ(b.error, client_error::pool_exhausted) << name_of(b.error);
  EXPECT_NE(b.error_message.find("all 1 connections"), std::string::npos) << b.error_message;
  EXPECT_FALSE(a.finished());
  // The first request's connection is the only one; b never opened another. The server's accept
  // thread may not have run yet when b gave up (loaded machine): wait for it, then count.
  EXPECT_TRUE(server.wait_accepted(1));
  EXPECT_EQ(server.accepted(), 1);
}

TEST(HttpClient, RequestsBeyondMaxConnectionsWaitTheirTurn) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  script_server server([&](peer& p, int) {
    for (int i = 0; i < 3; ++i) {
      if (p.read_request().empty()) return;
      p.write(ok(test::cat("r", std::to_string(i))));
    }
    p.wait_closed();
  });
  recording_sink s[3];
  request_handle h[3];
  int ended = 0;
  run_client([&](client_run& run) {
    pool_options o;
    o.max_connections = 1;
    client_pool& pool = run.client->pool(server.endpoint(), o);
    for (int i = 0; i < 3; ++i) {
      s[i].on_end_hook = [&] {
        if (++ended == 3) run.done();
      };
      h[i] = run.client->start(pool, get(), s[i]);
    }
  });
  EXPECT_EQ(s[0].body, "r0");
  EXPECT_EQ(s[1].body, "r1");
  EXPECT_EQ(s[2].body, "r2");
  EXPECT_EQ(server.accepted(), 1);
}

TEST(HttpClient, NamesResolveThroughTheLookupAndEachAddressIsTried) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  uint16_t dead_port;
  {
    script_server gone([](peer&, int) {});
    dead_port = gone.port();
  }
  std::string request;
  script_server server([&](peer& p, int) {
    request = p.read_request();
    p.write(ok("resolved"));
    p.wait_closed();
  });
  recording_sink s;
  request_handle h;
  run_client([&](client_run& run) {
    install_fake_lookup(run, {loopback(dead_port), loopback(server.port())}, 0);
    url::endpoint ep;
    ep.host = "upstream.test";
    ep.port = 8080;
    s.on_end_hook = [&] { run.done(); };
    h = run.client->start(run.client->pool(ep), get(), s);
  });
  EXPECT_EQ(s.body, "resolved") << s.error_message;
  EXPECT_NE(request.find("Host: upstream.test:8080\r\n"), std::string::npos) << request;
}

// A request that waited for a pool slot, then met the keep-alive race, goes back to the pool with
// a fresh connect deadline: the time it spent waiting and on the dead connection is not charged
// to the new connect (here a slow lookup).
TEST(HttpClient, StaleResendGetsAFreshConnectDeadline) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  script_server server([&](peer& p, int index) {
    p.read_request();
    if (index == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(700));
      p.write(ok("first"));
      return;  // closes the kept-alive connection as the second request goes out
    }
    p.write(ok("second"));
    p.wait_closed();
  });
  recording_sink a, b;
  request_handle ha, hb;
  int lookups = 0;
  pool_stats stats;
  run_client([&](client_run& run) {
    // The first lookup answers at once, the next ones after 600 ms.
    run.client->set_lookup([&](std::string_view, uint16_t, http_client::lookup_done done) {
      auto answer = std::make_shared<http_client::lookup_done>(std::move(done));
      uint64_t delay = lookups++ == 0 ? 0 : 600;
      run.later(delay, [answer, port = server.port()] {
        (*answer)({loopback(port)}, 0, {});
      });
    });
    url::endpoint ep;
    ep.host = "upstream.test";
    ep.port = server.port();
    pool_options o;
    o.max_connections = 1;
    client_pool& pool = run.client->pool(ep, o);
    b.on_end_hook = [&] {
      stats = pool.stats();
      run.done();
    };
    http_request first = get();
    first.timeouts.connect_ms = 1000;
    http_request second = get();
    second.timeouts.connect_ms = 1000;  // waits ~700 ms for the slot, then 600 ms for a lookup
    ha = run.client->start(pool, std::move(first), a);
    hb = run.client->start(pool, std::move(second), b);
  });
  EXPECT_EQ(a.body, "first") << a.error_message;
  EXPECT_EQ(b.body, "second") << name_of(b.error) << ": " << b.error_message;
  EXPECT_EQ(stats.stale_resends, 1u);
  EXPECT_EQ(lookups, 2);
}

TEST(HttpClient, LookupFailureIsConnectFailedWithTheReason) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  recording_sink s;
  request_handle h;
  run_client([&](client_run& run) {
    install_fake_lookup(run, {}, ENOENT);
    url::endpoint ep;
    ep.host = "nowhere.test";
    ep.port = 80;
    s.on_end_hook = [&] { run.done(); };
    h = run.client->start(run.client->pool(ep), get(), s);
  });
  EXPECT_EQ(s.error, client_error::connect_failed);
  EXPECT_NE(s.error_message.find("cannot resolve host \"nowhere.test\": no such name nowhere.test"),
            std::string::npos)
      << s.error_message;
}

// A 101 answer hands the connection over with the bytes that came with the head; the new owner
// then talks raw bytes both ways and hears the close.
TEST(HttpClient, UpgradeHandsOffTheConnectionWithLeftoverBytes) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  const std::string key = "dGhlIHNhbXBsZSBub25jZQ==";
  std::string upgrade_request, from_client;
  script_server server([&](peer& p, int) {
    upgrade_request = p.read_request();
    char accept[28];
    ws::compute_accept(key, accept);
    p.write(test::cat("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n",
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: ", std::string_view(accept, 28),
                      "\r\n\r\n\x81\x05hello"));
    from_client = p.read_bytes(4);
    p.write("pong");
  });
  struct collector final : stream_handler {
    std::string data;
    int closed = -1;
    std::function<void()> on_close;
    void on_stream_data(std::string_view bytes) override { data.append(bytes); }
    void on_stream_closed(int error) override {
      closed = error;
      on_close();
    }
  } got;
  recording_sink s;
  request_handle h;
  pool_stats stats;
  run_client([&](client_run& run) {
    client_pool& pool = run.client->pool(server.endpoint());
    s.on_end_hook = [&] {
      ASSERT_TRUE(s.upgraded);
      got.on_close = [&] {
        stats = pool.stats();
        run.done();
      };
      s.upgraded->set_handler(got);
      s.upgraded->send("ping");
    };
    http_request r = get("/v1/responses");
    r.upgrade = true;
    r.headers = {{"Upgrade", "websocket"},
                 {"Connection", "Upgrade"},
                 {"Sec-WebSocket-Key", key},
                 {"Sec-WebSocket-Version", "13"}};
    h = run.client->start(pool, std::move(r), s);
  });
  EXPECT_EQ(s.events, (std::vector<std::string>{"upgraded"}));
  EXPECT_EQ(s.status, 101);
  EXPECT_EQ(s.upgraded_leftover, "\x81\x05hello");
  EXPECT_EQ(from_client, "ping");
  EXPECT_EQ(got.data, "pong");
  EXPECT_EQ(got.closed, 0);
  EXPECT_EQ(upgrade_request.find("Content-Length"), std::string::npos);
  EXPECT_EQ(stats.busy, 0u);
  EXPECT_EQ(stats.idle, 0u);
}

TEST(HttpClient, UnaskedUpgradeIsAProtocolError) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  script_server server([&](peer& p, int) {
    p.read_request();
    p.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
    p.wait_closed();
  });
  recording_sink s;
  request_handle h;
  run_client([&](client_run& run) {
    s.on_end_hook = [&] { run.done(); };
    h = run.client->start(run.client->pool(server.endpoint()), get(), s);
  });
  EXPECT_EQ(s.error, client_error::protocol);
}

}  // namespace
}  // namespace rc::server
