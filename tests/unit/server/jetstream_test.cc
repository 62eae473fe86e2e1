// jetstream against a real `nats-server -js`: streams (create/update idempotence), publish with
// ack and deduplication, expected-last-subject-sequence, message get (by sequence, last by
// subject, missing), delete, and API errors mapped into js_error.
#include <gtest/gtest.h>

#include <cerrno>
#include <string>

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

TEST(Jetstream, EnsureStreamCreatesThenIsIdempotentThenUpdates) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  js_stream_info first, again, updated;
  int64_t max_msgs_after = 0;
  run_js(srv, [&](js_test& t) {
    js_stream_config c = test_stream("S", "s");
    t.js.ensure_stream(c, [&, c](js_stream_info&& i) mutable {
      first = std::move(i);
      t.js.ensure_stream(c, [&, c](js_stream_info&& i2) mutable {
        again = std::move(i2);
        c.max_msgs = 1000;
        c.max_age_ms = 3'600'000;
        t.js.ensure_stream(c, [&](js_stream_info&& i3) {
          updated = std::move(i3);
          // Read the stored configuration back, raw.
          t.nc.request("$JS.API.STREAM.INFO.S", "", "", 5000, [&](nats_reply&& r) {
            json::parser p;
            auto doc = p.parse(r.data);
            if (doc.ok()) max_msgs_after = doc.root.find("config").find("max_msgs").get_int64();
            t.done();
          });
        });
      });
    });
  });
  ASSERT_TRUE(first.err.ok()) << first.err.description;
  EXPECT_GT(first.created_ns, 1'600'000'000'000'000'000ull);
  EXPECT_EQ(first.last_seq, 0u);
  ASSERT_TRUE(again.err.ok()) << again.err.description;
  EXPECT_EQ(again.created_ns, first.created_ns);  // the same stream, not a new one
  ASSERT_TRUE(updated.err.ok()) << updated.err.description;
  EXPECT_EQ(updated.created_ns, first.created_ns);
  EXPECT_EQ(max_msgs_after, 1000);
}

// Two creators racing with different descriptions (the cluster's epochs): the first one's stays,
// and the second is told it, while the rest of its configuration is applied.
TEST(Jetstream, EnsureStreamKeepsTheFirstCreatorsDescription) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  js_stream_info first, second, third;
  run_js(srv, [&](js_test& t) {
    js_stream_config a = test_stream("S", "s");
    a.description = "ringcast epoch 0000aaaa";
    js_stream_config b = a;
    b.description = "ringcast epoch 0000bbbb";
    b.max_msgs = 500;
    t.js.ensure_stream(a, [&, b](js_stream_info&& i) mutable {
      first = std::move(i);
      t.js.ensure_stream(b, [&, b](js_stream_info&& i2) mutable {
        second = std::move(i2);
        t.js.stream_info("S", [&](js_stream_info&& i3) {
          third = std::move(i3);
          t.done();
        });
      });
    });
  });
  ASSERT_TRUE(first.err.ok()) << first.err.description;
  EXPECT_EQ(first.description, "ringcast epoch 0000aaaa");
  ASSERT_TRUE(second.err.ok()) << second.err.description;
  EXPECT_EQ(second.description, "ringcast epoch 0000aaaa");
  ASSERT_TRUE(third.err.ok()) << third.err.description;
  EXPECT_EQ(third.description, "ringcast epoch 0000aaaa");
}

TEST(Jetstream, PublishAckAndDeduplication) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  js_pub_ack a, b, c, none;
  js_stream_info info;
  jetstream::stats counts;
  uint64_t latency_count = 0;  // publish_latency is owned by the jetstream: read it while it lives
  bool has_latency = false;
  run_js(srv, [&](js_test& t) {
    t.js.ensure_stream(test_stream("S", "s"), [&](js_stream_info&& i) {
      ASSERT_TRUE(i.err.ok()) << i.err.description;
      std::string id1 = nats::make_headers({{"Nats-Msg-Id", "m-1"}});
      t.js.publish("s.x", id1, "one", [&, id1](js_pub_ack&& r1) {
        a = std::move(r1);
        t.js.publish("s.x", id1, "one again", [&](js_pub_ack&& r2) {
          b = std::move(r2);
          t.js.publish("s.y", nats::make_headers({{"Nats-Msg-Id", "m-2"}}), "two",
                       [&](js_pub_ack&& r3) {
                         c = std::move(r3);
                         EXPECT_EQ(t.js.publishes_in_flight(), 0u);
                         t.js.publish("nostream.x", "", "lost", [&](js_pub_ack&& r4) {
                           none = std::move(r4);
                           t.js.stream_info("S", [&](js_stream_info&& i5) {
                             info = std::move(i5);
                             counts = t.js.counters();
                             has_latency = counts.publish_latency != nullptr;
                             if (has_latency) latency_count = counts.publish_latency->count;
                             counts.publish_latency = nullptr;
                             t.done();
                           });
                         });
                       });
        });
      });
      EXPECT_EQ(t.js.publishes_in_flight(), 1u);
    });
  });
  ASSERT_TRUE(a.err.ok()) << a.err.description;
  EXPECT_EQ(a.stream, "S");
  EXPECT_EQ(a.seq, 1u);
  EXPECT_FALSE(a.duplicate);
  ASSERT_TRUE(b.err.ok()) << b.err.description;
  EXPECT_TRUE(b.duplicate);
  EXPECT_EQ(b.seq, 1u);
  ASSERT_TRUE(c.err.ok());
  EXPECT_EQ(c.seq, 2u);
  EXPECT_FALSE(none.err.ok());
  EXPECT_EQ(none.err.error, EHOSTUNREACH);  // no stream listens on that subject
  EXPECT_EQ(info.messages, 2u);
  EXPECT_EQ(info.last_seq, 2u);
  EXPECT_EQ(counts.publishes, 4u);
  EXPECT_EQ(counts.publish_errors, 1u);
  ASSERT_TRUE(has_latency);
  EXPECT_EQ(latency_count, 3u);  // acknowledged ones
}

TEST(Jetstream, ExpectedLastSubjectSequenceIsEnforced) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  js_pub_ack fresh, again, right;
  uint64_t publish_errors = 99;
  run_js(srv, [&](js_test& t) {
    t.js.ensure_stream(test_stream("S", "s"), [&](js_stream_info&&) {
      std::string expect0 = nats::make_headers({{"Nats-Expected-Last-Subject-Sequence", "0"}});
      t.js.publish("s.k", expect0, "v1", [&, expect0](js_pub_ack&& r1) {
        fresh = std::move(r1);
        t.js.publish("s.k", expect0, "v2", [&](js_pub_ack&& r2) {
          again = std::move(r2);
          std::string expect1 = nats::make_headers(
              {{"Nats-Expected-Last-Subject-Sequence", std::to_string(fresh.seq)}});
          t.js.publish("s.k", expect1, "v2", [&](js_pub_ack&& r3) {
            right = std::move(r3);
            publish_errors = t.js.counters().publish_errors;
            t.done();
          });
        });
      });
    });
  });
  ASSERT_TRUE(fresh.err.ok()) << fresh.err.description;
  EXPECT_FALSE(again.err.ok());
  EXPECT_EQ(again.err.error, 0);
  EXPECT_EQ(again.err.err_code, js_err_wrong_last_sequence);
  EXPECT_EQ(again.err.status, 400);
  EXPECT_FALSE(again.err.description.empty());
  ASSERT_TRUE(right.err.ok()) << right.err.description;
  EXPECT_EQ(right.seq, 2u);
  EXPECT_EQ(publish_errors, 0u);  // a refused conditional write is not a failure
}

TEST(Jetstream, GetByLastSubjectBySequenceAndMissing) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  js_stored_msg last_a, by_seq, missing_seq, missing_subject, no_stream;
  run_js(srv, [&](js_test& t) {
    t.js.ensure_stream(test_stream("S", "s"), [&](js_stream_info&&) {
      t.js.publish("s.a", "", "a1", [](js_pub_ack&&) {});
      t.js.publish("s.a", nats::make_headers({{"Rc-Event", "done"}}), "a2", [](js_pub_ack&&) {});
      t.js.publish("s.b", "", "b1", [&](js_pub_ack&&) {
        t.js.get_last("S", "s.a", [&](js_stored_msg&& m1) {
          last_a = std::move(m1);
          t.js.get("S", 3, [&](js_stored_msg&& m2) {
            by_seq = std::move(m2);
            t.js.get("S", 99, [&](js_stored_msg&& m3) {
              missing_seq = std::move(m3);
              t.js.get_last("S", "s.zzz", [&](js_stored_msg&& m4) {
                missing_subject = std::move(m4);
                t.js.get("NOPE", 1, [&](js_stored_msg&& m5) {
                  no_stream = std::move(m5);
                  t.done();
                });
              });
            });
          });
        });
      });
    });
  });
  ASSERT_TRUE(last_a.err.ok()) << last_a.err.description;
  ASSERT_TRUE(last_a.found);
  EXPECT_EQ(last_a.seq, 2u);
  EXPECT_EQ(last_a.subject, "s.a");
  EXPECT_EQ(last_a.data, "a2");
  auto h = nats::header_block::parse(last_a.headers);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->get("Rc-Event"), "done");
  EXPECT_GT(last_a.time_ns, 1'600'000'000'000'000'000ull);
  ASSERT_TRUE(by_seq.found);
  EXPECT_EQ(by_seq.subject, "s.b");
  EXPECT_EQ(by_seq.data, "b1");
  EXPECT_TRUE(by_seq.headers.empty());
  EXPECT_TRUE(missing_seq.err.ok()) << missing_seq.err.description;
  EXPECT_FALSE(missing_seq.found);
  EXPECT_TRUE(missing_subject.err.ok());
  EXPECT_FALSE(missing_subject.found);
  EXPECT_FALSE(no_stream.err.ok());
  EXPECT_EQ(no_stream.err.status, 404);
  EXPECT_EQ(no_stream.err.err_code, js_err_stream_not_found);
}

TEST(Jetstream, DeleteMessage) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  js_error deleted, deleted_again;
  js_stored_msg after;
  js_stream_info info;
  run_js(srv, [&](js_test& t) {
    t.js.ensure_stream(test_stream("S", "s"), [&](js_stream_info&&) {
      t.js.publish("s.a", "", "1", [](js_pub_ack&&) {});
      t.js.publish("s.a", "", "2", [&](js_pub_ack&&) {
        t.js.delete_msg("S", 1, [&](js_error&& e1) {
          deleted = std::move(e1);
          t.js.delete_msg("S", 1, [&](js_error&& e2) {
            deleted_again = std::move(e2);
            t.js.get("S", 1, [&](js_stored_msg&& m) {
              after = std::move(m);
              t.js.stream_info("S", [&](js_stream_info&& i) {
                info = std::move(i);
                t.done();
              });
            });
          });
        });
      });
    });
  });
  EXPECT_TRUE(deleted.ok()) << deleted.description;
  EXPECT_FALSE(deleted_again.ok());
  EXPECT_NE(deleted_again.err_code, 0u);
  EXPECT_TRUE(after.err.ok());
  EXPECT_FALSE(after.found);
  EXPECT_EQ(info.messages, 1u);
  EXPECT_EQ(info.first_seq, 2u);
}

TEST(Jetstream, ApiErrorsAreMappedIntoJsError) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  js_stream_info missing, changed_storage, bad_name;
  uint64_t errors = 0;
  run_js(srv, [&](js_test& t) {
    t.js.stream_info("MISSING", [&](js_stream_info&& i1) {
      missing = std::move(i1);
      js_stream_config c = test_stream("S", "s");
      t.js.ensure_stream(c, [&, c](js_stream_info&&) mutable {
        c.storage = "memory";  // cannot be changed by an update
        t.js.ensure_stream(c, [&](js_stream_info&& i2) {
          changed_storage = std::move(i2);
          js_stream_config overlap = test_stream("T", "s");  // subjects overlap S's
          t.js.ensure_stream(overlap, [&](js_stream_info&& i3) {
            bad_name = std::move(i3);
            errors = t.js.counters().api_errors;
            t.done();
          });
        });
      });
    });
  });
  EXPECT_EQ(missing.err.error, 0);
  EXPECT_EQ(missing.err.status, 404);
  EXPECT_EQ(missing.err.err_code, js_err_stream_not_found);
  EXPECT_EQ(missing.err.description, "stream not found");
  EXPECT_FALSE(changed_storage.err.ok());
  EXPECT_NE(changed_storage.err.err_code, 0u);
  EXPECT_GE(changed_storage.err.status, 400);
  EXPECT_FALSE(bad_name.err.ok());
  EXPECT_NE(bad_name.err.err_code, 0u);
  EXPECT_GE(errors, 3u);
}

TEST(Jetstream, RequestsFailAtOnceWhileDisconnected) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  js_pub_ack ack;
  js_stream_info info;
  run_js(srv, [&](js_test& t) {
    srv.kill();
    t.run.poll(5, [&] {
      if (t.nc.connected()) return false;
      t.js.publish("s.a", "", "x", [&](js_pub_ack&& a) {
        ack = std::move(a);
        t.js.stream_info("S", [&](js_stream_info&& i) {
          info = std::move(i);
          t.done();
        });
      });
      return true;
    });
  });
  EXPECT_EQ(ack.err.error, ENOTCONN);
  EXPECT_FALSE(ack.err.ok());
  EXPECT_EQ(info.err.error, ENOTCONN);
}

}  // namespace
}  // namespace rc::server
