// Ordered push consumers against a real `nats-server -js`: order, the floor of a deliver-new
// consumer, caught-up, flow control, recreation after the consumer is deleted on the server and
// after a server restart (file storage) without gap or duplicate, and stopping from a handler.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "jetstream_fixture.h"
#include "proto/json_reader.h"
#include "proto/nats.h"
#include "server/jetstream.h"
#include "server/nats_client.h"

namespace rc::server {
namespace {

using test::js_test;
using test::nats_server_process;
using test::run_js;
using test::test_stream;

#define NEEDS_URING() \
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable"

struct received {
  std::vector<uint64_t> seqs;
  std::vector<std::string> data;
  void add(const js_delivery& d) {
    seqs.push_back(d.stream_seq);
    data.emplace_back(d.data);
  }
  // Every stream sequence from..to exactly once, in order.
  ::testing::AssertionResult exactly(uint64_t from, uint64_t to) const {
    if (seqs.size() != to - from + 1) {
      return ::testing::AssertionFailure()
             << "got " << seqs.size() << " messages, want " << (to - from + 1);
    }
    for (size_t i = 0; i < seqs.size(); ++i) {
      if (seqs[i] != from + i) {
        return ::testing::AssertionFailure() << "at " << i << ": seq " << seqs[i];
      }
    }
    return ::testing::AssertionSuccess();
  }
};

// Publishes data "<prefix><i>" for i in [from, to) to `subject`, one after another; then `then`.
void publish_range(jetstream& js, std::string subject, int from, int to, std::string prefix,
                   std::function<void()> then) {
  if (from == to) {
    then();
    return;
  }
  std::string data = prefix + std::to_string(from);
  js.publish(subject, "", data,
             [&js, subject, from, to, prefix, then = std::move(then)](js_pub_ack&& a) mutable {
               EXPECT_TRUE(a.err.ok()) << a.err.description;
               publish_range(js, subject, from + 1, to, prefix, std::move(then));
             });
}

TEST(JetstreamOrdered, ReplaysThenFollowsInOrderAndReportsCaughtUp) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  received got;
  uint64_t floor = 99;
  size_t caught_up_at = 0;
  int caught_up_calls = 0;
  run_js(srv, [&](js_test& t) {
    t.js.ensure_stream(test_stream("S", "s"), [&](js_stream_info&&) {
      // Other topics' messages interleave: the filter keeps only s.a's.
      publish_range(t.js, "s.b", 0, 5, "b", [&] {
        publish_range(t.js, "s.a", 0, 30, "a", [&] {
          jetstream::ordered_handlers h;
          h.on_ready = [&](uint64_t f) { floor = f; };
          h.on_caught_up = [&] {
            ++caught_up_calls;
            caught_up_at = got.seqs.size();
            publish_range(t.js, "s.a", 30, 60, "a", [] {});
          };
          h.on_msg = [&](const js_delivery& d) {
            got.add(d);
            if (got.seqs.size() == 60) t.run.later(200, [&] { t.done(); });
          };
          t.js.consume_ordered("S", "s.a", 1, false, std::move(h));
        });
      });
    });
  });
  EXPECT_EQ(floor, 0u);
  EXPECT_TRUE(got.exactly(6, 65));
  EXPECT_EQ(got.data.front(), "a0");
  EXPECT_EQ(got.data.back(), "a59");
  EXPECT_EQ(caught_up_calls, 1);
  EXPECT_EQ(caught_up_at, 30u);
}

TEST(JetstreamOrdered, DeliverNewStartsAfterTheFloor) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  received got;
  uint64_t floor = 0;
  bool caught_up = false;
  run_js(srv, [&](js_test& t) {
    t.js.ensure_stream(test_stream("S", "s"), [&](js_stream_info&&) {
      publish_range(t.js, "s.a", 0, 5, "old", [&] {
        jetstream::ordered_handlers h;
        h.on_ready = [&](uint64_t f) {
          floor = f;
          publish_range(t.js, "s.a", 0, 3, "new", [] {});
        };
        h.on_caught_up = [&] { caught_up = true; };
        h.on_msg = [&](const js_delivery& d) {
          got.add(d);
          if (got.seqs.size() == 3) t.done();
        };
        t.js.consume_ordered("S", "s.>", 0, false, std::move(h));
      });
    });
  });
  EXPECT_EQ(floor, 5u);
  EXPECT_TRUE(caught_up);
  EXPECT_TRUE(got.exactly(6, 8));
  EXPECT_EQ(got.data.front(), "new0");
}

TEST(JetstreamOrdered, AnswersFlowControlOnALargeBacklog) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  constexpr int count = 400;
  received got;
  int fc_replies = 0;
  run_js(
      srv,
      [&](js_test& t) {
        // Our answers to flow control requests go to $JS.FC.<...>: watch them from the side.
        t.nc.subscribe("$JS.FC.>", "", [&](const nats_msg&) { ++fc_replies; });
        t.js.ensure_stream(test_stream("S", "s"), [&](js_stream_info&&) {
          publish_range(t.js, "s.a", 0, count, std::string(64 * 1024, 'x'), [&] {
            jetstream::ordered_handlers h;
            h.on_msg = [&](const js_delivery& d) {
              got.add(d);
              if (got.seqs.size() == count) t.run.later(100, [&] { t.done(); });
            };
            t.js.consume_ordered("S", "", 1, false, std::move(h));
          });
        });
      },
      60000);
  EXPECT_TRUE(got.exactly(1, count));
  EXPECT_GT(fc_replies, 0);
}

TEST(JetstreamOrdered, RecreatedWithoutGapWhenDeletedOnTheServer) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  received got;
  std::vector<uint64_t> floors;
  std::string first_name, second_name;
  uint64_t recreated = 0;
  run_js(
      srv,
      [&](js_test& t) {
        t.js.ensure_stream(test_stream("S", "s"), [&](js_stream_info&&) {
          jetstream::ordered_handlers h;
          auto id = std::make_shared<uint64_t>(0);
          h.on_ready = [&, id](uint64_t f) {
            floors.push_back(f);
            if (floors.size() == 1) {
              first_name = std::string(t.js.consumer_name(*id));
              publish_range(t.js, "s.a", 0, 10, "m", [&, id] {
                // Delete it behind the client's back, then keep publishing.
                t.nc.request(
                    "$JS.API.CONSUMER.DELETE.S." + first_name, "", "", 5000, [&](nats_reply&& r) {
                      EXPECT_NE(r.data.find("\"success\":true"), std::string::npos) << r.data;
                      publish_range(t.js, "s.a", 10, 20, "m", [] {});
                    });
              });
            } else {
              second_name = std::string(t.js.consumer_name(*id));
            }
          };
          h.on_msg = [&, id](const js_delivery& d) {
            got.add(d);
            if (got.seqs.size() == 20) {
              recreated = t.js.counters().consumers_recreated;
              t.js.stop_consumer(*id);
              t.done();
            }
          };
          *id = t.js.consume_ordered("S", "s.a", 0, false, std::move(h));
        });
      },
      60000);
  EXPECT_TRUE(got.exactly(1, 20));
  ASSERT_GE(floors.size(), 2u);
  EXPECT_EQ(floors[0], 0u);
  EXPECT_FALSE(first_name.empty());
  EXPECT_NE(first_name, second_name);
  EXPECT_GE(recreated, 1u);
}

TEST(JetstreamOrdered, SurvivesAServerRestartWithFileStorage) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  received got;
  int ready_calls = 0;
  bool restarted = false, published_after = false;
  run_js(
      srv,
      [&](js_test& t) {
        t.js.ensure_stream(test_stream("S", "s"), [&](js_stream_info&&) {
          jetstream::ordered_handlers h;
          h.on_ready = [&](uint64_t) {
            ++ready_calls;
            if (ready_calls == 1) publish_range(t.js, "s.a", 0, 10, "before", [] {});
            if (ready_calls >= 2 && restarted && !published_after) {
              published_after = true;
              publish_range(t.js, "s.a", 0, 10, "after", [] {});
            }
          };
          h.on_msg = [&](const js_delivery& d) {
            got.add(d);
            if (got.seqs.size() == 10 && !restarted) {
              // Restart the server (a clean stop keeps the file store), off the loop's back.
              t.run.later(0, [&] {
                srv.stop();
                ASSERT_TRUE(srv.start()) << srv.log();
                restarted = true;
              });
            }
            if (got.seqs.size() == 20) t.run.later(200, [&] { t.done(); });
          };
          t.js.consume_ordered("S", "s.a", 0, false, std::move(h));
        });
      },
      60000);
  EXPECT_TRUE(got.exactly(1, 20));
  ASSERT_EQ(got.data.size(), 20u);
  EXPECT_EQ(got.data[10], "after0");
  EXPECT_GE(ready_calls, 2);
}

TEST(JetstreamOrdered, StoppingFromInsideTheHandlerEndsDelivery) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  int calls = 0;
  std::string remaining = "?";
  run_js(srv, [&](js_test& t) {
    t.js.ensure_stream(test_stream("S", "s"), [&](js_stream_info&&) {
      publish_range(t.js, "s.a", 0, 20, "m", [&] {
        jetstream::ordered_handlers h;
        auto id = std::make_shared<uint64_t>(0);
        h.on_msg = [&, id](const js_delivery&) {
          ++calls;
          if (calls == 3) {
            t.js.stop_consumer(*id);
            t.js.stop_consumer(*id);  // twice: ignored
            // The server forgets the consumer (best effort, asynchronously).
            t.run.later(500, [&] {
              t.nc.request("$JS.API.CONSUMER.NAMES.S", "", "", 5000, [&](nats_reply&& r) {
                remaining = r.data;
                t.done();
              });
            });
          }
        };
        *id = t.js.consume_ordered("S", "s.a", 1, false, std::move(h));
      });
    });
  });
  EXPECT_EQ(calls, 3);
  EXPECT_NE(remaining.find("\"consumers\":[]"), std::string::npos) << remaining;
}

TEST(JetstreamOrdered, KeepsRetryingUntilTheStreamExists) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  std::vector<js_error> errors;
  received got;
  uint64_t recreated = 99;
  run_js(
      srv,
      [&](js_test& t) {
        jetstream::ordered_handlers h;
        h.on_error = [&](const js_error& e) {
          errors.push_back(e);
          if (errors.size() == 2) {
            t.js.ensure_stream(test_stream("LATE", "late"), [](js_stream_info&& i) {
              EXPECT_TRUE(i.err.ok()) << i.err.description;
            });
          }
        };
        h.on_ready = [&](uint64_t) { publish_range(t.js, "late.a", 0, 3, "m", [] {}); };
        h.on_msg = [&](const js_delivery& d) {
          got.add(d);
          if (got.seqs.size() == 3) {
            recreated = t.js.counters().consumers_recreated;
            t.done();
          }
        };
        t.js.consume_ordered("LATE", "late.a", 0, false, std::move(h));
      },
      30000);
  ASSERT_GE(errors.size(), 2u);
  EXPECT_EQ(errors[0].err_code, js_err_stream_not_found);
  EXPECT_EQ(errors[0].status, 404);
  EXPECT_TRUE(got.exactly(1, 3));
  EXPECT_EQ(recreated, 0u);  // retries of a failed creation are not recreations
}

TEST(JetstreamOrdered, HeartbeatSequenceMismatchRecreatesFromTheLastStreamSequence) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  received got;
  uint64_t recreated = 0;
  run_js(srv, [&](js_test& t) {
    t.js.ensure_stream(test_stream("S", "s"), [&](js_stream_info&&) {
      jetstream::ordered_handlers h;
      auto id = std::make_shared<uint64_t>(0);
      h.on_ready = [&](uint64_t) {
        if (got.seqs.empty()) publish_range(t.js, "s.a", 0, 5, "m", [] {});
      };
      h.on_msg = [&, id](const js_delivery& d) {
        got.add(d);
        if (got.seqs.size() == 5) {
          // Inject an idle heartbeat saying the consumer sent more than we saw (as if messages
          // were lost on the way; a server refuses $JS.ACK reply subjects from clients, so a
          // forged delivery is not possible): it must start over after stream seq 5.
          std::string name(t.js.consumer_name(*id));
          t.nc.request("$JS.API.CONSUMER.INFO.S." + name, "", "", 5000, [&, name](nats_reply&& r) {
            json::parser p;
            auto doc = p.parse(r.data);
            ASSERT_TRUE(doc.ok());
            std::string deliver(doc.root.find("config").find("deliver_subject").get_string());
            t.nc.publish(deliver, "",
                         "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 9\r\n"
                         "Nats-Last-Stream: 9\r\n\r\n",
                         "");
            publish_range(t.js, "s.a", 5, 10, "m", [] {});
          });
        }
        if (got.seqs.size() == 10) {
          recreated = t.js.counters().consumers_recreated;
          t.js.stop_consumer(*id);
          t.done();
        }
      };
      *id = t.js.consume_ordered("S", "s.a", 0, false, std::move(h));
    });
  });
  EXPECT_TRUE(got.exactly(1, 10));
  EXPECT_GE(recreated, 1u);
}

TEST(JetstreamOrdered, StartedWhileDisconnectedIsCreatedOnReconnect) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  received got;
  uint64_t recreated = 99;
  run_js(
      srv,
      [&](js_test& t) {
        t.js.ensure_stream(test_stream("S", "s"), [&](js_stream_info&&) {
          publish_range(t.js, "s.a", 0, 3, "m", [&] {
            srv.stop();
            t.run.poll(5, [&] {
              if (t.nc.connected()) return false;
              jetstream::ordered_handlers h;
              h.on_msg = [&](const js_delivery& d) {
                got.add(d);
                if (got.seqs.size() == 3) {
                  recreated = t.js.counters().consumers_recreated;
                  t.done();
                }
              };
              t.js.consume_ordered("S", "s.a", 1, false, std::move(h));
              EXPECT_TRUE(srv.start()) << srv.log();
              return true;
            });
          });
        });
      },
      30000);
  EXPECT_TRUE(got.exactly(1, 3));
  EXPECT_EQ(recreated, 0u);
}

// A stored message with an empty body and a header block carrying a status line looks like a
// heartbeat or a flow control request; its $JS.ACK reply says it is a message. It is delivered
// like any other, and the ones after it too (no endless recreation).
TEST(JetstreamOrdered, StoredMessageWithAStatusLineIsDeliveredNotTakenForControl) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  received got;
  std::vector<std::string> headers;
  uint64_t recreated = 99;
  run_js(
      srv,
      [&](js_test& t) {
        t.js.ensure_stream(test_stream("S", "s"), [&](js_stream_info&&) {
          t.js.publish("s.a", "", "m0", [&](js_pub_ack&&) {
            t.js.publish("s.a", "NATS/1.0 100 x\r\n\r\n", "", [&](js_pub_ack&& a) {
              EXPECT_TRUE(a.err.ok()) << a.err.description;
              t.js.publish("s.a", "", "m2", [&](js_pub_ack&&) {
                jetstream::ordered_handlers h;
                h.on_msg = [&](const js_delivery& d) {
                  got.add(d);
                  headers.emplace_back(d.headers);
                  if (got.seqs.size() == 3) {
                    recreated = t.js.counters().consumers_recreated;
                    t.done();
                  }
                };
                t.js.consume_ordered("S", "s.a", 1, false, std::move(h));
              });
            });
          });
        });
      },
      15000);
  EXPECT_TRUE(got.exactly(1, 3));
  ASSERT_EQ(headers.size(), 3u);
  EXPECT_EQ(headers[1], "NATS/1.0 100 x\r\n\r\n");
  EXPECT_EQ(recreated, 0u);
}

// A component whose state listener runs before its jetstream's (it registered first) starts a
// consumer when the client reconnects: that incarnation is of the new connection and is kept,
// not torn down and recreated by the jetstream's own listener a moment later.
TEST(JetstreamOrdered, ConsumerStartedByAnEarlierListenerOnReconnectIsKept) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  std::unique_ptr<jetstream> js2;
  uint64_t listener = 0;
  int ready = 0;
  received got;
  uint64_t recreated = 99, requests_at_ready = 0, requests_at_msg = 0;
  run_js(
      srv,
      [&](js_test& t) {
        t.js.ensure_stream(test_stream("S", "s"), [&](js_stream_info&&) {
          listener = t.nc.add_state_listener([&](nats_state s) {
            if (s != nats_state::connected || !js2) return;
            jetstream::ordered_handlers h;
            h.on_ready = [&](uint64_t) {
              ++ready;
              requests_at_ready = js2->counters().api_requests;
              t.js.publish("s.a", "", "m", [](js_pub_ack&&) {});
            };
            h.on_msg = [&](const js_delivery& d) {
              got.add(d);
              recreated = js2->counters().consumers_recreated;
              requests_at_msg = js2->counters().api_requests;
              t.nc.remove_state_listener(listener);
              t.run.later(0, [&] {
                js2.reset();
                t.done();
              });
            };
            js2->consume_ordered("S", "s.a", 0, false, std::move(h));
          });
          js2 = std::make_unique<jetstream>(t.nc);
          srv.stop();
          t.run.poll(5, [&] {
            if (t.nc.connected()) return false;
            EXPECT_TRUE(srv.start()) << srv.log();
            return true;
          });
        });
      },
      30000);
  EXPECT_EQ(ready, 1);
  EXPECT_TRUE(got.exactly(1, 1));
  EXPECT_EQ(recreated, 0u);
  EXPECT_EQ(requests_at_ready, 1u) << "one CONSUMER.CREATE";
  EXPECT_EQ(requests_at_msg, 1u);
}

}  // namespace
}  // namespace rc::server
