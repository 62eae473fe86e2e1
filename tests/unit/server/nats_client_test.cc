// nats_client against a real nats-server: publish/subscribe, headers, request/reply, no
// responders, timeouts, unsubscribe, stop, and not-connected failures.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "nats_server_fixture.h"
#include "proto/nats.h"
#include "server/nats_client.h"

namespace rc::server {
namespace {

using test::nats_loop;
using test::nats_server_process;
using test::run_nats;

// Calls fn once `c` is connected (polling; tests only).
void when_connected(nats_loop& run, nats_client& c, std::function<void()> fn) {
  run.poll(5, [&c, fn = std::move(fn)]() mutable {
    if (!c.connected()) return false;
    fn();
    return true;
  });
}

TEST(NatsClient, PublishSubscribeInOrderWithHeaders) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  nats_server_process srv;
  ASSERT_TRUE(srv.start()) << srv.log();
  std::vector<std::string> got;
  std::string header_value;
  run_nats([&](nats_loop& run) {
    nats_client& sub = run.client(nats_loop::options_for(srv));
    nats_client& pub = run.client(nats_loop::options_for(srv));
    sub.subscribe("t.*", "", [&](const nats_msg& m) {
      std::string line(m.subject);
      line.append("=").append(m.data);
      got.push_back(line);
      if (!m.headers.empty()) header_value = std::string(m.header("rc-seq"));
      if (got.size() == 3) run.done();
    });
    // Once the subscriber's PING came back, its SUB is in place on the server.
    when_connected(run, sub, [&] {
      sub.flush([&](int error) {
        EXPECT_EQ(error, 0);
        when_connected(run, pub, [&] {
          EXPECT_TRUE(pub.publish("t.a", "", "", "one"));
          EXPECT_TRUE(pub.publish("t.b", "", nats::make_headers({{"Rc-Seq", "7"}}), "two"));
          EXPECT_TRUE(pub.publish("t.c", "", "", ""));
        });
      });
    });
  });
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "t.a=one");
  EXPECT_EQ(got[1], "t.b=two");
  EXPECT_EQ(got[2], "t.c=");
  EXPECT_EQ(header_value, "7");
}

// Messages of many sizes, most of them split across the 16 KiB receive buffers, arrive whole
// and in order (the parser's partial-operation path under real I/O).
TEST(NatsClient, ManyMessagesAcrossReadBoundaries) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  nats_server_process srv;
  ASSERT_TRUE(srv.start()) << srv.log();
  constexpr int count = 300;  // about 6 MB: within pending_bytes_max, all sent in one turn
  auto body_of = [](int i) {
    std::string b(static_cast<size_t>((i * 7919) % 40000), static_cast<char>('a' + i % 26));
    if (!b.empty()) b.back() = '\n';  // payloads may hold CR/LF
    return b;
  };
  int received = 0, wrong = 0;
  run_nats(
      [&](nats_loop& run) {
        nats_client& sub = run.client(nats_loop::options_for(srv));
        nats_client& pub = run.client(nats_loop::options_for(srv));
        sub.subscribe("bulk", "", [&](const nats_msg& m) {
          bool with_headers = received % 3 == 0;
          if (m.data != body_of(received) ||
              (m.header("i") == std::to_string(received)) != with_headers)
            ++wrong;
          if (++received == count) run.done();
        });
        when_connected(run, sub, [&] {
          sub.flush([&](int) {
            when_connected(run, pub, [&] {
              for (int i = 0; i < count; ++i) {
                std::string h = i % 3 == 0 ? nats::make_headers({{"I", std::to_string(i)}}) : "";
                EXPECT_TRUE(pub.publish("bulk", "", h, body_of(i))) << i;
              }
            });
          });
        });
      },
      60000);
  EXPECT_EQ(received, count);
  EXPECT_EQ(wrong, 0);
}

// While connected, a send queue beyond pending_bytes_max (the server is not keeping up) refuses
// publishes instead of growing without bound; what was accepted arrives, in order.
TEST(NatsClient, PublishesBeyondTheSendQueueBoundAreRefused) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  nats_server_process srv;
  ASSERT_TRUE(srv.start()) << srv.log();
  int accepted = 0, received = 0, out_of_order = 0;
  uint64_t dropped = 0;
  run_nats([&](nats_loop& run) {
    nats_options o = nats_loop::options_for(srv);
    o.pending_bytes_max = 1 << 20;
    nats_client& c = run.client(o);
    c.subscribe("q", "", [&](const nats_msg& m) {
      if (m.data.substr(0, 4) != std::to_string(1000 + received)) ++out_of_order;
      if (++received == accepted) run.done();
    });
    when_connected(run, c, [&] {
      // All in one turn: nothing leaves before the end of the turn.
      for (int i = 0; i < 200; ++i)
        if (c.publish("q", "", "", std::to_string(1000 + i) + std::string(20000, 'x'))) ++accepted;
      dropped = c.stats().dropped_publishes;
    });
  });
  EXPECT_GT(accepted, 10);
  EXPECT_LT(accepted, 200);
  EXPECT_EQ(dropped, static_cast<uint64_t>(200 - accepted));
  EXPECT_EQ(received, accepted);
  EXPECT_EQ(out_of_order, 0);
}

TEST(NatsClient, RequestReplyThroughTheInbox) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  nats_server_process srv;
  ASSERT_TRUE(srv.start()) << srv.log();
  std::vector<std::string> answers;
  int errors = 0;
  run_nats([&](nats_loop& run) {
    nats_client& svc = run.client(nats_loop::options_for(srv));
    nats_client& cli = run.client(nats_loop::options_for(srv));
    svc.subscribe("svc.echo", "workers", [&svc](const nats_msg& m) {
      std::string body = "echo:";
      body.append(m.data);
      svc.publish(m.reply, "", nats::make_headers({{"X-Who", "svc"}}), body);
    });
    when_connected(run, svc, [&] {
      svc.flush([&](int) {
        when_connected(run, cli, [&] {
          const char* bodies[] = {"r0", "r1", "r2"};
          for (int i = 0; i < 3; ++i) {
            cli.request("svc.echo", "", bodies[i], 5000, [&, i](nats_reply&& r) {
              if (r.error != 0) ++errors;
              answers.push_back(r.data);
              auto h = nats::header_block::parse(r.headers);
              EXPECT_TRUE(h && h->get("x-who") == "svc") << i;
              if (answers.size() == 3) run.done();
            });
          }
          EXPECT_EQ(cli.stats().requests_in_flight, 3u);
        });
      });
    });
  });
  EXPECT_EQ(errors, 0);
  ASSERT_EQ(answers.size(), 3u);
  std::sort(answers.begin(), answers.end());
  EXPECT_EQ(answers[0], "echo:r0");
  EXPECT_EQ(answers[2], "echo:r2");
}

TEST(NatsClient, NoRespondersIsEhostunreach) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  nats_server_process srv;
  ASSERT_TRUE(srv.start()) << srv.log();
  nats_reply got;
  got.error = -1;
  run_nats([&](nats_loop& run) {
    nats_client& c = run.client(nats_loop::options_for(srv));
    when_connected(run, c, [&] {
      c.request("nobody.listens", "", "x", 5000, [&](nats_reply&& r) {
        got = std::move(r);
        run.done();
      });
    });
  });
  EXPECT_EQ(got.error, EHOSTUNREACH);
  EXPECT_EQ(got.status, 503);
}

TEST(NatsClient, RequestTimesOut) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  nats_server_process srv;
  ASSERT_TRUE(srv.start()) << srv.log();
  int error = -1;
  int late_calls = 0;
  std::string reply_to;
  run_nats([&](nats_loop& run) {
    nats_client& c = run.client(nats_loop::options_for(srv));
    c.subscribe("silent", "", [&](const nats_msg& m) { reply_to = std::string(m.reply); });
    when_connected(run, c, [&] {
      c.request("silent", "", "x", 100, [&](nats_reply&& r) {
        if (error != -1) ++late_calls;
        error = r.error;
        // An answer after the timeout is dropped, not delivered a second time.
        c.publish(reply_to, "", "", "too late");
        run.later(100, [&] { run.done(); });
      });
    });
  });
  EXPECT_EQ(error, ETIMEDOUT);
  EXPECT_EQ(late_calls, 0);
}

TEST(NatsClient, NotConnectedRequestsFailInALaterTurn) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  uint16_t dead_port = test::free_loopback_port();
  int error = -1;
  bool inside = false;
  bool called_inside = false;
  bool published = false;
  run_nats([&](nats_loop& run) {
    nats_options o;
    o.urls = {std::to_string(dead_port).insert(0, "nats://127.0.0.1:")};
    o.reconnect_min_ms = 20;
    o.reconnect_max_ms = 50;
    nats_client& c = run.client(o);
    inside = true;
    c.request("x", "", "", 1000, [&](nats_reply&& r) {
      called_inside = inside;
      error = r.error;
    });
    published = c.publish("x", "", "", "buffered");
    inside = false;
    run.poll(10, [&] {
      if (c.last_error().empty()) return false;
      EXPECT_NE(c.last_error().find("refused"), std::string::npos) << c.last_error();
      EXPECT_EQ(c.state(), nats_state::connecting);
      EXPECT_GT(c.stats().pending_bytes, 0u);
      run.done();
      return true;
    });
  });
  EXPECT_EQ(error, ENOTCONN);
  EXPECT_FALSE(called_inside);
  EXPECT_TRUE(published);
}

TEST(NatsClient, UnsubscribeFromInsideTheCallbackStopsDelivery) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  nats_server_process srv;
  ASSERT_TRUE(srv.start()) << srv.log();
  int first = 0, second = 0;
  uint64_t sid = 0;
  run_nats([&](nats_loop& run) {
    nats_client& c = run.client(nats_loop::options_for(srv));
    sid = c.subscribe("u.x", "", [&](const nats_msg&) {
      ++first;
      c.unsubscribe(sid);
    });
    c.subscribe("u.x", "", [&](const nats_msg&) {
      if (++second == 3) run.later(100, [&] { run.done(); });
    });
    when_connected(run, c, [&] {
      // Three back to back: they arrive in one read, so the second and third are parsed
      // after the first callback unsubscribed.
      c.publish("u.x", "", "", "1");
      c.publish("u.x", "", "", "2");
      c.publish("u.x", "", "", "3");
    });
  });
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 3);
}

TEST(NatsClient, StopCancelsRequestsAndTellsListeners) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  nats_server_process srv;
  ASSERT_TRUE(srv.start()) << srv.log();
  int error = -1;
  std::vector<nats_state> states;
  run_nats([&](nats_loop& run) {
    nats_client& c = run.client(nats_loop::options_for(srv));
    c.add_state_listener([&](nats_state s) { states.push_back(s); });
    c.subscribe("hold", "", [](const nats_msg&) {});
    when_connected(run, c, [&] {
      c.request("hold", "", "", 0, [&](nats_reply&& r) { error = r.error; });
      c.stop([&] { run.done(); });
    });
  });
  EXPECT_EQ(error, ECANCELED);
  ASSERT_EQ(states.size(), 2u);
  EXPECT_EQ(states[0], nats_state::connected);
  EXPECT_EQ(states[1], nats_state::closed);
}

// Requests waiting for an answer are bounded: one more fails with ENOBUFS (a backlog: retry
// later), in a later turn; the others are unaffected.
TEST(NatsClient, RequestsInFlightAreBounded) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  nats_server_process srv;
  ASSERT_TRUE(srv.start()) << srv.log();
  std::vector<int> errors;
  bool inside = false, called_inside = false;
  run_nats([&](nats_loop& run) {
    nats_options o = nats_loop::options_for(srv);
    o.requests_in_flight_max = 2;
    nats_client& c = run.client(o);
    c.subscribe("hold", "", [](const nats_msg&) {});
    when_connected(run, c, [&] {
      inside = true;
      for (int i = 0; i < 3; ++i) {
        c.request("hold", "", "", 300, [&](nats_reply&& r) {
          called_inside = called_inside || inside;
          errors.push_back(r.error);
          if (errors.size() == 3) run.done();
        });
      }
      inside = false;
    });
  });
  EXPECT_FALSE(called_inside);
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0], ENOBUFS);
  EXPECT_EQ(errors[1], ETIMEDOUT);
  EXPECT_EQ(errors[2], ETIMEDOUT);
}

// flush(): 0 once the server has processed what was sent before (a subscription made just before
// is in place); ENOTCONN in a later turn while not connected; ECANCELED when stopped first.
TEST(NatsClient, FlushRoundTripsAndFailsWhenNotConnectedOrStopped) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  nats_server_process srv;
  ASSERT_TRUE(srv.start()) << srv.log();
  int connected_flush = -1, stopped_flush = -1, dead_flush = -1;
  bool dead_inside = false, inside = false;
  std::vector<std::string> got;
  run_nats([&](nats_loop& run) {
    nats_client& c = run.client(nats_loop::options_for(srv));
    nats_options dead_opts;
    dead_opts.urls = {"nats://127.0.0.1:" + std::to_string(test::free_loopback_port())};
    nats_client& dead = run.client(dead_opts);
    inside = true;
    dead.flush([&](int e) {
      dead_inside = inside;
      dead_flush = e;
    });
    inside = false;
    when_connected(run, c, [&] {
      c.subscribe("f.x", "", [&](const nats_msg& m) { got.emplace_back(m.data); });
      c.flush([&](int e) {
        connected_flush = e;
        // The subscription is in place on the server: a publication now reaches it.
        c.publish("f.x", "", "", "after flush");
        c.flush([&](int e2) {
          EXPECT_EQ(e2, 0);
          c.flush([&](int e3) { stopped_flush = e3; });
          c.stop([&] { run.done(); });
        });
      });
    });
  });
  EXPECT_EQ(connected_flush, 0);
  EXPECT_EQ(stopped_flush, ECANCELED);
  EXPECT_EQ(dead_flush, ENOTCONN);
  EXPECT_FALSE(dead_inside);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], "after flush");
}

// Requests made after stop() fail with ECANCELED (the client is closed, not merely
// disconnected), also one made from such a failure callback, and all before stop()'s done.
TEST(NatsClient, RequestsAfterStopAreCanceledBeforeStopIsDone) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  nats_server_process srv;
  ASSERT_TRUE(srv.start()) << srv.log();
  std::vector<std::string> events;
  run_nats([&](nats_loop& run) {
    nats_client& c = run.client(nats_loop::options_for(srv));
    when_connected(run, c, [&] {
      c.stop([&] {
        events.push_back("stopped");
        run.done();
      });
      c.request("x", "", "", 1000, [&](nats_reply&& r) {
        events.push_back("r1 " + std::to_string(r.error));
        c.request("x", "", "", 1000, [&](nats_reply&& r2) {
          events.push_back("r2 " + std::to_string(r2.error));
        });
      });
    });
  });
  std::string canceled = std::to_string(ECANCELED);
  EXPECT_EQ(events, (std::vector<std::string>{"r1 " + canceled, "r2 " + canceled, "stopped"}));
}

TEST(NatsClient, PublishRefusesBadSubjectsAndOversizedMessages) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  nats_server_process srv;
  ASSERT_TRUE(srv.start()) << srv.log();
  run_nats([&](nats_loop& run) {
    nats_client& c = run.client(nats_loop::options_for(srv));
    when_connected(run, c, [&] {
      EXPECT_EQ(c.max_payload(), 1u << 20);  // nats-server's default, from INFO
      EXPECT_FALSE(c.publish("a..b", "", "", "x"));
      EXPECT_FALSE(c.publish("a.*", "", "", "x"));
      EXPECT_FALSE(c.publish("a b", "", "", "x"));
      EXPECT_FALSE(c.publish("ok", "", "", std::string(c.max_payload() + 1, 'x')));
      EXPECT_EQ(c.stats().dropped_publishes, 4u);
      c.request("ok", "", std::string(c.max_payload() + 1, 'x'), 1000, [&](nats_reply&& r) {
        EXPECT_EQ(r.error, EMSGSIZE);
        run.done();
      });
    });
  });
}

}  // namespace
}  // namespace rc::server
