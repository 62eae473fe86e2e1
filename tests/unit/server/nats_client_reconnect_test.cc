// nats_client against real nats-server processes that die and come back: subscriptions restored,
// publishes buffered while disconnected (bounded) and flushed in order, requests failed, the URL
// list; and authentication (token, user/password, credentials in the URL) accepted and refused.
#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "nats_server_fixture.h"
#include "server/nats_client.h"

namespace rc::server {
namespace {

using test::nats_loop;
using test::nats_server_options;
using test::nats_server_process;
using test::run_nats;

// Calls fn once `pred` holds (polling every 5 ms; tests only).
void once(nats_loop& run, std::function<bool()> pred, std::function<void()> fn) {
  run.poll(5, [pred = std::move(pred), fn = std::move(fn)]() mutable {
    if (!pred()) return false;
    fn();
    return true;
  });
}

TEST(NatsReconnect, SubscriptionsRestoredAndBufferedPublishesFlushedInOrder) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  nats_server_process srv;
  ASSERT_TRUE(srv.start()) << srv.log();
  std::vector<std::string> got;
  std::vector<nats_state> states;
  int request_error = -1, request_while_down = -1;
  nats_stats stats;
  run_nats([&](nats_loop& run) {
    nats_client& c = run.client(nats_loop::options_for(srv));
    c.add_state_listener([&](nats_state s) { states.push_back(s); });
    c.subscribe("r.x", "", [&](const nats_msg& m) {
      got.emplace_back(m.data);
      if (got.size() == 5) {
        stats = c.stats();
        run.done();
      }
    });
    c.subscribe("hold", "", [](const nats_msg&) {});  // never answers
    once(
        run, [&] { return c.connected(); },
        [&] {
          c.publish("r.x", "", "", "before");
          c.request("hold", "", "", 0, [&](nats_reply&& r) { request_error = r.error; });
          c.flush([&](int) {
            srv.kill();
            once(
                run, [&] { return c.state() == nats_state::disconnected; },
                [&] {
                  EXPECT_TRUE(c.publish("r.x", "", "", "b1"));
                  EXPECT_TRUE(c.publish("r.x", "", "", "b2"));
                  EXPECT_TRUE(c.publish("r.x", "", "", "b3"));
                  EXPECT_GT(c.stats().pending_bytes, 0u);
                  c.request("r.x", "", "", 1000,
                            [&](nats_reply&& r) { request_while_down = r.error; });
                  ASSERT_TRUE(srv.start()) << srv.log();
                  once(
                      run, [&] { return c.connected(); },
                      [&] {
                        EXPECT_EQ(c.stats().pending_bytes, 0u);
                        c.publish("r.x", "", "", "after");
                      });
                });
          });
        });
  });
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[0], "before");
  EXPECT_EQ(got[1], "b1");
  EXPECT_EQ(got[2], "b2");
  EXPECT_EQ(got[3], "b3");
  EXPECT_EQ(got[4], "after");
  EXPECT_EQ(request_error, ENOTCONN);
  EXPECT_EQ(request_while_down, ENOTCONN);
  ASSERT_GE(states.size(), 3u);
  EXPECT_EQ(states[0], nats_state::connected);
  EXPECT_EQ(states[1], nats_state::disconnected);
  EXPECT_EQ(states[2], nats_state::connected);
  EXPECT_EQ(stats.connects, 2u);
  EXPECT_EQ(stats.reconnects, 1u);
}

// While the requests of a lost connection fail, the client already says it is disconnected: a
// callback sees connected() false, a publish it makes is buffered and arrives after the
// reconnect (after the re-sent subscriptions), a request it makes fails with ENOTCONN in a later
// turn; listeners hear `disconnected` after those callbacks.
TEST(NatsReconnect, LostConnectionCallbacksSeeItDisconnected) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  nats_server_process srv;
  ASSERT_TRUE(srv.start()) << srv.log();
  std::vector<std::string> events;
  std::vector<std::string> got;
  int inner_error = -1;
  run_nats([&](nats_loop& run) {
    nats_client& c = run.client(nats_loop::options_for(srv));
    c.add_state_listener([&](nats_state s) { events.push_back(std::string(name_of(s))); });
    c.subscribe("hold", "", [](const nats_msg&) {});  // never answers
    c.subscribe("l.x", "", [&](const nats_msg& m) {
      got.emplace_back(m.data);
      if (got.size() == 2) run.done();
    });
    once(
        run, [&] { return c.connected(); },
        [&] {
          c.request("hold", "", "", 0, [&](nats_reply&& r) {
            events.push_back("failed " + std::to_string(r.error) +
                             (c.connected() ? " connected" : " not connected"));
            EXPECT_TRUE(c.publish("l.x", "", "", "from the failure callback"));
            c.request("hold", "", "", 0, [&](nats_reply&& r2) { inner_error = r2.error; });
          });
          c.flush([&](int) {
            srv.kill();
            once(
                run, [&] { return c.state() == nats_state::disconnected; },
                [&] {
                  ASSERT_TRUE(srv.start()) << srv.log();
                  once(
                      run, [&] { return c.connected(); },
                      [&] { c.publish("l.x", "", "", "after"); });
                });
          });
        });
  });
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events[0], "connected");
  EXPECT_EQ(events[1], "failed " + std::to_string(ENOTCONN) + " not connected");
  EXPECT_EQ(events[2], "disconnected");
  EXPECT_EQ(events[3], "connected");
  EXPECT_EQ(inner_error, ENOTCONN);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], "from the failure callback");
  EXPECT_EQ(got[1], "after");
}

TEST(NatsReconnect, BufferWhileDisconnectedIsBounded) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  nats_server_process srv;  // not started yet: the client starts disconnected
  std::vector<std::string> got;
  size_t accepted = 0;
  uint64_t dropped = 0;
  run_nats([&](nats_loop& run) {
    nats_options o = nats_loop::options_for(srv);
    o.pending_bytes_max = 1000;
    nats_client& c = run.client(o);
    c.subscribe("b.x", "", [&](const nats_msg& m) {
      got.emplace_back(m.data);
      if (got.size() == accepted) run.later(100, [&] { run.done(); });
    });
    std::string body(100, 'x');
    for (int i = 0; i < 20; ++i) {
      body[0] = static_cast<char>('a' + i);
      if (c.publish("b.x", "", "", body)) ++accepted;
    }
    dropped = c.stats().dropped_publishes;
    EXPECT_LE(c.stats().pending_bytes, 1000u);
    ASSERT_TRUE(srv.start()) << srv.log();
  });
  EXPECT_GT(accepted, 3u);
  EXPECT_LT(accepted, 10u);
  EXPECT_EQ(dropped, 20 - accepted);
  ASSERT_EQ(got.size(), accepted);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i][0], static_cast<char>('a' + i));
}

TEST(NatsReconnect, TriesTheUrlListInOrderAndFailsOver) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  nats_server_process a, b;
  ASSERT_TRUE(a.start()) << a.log();
  ASSERT_TRUE(b.start()) << b.log();
  std::string dead = "nats://127.0.0.1:" + std::to_string(test::free_loopback_port());
  std::vector<std::string> urls;
  run_nats([&](nats_loop& run) {
    nats_options o = nats_loop::options_for(a);
    o.urls = {dead, "localhost:" + std::to_string(a.port()), b.url()};
    nats_client& c = run.client(o);
    once(
        run, [&] { return c.connected(); },
        [&] {
          urls.push_back(c.connected_url());
          a.kill();
          once(
              run, [&] { return c.connected() && c.connected_url() != urls[0]; },
              [&] {
                urls.push_back(c.connected_url());
                run.done();
              });
        });
  });
  ASSERT_EQ(urls.size(), 2u);
  EXPECT_EQ(urls[0], "localhost:" + std::to_string(a.port()));  // by name, via the resolver
  EXPECT_EQ(urls[1], b.url());
}

// Connects with `o` to `srv`; returns the client's last_error once connected (empty) or once a
// try has failed.
std::string connect_result(nats_server_process& srv, nats_options o, bool* connected) {
  std::string error;
  *connected = false;
  run_nats([&](nats_loop& run) {
    nats_client& c = run.client(std::move(o));
    run.poll(5, [&] {
      if (c.connected()) {
        *connected = true;
      } else if (c.last_error().empty()) {
        return false;
      }
      error = c.last_error();
      run.done();
      return true;
    });
  });
  (void)srv;
  return error;
}

TEST(NatsAuth, TokenAcceptedAndRefused) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  nats_server_options so;
  so.token = "s3cret";
  nats_server_process srv(so);
  ASSERT_TRUE(srv.start()) << srv.log();
  bool connected = false;
  nats_options o = nats_loop::options_for(srv);
  EXPECT_EQ(connect_result(srv, o, &connected), "");
  EXPECT_TRUE(connected);
  o.token = "wrong";
  std::string error = connect_result(srv, o, &connected);
  EXPECT_FALSE(connected);
  EXPECT_NE(error.find("Authorization Violation"), std::string::npos) << error;
  o.token = "";
  o.urls = {"nats://s3cret@127.0.0.1:" + std::to_string(srv.port())};
  EXPECT_EQ(connect_result(srv, o, &connected), "");
  EXPECT_TRUE(connected) << "the token from the URL";
}

TEST(NatsAuth, UserPasswordAcceptedAndRefused) {
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable";
  nats_server_options so;
  so.user = "alice";
  so.password = "pw\"1";
  nats_server_process srv(so);
  ASSERT_TRUE(srv.start()) << srv.log();
  bool connected = false;
  nats_options o = nats_loop::options_for(srv);
  EXPECT_EQ(connect_result(srv, o, &connected), "");
  EXPECT_TRUE(connected);
  o.password = "pw";
  std::string error = connect_result(srv, o, &connected);
  EXPECT_FALSE(connected);
  EXPECT_NE(error.find("Authorization Violation"), std::string::npos) << error;
  o.user = o.password = "";
  error = connect_result(srv, o, &connected);
  EXPECT_FALSE(connected) << "no credentials";
  o.urls = {"nats://alice:pw\"1@127.0.0.1:" + std::to_string(srv.port())};
  EXPECT_EQ(connect_result(srv, o, &connected), "");
  EXPECT_TRUE(connected) << "user and password from the URL";
}

}  // namespace
}  // namespace rc::server
