// http_client against scripted loopback servers: keep-alive reuse, framing, cancel, each
// timeout, connect failures, backpressure, the keep-alive race and queueing for a connection.
#include "server/http_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

#include "http_test_server.h"
#include "proto/ws.h"

namespace rc::server {
namespace {

using test::client_run;
using test::peer;
using test::recording_sink;
using test::run_client;
using test::script_server;

http_request get(std::string target = "/") {
  http_request r;
  r.method = "GET";
  r.target = std::move(target);
  return r;
}

http_request post(std::string_view body) {
  http_request r;
  r.method = "POST";
  r.target = "/v1/chat/completions";
  r.headers = {{"Content-Type", "application/json"}};
  r.body = shared_buffer::copy_of(body);
  return r;
}

std::string ok(std::string_view body) {
  return test::cat("HTTP/1.1 200 OK\r\nContent-Length: ", std::to_string(body.size()), "\r\n\r\n",
                   body);
}

TEST(HttpClient, ReusesKeptAliveConnection) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  std::string first_request;
  script_server server([&](peer& p, int) {
    first_request = p.read_request();
    p.write(ok("one"));
    if (!p.read_request().empty()) p.write(ok("two"));
    p.wait_closed();
  });
  recording_sink a, b;
  request_handle ha, hb;
  pool_stats stats;
  run_client([&](client_run& run) {
    client_pool& pool = run.client->pool(server.endpoint());
    a.on_end_hook = [&] { hb = run.client->start(pool, get("/second"), b); };
    b.on_end_hook = [&] {
      stats = pool.stats();
      run.done();
    };
    ha = run.client->start(pool, post("{\"x\":1}"), a);
  });
  EXPECT_EQ(a.body, "one");
  EXPECT_EQ(b.body, "two");
  EXPECT_EQ(server.accepted(), 1);
  EXPECT_EQ(stats.requests, 2u);
  EXPECT_EQ(stats.reused, 1u);
  EXPECT_EQ(stats.connects, 1u);
  EXPECT_EQ(stats.idle, 1u);
  EXPECT_EQ(first_request,
            test::cat("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:",
                      std::to_string(server.port()),
                      "\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"x\":1}"));
}

TEST(HttpClient, DecodesChunkedBodySplitAtEveryByte) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  script_server server([&](peer& p, int) {
    p.read_request();
    p.write_bytewise(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nTrailer: x\r\n\r\n");
    p.wait_closed();
  });
  recording_sink s;
  request_handle h;
  run_client([&](client_run& run) {
    s.on_end_hook = [&] { run.done(); };
    h = run.client->start(run.client->pool(server.endpoint()), get(), s);
  });
  EXPECT_EQ(s.events, (std::vector<std::string>{"head 200", "end"}));
  EXPECT_EQ(s.body, "hello world");
}

TEST(HttpClient, CloseDelimitedBodyEndsAtEofAndIsNotReused) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  script_server server([&](peer& p, int index) {
    p.read_request();
    p.write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\n");
    p.write(test::cat("data: ", std::to_string(index), "\n\n"));
  });
  recording_sink a, b;
  request_handle ha, hb;
  run_client([&](client_run& run) {
    client_pool& pool = run.client->pool(server.endpoint());
    a.on_end_hook = [&] { hb = run.client->start(pool, get(), b); };
    b.on_end_hook = [&] { run.done(); };
    ha = run.client->start(pool, get(), a);
  });
  EXPECT_TRUE(a.ended);
  EXPECT_EQ(a.body, "data: 1\n\ndata: 0\n\n");
  EXPECT_EQ(b.body, "data: 1\n\ndata: 1\n\n");
  EXPECT_EQ(server.accepted(), 2);
}

TEST(HttpClient, CancelAbortsTheConnectionAndNeverReusesIt) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  std::atomic<bool> first_closed{false};
  script_server server([&](peer& p, int index) {
    p.read_request();
    if (index == 0) {
      p.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
      first_closed = p.wait_closed();
      return;
    }
    p.write(ok("fresh"));
    p.wait_closed();
  });
  recording_sink a, b;
  request_handle ha, hb;
  run_client([&](client_run& run) {
    client_pool& pool = run.client->pool(server.endpoint());
    a.on_body_hook = [&](std::string_view) {
      ha.cancel();  // from inside a callback
      hb = run.client->start(pool, get(), b);
    };
    b.on_end_hook = [&] { run.done(); };
    ha = run.client->start(pool, get(), a);
  });
  EXPECT_EQ(a.events, (std::vector<std::string>{"head 200"}));
  EXPECT_EQ(a.body, "partial");
  EXPECT_EQ(b.body, "fresh");
  EXPECT_EQ(server.accepted(), 2);
  EXPECT_TRUE(first_closed.load());
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

TEST(HttpClient, UnresolvableHostFailsClearly) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  url::endpoint ep;
  ep.host = "upstream.invalid";
  ep.port = 80;
  recording_sink s;
  request_handle h;
  run_client([&](client_run& run) {
    s.on_end_hook = [&] { run.done(); };
    h = run.client->start(run.client->pool(ep), get(), s);
  });
  EXPECT_EQ(s.error, client_error::connect_failed);
  EXPECT_NE(s.error_message.find("cannot resolve host"), std::string::npos) << s.error_message;
}

TEST(HttpClient, TimeoutFirstByte) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  script_server server([&](peer& p, int) {
    p.read_request();
    p.wait_closed();
  });
  recording_sink s;
  request_handle h;
  run_client([&](client_run& run) {
    s.on_end_hook = [&] { run.done(); };
    http_request r = get();
    r.timeouts.first_byte_ms = 100;
    h = run.client->start(run.client->pool(server.endpoint()), std::move(r), s);
  });
  EXPECT_EQ(s.error, client_error::timeout_first_byte);
}

TEST(HttpClient, TimeoutIdleAfterSomeBody) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  script_server server([&](peer& p, int) {
    p.read_request();
    p.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    p.wait_closed();
  });
  recording_sink s;
  request_handle h;
  run_client([&](client_run& run) {
    s.on_end_hook = [&] { run.done(); };
    http_request r = get();
    r.timeouts.idle_ms = 100;
    h = run.client->start(run.client->pool(server.endpoint()), std::move(r), s);
  });
  EXPECT_EQ(s.events, (std::vector<std::string>{"head 200", "error timeout_idle"}));
  EXPECT_EQ(s.body, "abc");
}

TEST(HttpClient, TimeoutTotalWhileBytesKeepComing) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  std::atomic<bool> stop{false};
  script_server server([&](peer& p, int) {
    p.read_request();
    p.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 400 && !stop; ++i) {
      p.write("1\r\nx\r\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  recording_sink s;
  request_handle h;
  run_client([&](client_run& run) {
    s.on_end_hook = [&] { run.done(); };
    http_request r = get();
    r.timeouts.idle_ms = 2000;
    r.timeouts.total_ms = 300;
    h = run.client->start(run.client->pool(server.endpoint()), std::move(r), s);
  });
  stop = true;
  EXPECT_EQ(s.error, client_error::timeout_total);
  EXPECT_FALSE(s.body.empty());
}

TEST(HttpClient, TimeoutConnectWhileWaitingForAPoolSlot) {
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
  EXPECT_EQ(b.error, client_error::timeout_connect);
  EXPECT_FALSE(a.finished());
  EXPECT_EQ(server.accepted(), 1);
}

TEST(HttpClient, ResetBeforeTheBodyIsComplete) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  script_server server([&](peer& p, int) {
    p.read_request();
    p.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
  });
  recording_sink s;
  request_handle h;
  run_client([&](client_run& run) {
    s.on_end_hook = [&] { run.done(); };
    h = run.client->start(run.client->pool(server.endpoint()), get(), s);
  });
  EXPECT_EQ(s.events, (std::vector<std::string>{"head 200", "error reset"}));
  EXPECT_EQ(s.body, "abc");
}

TEST(HttpClient, MalformedResponseIsAProtocolError) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  script_server server([&](peer& p, int) {
    p.read_request();
    p.write("SSH-2.0-OpenSSH\r\n\r\n");
    p.wait_closed();
  });
  recording_sink s;
  request_handle h;
  run_client([&](client_run& run) {
    s.on_end_hook = [&] { run.done(); };
    h = run.client->start(run.client->pool(server.endpoint()), get(), s);
  });
  EXPECT_EQ(s.error, client_error::protocol);
  EXPECT_NE(s.error_message.find("bad_status_line"), std::string::npos);
}

TEST(HttpClient, InvalidHeaderFailsWithoutSending) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  script_server server([&](peer& p, int) { p.read_request(1000); });
  recording_sink s;
  request_handle h;
  run_client([&](client_run& run) {
    s.on_end_hook = [&] { run.done(); };
    http_request r = get();
    r.headers = {{"X-Bad", "a\r\nInjected: 1"}};
    h = run.client->start(run.client->pool(server.endpoint()), std::move(r), s);
  });
  EXPECT_EQ(s.error, client_error::protocol);
  EXPECT_EQ(server.accepted(), 0);
}

TEST(HttpClient, PausedRequestGetsNoBodyAndNoIdleTimeout) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  std::string big(200000, 'z');
  script_server server([&](peer& p, int) {
    p.read_request();
    p.write(ok(big));
    p.wait_closed();
  });
  recording_sink s;
  request_handle h;
  size_t body_while_paused = 0;
  run_client([&](client_run& run) {
    s.on_head_hook = [&] {
      h.pause_reading();
      run.later(300, [&] {
        body_while_paused = s.body.size();
        h.resume_reading();
      });
    };
    s.on_end_hook = [&] { run.done(); };
    http_request r = get();
    r.timeouts.idle_ms = 100;  // shorter than the pause: must not fire while paused
    h = run.client->start(run.client->pool(server.endpoint()), std::move(r), s);
  });
  EXPECT_EQ(body_while_paused, 0u);
  EXPECT_TRUE(s.ended) << s.error_message;
  EXPECT_EQ(s.body.size(), big.size());
}

TEST(HttpClient, ResendsOnceWhenAReusedConnectionWasClosed) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  script_server server([&](peer& p, int index) {
    p.read_request();
    if (index == 0) {
      p.write(ok("first"));
      p.read_request();  // the second request arrives on the kept-alive connection...
      return;            // ...and the upstream closes it without an answer
    }
    p.write(ok("second"));
    p.wait_closed();
  });
  recording_sink a, b;
  request_handle ha, hb;
  pool_stats stats;
  run_client([&](client_run& run) {
    client_pool& pool = run.client->pool(server.endpoint());
    a.on_end_hook = [&] { hb = run.client->start(pool, get(), b); };
    b.on_end_hook = [&] {
      stats = pool.stats();
      run.done();
    };
    ha = run.client->start(pool, get(), a);
  });
  EXPECT_EQ(b.body, "second") << b.error_message;
  EXPECT_EQ(stats.stale_resends, 1u);
  EXPECT_EQ(server.accepted(), 2);
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
