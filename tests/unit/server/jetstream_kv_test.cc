// Key-value buckets against a real `nats-server -js`: create conflicts, updates with a stale
// revision, deleted keys read as absent and may be created again, TTL expiry, key listing, and
// the bucket's stream laid out as NATS KV defines it.
#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "jetstream_fixture.h"
#include "proto/json_reader.h"
#include "server/jetstream.h"
#include "server/nats_client.h"

namespace rc::server {
namespace {

using test::js_test;
using test::nats_server_process;
using test::run_js;

#define NEEDS_URING() \
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable"

TEST(JetstreamKv, BucketIsAKvStream) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  js_error made, again;
  std::string config;
  run_js(srv, [&](js_test& t) {
    t.js.ensure_kv("owners", 5000, 1024, 1, [&](js_error&& e1) {
      made = std::move(e1);
      t.js.ensure_kv("owners", 5000, 1024, 1, [&](js_error&& e2) {
        again = std::move(e2);
        t.nc.request("$JS.API.STREAM.INFO.KV_owners", "", "", 5000, [&](nats_reply&& r) {
          json::parser p;
          auto doc = p.parse(r.data);
          if (doc.ok()) config = doc.root.find("config").to_json();
          t.done();
        });
      });
    });
  });
  ASSERT_TRUE(made.ok()) << made.description;
  ASSERT_TRUE(again.ok()) << again.description;
  json::parser p;
  auto doc = p.parse(config);
  ASSERT_TRUE(doc.ok()) << config;
  json::value c = doc.root;
  EXPECT_EQ(c.find("subjects").to_json(), R"(["$KV.owners.>"])");
  EXPECT_EQ(c.find("max_msgs_per_subject").get_int64(), 1);
  EXPECT_EQ(c.find("max_age").get_int64(), 5'000'000'000);
  EXPECT_EQ(c.find("max_msg_size").get_int64(), 1024);
  EXPECT_TRUE(c.find("allow_rollup_hdrs").get_bool());
  EXPECT_TRUE(c.find("deny_delete").get_bool());
  EXPECT_TRUE(c.find("allow_direct").get_bool());
}

TEST(JetstreamKv, CreateUpdateDeleteWithRevisions) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  js_kv_entry created, conflict, updated, stale, read, after_delete, recreated, put, missing;
  js_error deleted;
  run_js(srv, [&](js_test& t) {
    t.js.ensure_kv("b", 0, -1, 1, [&](js_error&& e) {
      ASSERT_TRUE(e.ok()) << e.description;
      t.js.kv_create("b", "p1", "node-a", [&](js_kv_entry&& r1) {
        created = std::move(r1);
        t.js.kv_create("b", "p1", "node-b", [&](js_kv_entry&& r2) {
          conflict = std::move(r2);
          t.js.kv_update("b", "p1", "node-a2", created.revision, [&](js_kv_entry&& r3) {
            updated = std::move(r3);
            t.js.kv_update("b", "p1", "node-c", created.revision, [&](js_kv_entry&& r4) {
              stale = std::move(r4);
              t.js.kv_get("b", "p1", [&](js_kv_entry&& r5) {
                read = std::move(r5);
                t.js.kv_delete("b", "p1", [&](js_error&& e6) {
                  deleted = std::move(e6);
                  t.js.kv_get("b", "p1", [&](js_kv_entry&& r7) {
                    after_delete = std::move(r7);
                    t.js.kv_create("b", "p1", "node-d", [&](js_kv_entry&& r8) {
                      recreated = std::move(r8);
                      t.js.kv_put("b", "p1", "node-e", [&](js_kv_entry&& r9) {
                        put = std::move(r9);
                        t.js.kv_get("b", "never", [&](js_kv_entry&& r10) {
                          missing = std::move(r10);
                          t.done();
                        });
                      });
                    });
                  });
                });
              });
            });
          });
        });
      });
    });
  });
  ASSERT_TRUE(created.err.ok()) << created.err.description;
  EXPECT_TRUE(created.found);
  EXPECT_GT(created.revision, 0u);
  EXPECT_FALSE(conflict.err.ok());
  EXPECT_EQ(conflict.err.err_code, js_err_wrong_last_sequence);
  ASSERT_TRUE(updated.err.ok()) << updated.err.description;
  EXPECT_GT(updated.revision, created.revision);
  EXPECT_FALSE(stale.err.ok());
  EXPECT_EQ(stale.err.err_code, js_err_wrong_last_sequence);
  ASSERT_TRUE(read.err.ok());
  EXPECT_TRUE(read.found);
  EXPECT_EQ(read.value, "node-a2");
  EXPECT_EQ(read.revision, updated.revision);
  EXPECT_TRUE(deleted.ok()) << deleted.description;
  EXPECT_TRUE(after_delete.err.ok()) << after_delete.err.description;
  EXPECT_FALSE(after_delete.found);
  ASSERT_TRUE(recreated.err.ok()) << recreated.err.description;
  EXPECT_TRUE(recreated.found);
  EXPECT_EQ(recreated.value, "node-d");
  ASSERT_TRUE(put.err.ok());
  EXPECT_GT(put.revision, recreated.revision);
  EXPECT_TRUE(missing.err.ok());
  EXPECT_FALSE(missing.found);
}

TEST(JetstreamKv, EntriesExpireAfterTheTtl) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  bool found_at_first = false, expired = false, recreated = false;
  run_js(
      srv,
      [&](js_test& t) {
        t.js.ensure_kv("leases", 1000, -1, 1, [&](js_error&& e) {
          ASSERT_TRUE(e.ok()) << e.description;
          t.js.kv_create("leases", "p0", "node-a", [&](js_kv_entry&& c) {
            ASSERT_TRUE(c.err.ok()) << c.err.description;
            t.js.kv_get("leases", "p0", [&](js_kv_entry&& g) {
              found_at_first = g.found;
              // Poll until the server has aged it out (bounded by the test's limit).
              t.run.poll(100, [&] {
                t.js.kv_get("leases", "p0", [&](js_kv_entry&& later) {
                  if (later.found || expired) return;
                  expired = true;
                  // An expired lease can be claimed with create again.
                  t.js.kv_create("leases", "p0", "node-b", [&](js_kv_entry&& again) {
                    recreated = again.err.ok();
                    t.done();
                  });
                });
                return expired;
              });
            });
          });
        });
      },
      20000);
  EXPECT_TRUE(found_at_first);
  EXPECT_TRUE(expired);
  EXPECT_TRUE(recreated);
}

TEST(JetstreamKv, KeysListsLiveKeysOnly) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  std::vector<std::string> empty_keys = {"?"}, all, nodes;
  js_error empty_err, all_err;
  run_js(srv, [&](js_test& t) {
    t.js.ensure_kv("o", 0, -1, 1, [&](js_error&&) {
      t.js.kv_keys("o", "", [&](js_error&& e0, std::vector<std::string>&& k0) {
        empty_err = std::move(e0);
        empty_keys = std::move(k0);
        t.js.kv_put("o", "p0", "a", [](js_kv_entry&&) {});
        t.js.kv_put("o", "n.node-a", "1", [](js_kv_entry&&) {});
        t.js.kv_put("o", "n.node-b", "1", [](js_kv_entry&&) {});
        t.js.kv_put("o", "p1", "a", [](js_kv_entry&&) {});
        t.js.kv_put("o", "p1", "b", [](js_kv_entry&&) {});
        t.js.kv_delete("o", "n.node-b", [&](js_error&&) {
          t.js.kv_keys("o", ">", [&](js_error&& e1, std::vector<std::string>&& k1) {
            all_err = std::move(e1);
            all = std::move(k1);
            t.js.kv_keys("o", "n.*", [&](js_error&&, std::vector<std::string>&& k2) {
              nodes = std::move(k2);
              t.done();
            });
          });
        });
      });
    });
  });
  EXPECT_TRUE(empty_err.ok()) << empty_err.description;
  EXPECT_TRUE(empty_keys.empty());
  EXPECT_TRUE(all_err.ok()) << all_err.description;
  EXPECT_EQ(all, (std::vector<std::string>{"n.node-a", "p0", "p1"}));
  EXPECT_EQ(nodes, (std::vector<std::string>{"n.node-a"}));
}

// Listing keys needs the connection: while disconnected it fails at once (a later turn) with
// ENOTCONN instead of waiting for its deadline; a listing in progress when the connection goes
// fails likewise.
TEST(JetstreamKv, KeysFailAtOnceWhileDisconnected) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  js_error down_err, cut_err;
  bool inside = false, called_inside = false;
  int calls = 0;
  run_js(
      srv,
      [&](js_test& t) {
        t.js.ensure_kv("o", 0, -1, 1, [&](js_error&&) {
          srv.kill();
          t.run.poll(5, [&] {
            if (t.nc.connected()) return false;
            inside = true;
            t.js.kv_keys("o", "", [&](js_error&& e, std::vector<std::string>&&) {
              called_inside = inside;
              ++calls;
              down_err = std::move(e);
              EXPECT_TRUE(srv.start()) << srv.log();
              t.run.poll(5, [&] {
                if (!t.nc.connected()) return false;
                // Started while the client still believes it is connected (the server is
                // gone, the client has not read the EOF yet): cut off before it can finish.
                srv.kill();
                t.js.kv_keys("o", "", [&](js_error&& e2, std::vector<std::string>&&) {
                  ++calls;
                  cut_err = std::move(e2);
                  t.run.later(100, [&] { t.done(); });
                });
                return true;
              });
            });
            inside = false;
            return true;
          });
        });
      },
      30000, 60000);  // an api timeout far beyond the test's limit: only ENOTCONN can end it
  EXPECT_FALSE(called_inside);
  EXPECT_EQ(down_err.error, ENOTCONN) << down_err.description;
  EXPECT_EQ(cut_err.error, ENOTCONN) << cut_err.description;
  EXPECT_EQ(calls, 2);
}

// A bucket made by `nats kv add` (the Go client's configuration: deny_delete set) is adopted
// as it is, not refused for a configuration the server cannot update.
TEST(JetstreamKv, AdoptsABucketMadeByTheNatsTools) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  js_stream_info made;
  js_error adopted;
  js_kv_entry put, got;
  run_js(srv, [&](js_test& t) {
    js_stream_config c;
    c.name = "KV_tools";
    c.subjects = {"$KV.tools.>"};
    c.max_msgs_per_subject = 1;
    c.allow_rollup = true;
    c.deny_delete = true;
    c.allow_direct = true;
    c.discard = "new";
    c.duplicate_window_ms = 120'000;
    t.js.ensure_stream(c, [&](js_stream_info&& i) {
      made = std::move(i);
      t.js.ensure_kv("tools", 0, -1, 1, [&](js_error&& e) {
        adopted = std::move(e);
        t.js.kv_put("tools", "k", "v", [&](js_kv_entry&& p) {
          put = std::move(p);
          t.js.kv_get("tools", "k", [&](js_kv_entry&& g) {
            got = std::move(g);
            t.done();
          });
        });
      });
    });
  });
  ASSERT_TRUE(made.err.ok()) << made.err.description;
  EXPECT_TRUE(adopted.ok()) << adopted.description;
  EXPECT_TRUE(put.err.ok()) << put.err.description;
  EXPECT_TRUE(got.found);
  EXPECT_EQ(got.value, "v");
}

TEST(JetstreamKv, MissingBucketIsAnError) {
  NEEDS_URING();
  nats_server_process srv(test::js_server());
  ASSERT_TRUE(srv.start()) << srv.log();
  js_kv_entry got, put;
  js_error keys_err;
  run_js(srv, [&](js_test& t) {
    t.js.kv_get("nope", "k", [&](js_kv_entry&& g) {
      got = std::move(g);
      t.js.kv_put("nope", "k", "v", [&](js_kv_entry&& p) {
        put = std::move(p);
        t.js.kv_keys("nope", "", [&](js_error&& e, std::vector<std::string>&&) {
          keys_err = std::move(e);
          t.done();
        });
      });
    });
  });
  EXPECT_FALSE(got.err.ok());
  EXPECT_EQ(got.err.err_code, js_err_stream_not_found);
  EXPECT_FALSE(got.found);
  EXPECT_FALSE(put.err.ok());
  EXPECT_FALSE(keys_err.ok());
}

}  // namespace
}  // namespace rc::server
