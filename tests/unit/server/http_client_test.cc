// http_client against scripted loopback servers: keep-alive reuse, framing, cancel, each
// timeout, connect failures, backpressure, the keep-alive race and queueing for a connection.
#include "server/http_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

#include "http_test_server.h"

namespace rc::server {
namespace {

using test::client_run;
using test::get;
using test::ok;
using test::peer;
using test::post;
using test::recording_sink;
using test::run_client;
using test::script_server;

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
      return;  // the upstream closes the kept-alive connection as the second request goes out
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

// The upstream worked on the request for a while, then closed: it may have acted on it, so it is
// not re-sent behind the caller's back; the caller hears `reset` (its retry policy decides).
TEST(HttpClient, NoResendWhenAReusedConnectionClosesLongAfterTheWrite) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  std::atomic<int> posts{0};
  script_server server([&](peer& p, int index) {
    p.read_request();
    if (index == 0) {
      p.write(ok("first"));
      if (!p.read_request().empty()) ++posts;
      std::this_thread::sleep_for(std::chrono::milliseconds(300));  // "prefill", then a crash
      return;
    }
    ++posts;
    p.write(ok("second"));
    p.wait_closed();
  });
  recording_sink a, b;
  request_handle ha, hb;
  pool_stats stats;
  run_client([&](client_run& run) {
    client_pool& pool = run.client->pool(server.endpoint());
    a.on_end_hook = [&] { hb = run.client->start(pool, post("{\"gen\":1}"), b); };
    b.on_end_hook = [&] {
      stats = pool.stats();
      run.done();
    };
    ha = run.client->start(pool, get(), a);
  });
  EXPECT_FALSE(b.ended);
  EXPECT_EQ(b.error, client_error::reset) << b.body;
  EXPECT_EQ(stats.stale_resends, 0u);
  EXPECT_EQ(posts.load(), 1);
  EXPECT_EQ(server.accepted(), 1);
}

TEST(HttpClient, IdleConnectionsExpireAndCloseDroppedOnes) {
  if (!test::uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  std::atomic<int> closed_by_client{0};
  script_server server([&](peer& p, int) {
    p.read_request();
    p.write(ok("x"));
    if (p.wait_closed()) ++closed_by_client;
  });
  recording_sink a;
  request_handle h;
  pool_stats right_after, later;
  run_client([&](client_run& run) {
    pool_options o;
    o.idle_keepalive_ms = 50;
    client_pool& pool = run.client->pool(server.endpoint(), o);
    a.on_end_hook = [&] {
      right_after = pool.stats();
      run.later(300, [&] {
        later = pool.stats();
        run.done();
      });
    };
    h = run.client->start(pool, get(), a);
  });
  EXPECT_EQ(right_after.idle, 1u);
  EXPECT_EQ(later.idle, 0u);
  for (int i = 0; i < 500 && closed_by_client.load() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(closed_by_client.load(), 1);
}

}  // namespace
}  // namespace rc::server
