// The cluster settings' parsers (cluster_config.h) and the stores the cluster ensures
// (make_cluster_stores, stream_epoch in cluster.h).
#include "server/cluster_config.h"

#include <gtest/gtest.h>

#include "server/cluster.h"

namespace rc::server {
namespace {

TEST(ClusterConfig, NatsUrls) {
  for (const char* ok : {"nats://127.0.0.1:4222", "nats://nats-1.internal", "nats://[::1]:4222",
                         "nats://[fe80::1]", "nats://h:1/", "nats://h:65535"})
    EXPECT_EQ(check_nats_url(ok), "") << ok;
  struct bad {
    const char* url;
    const char* why;
  };
  for (bad b : {bad{"127.0.0.1:4222", "expected nats://"}, bad{"tls://h:4222", "only nats://"},
                bad{"nats://u:p@h", "credentials"}, bad{"nats://h:4222/x", "no path"},
                bad{"nats://:4222", "empty host"}, bad{"nats://h:", "empty port"},
                bad{"nats://h:0", "1 to 65535"}, bad{"nats://h:65536", "1 to 65535"},
                bad{"nats://h:42x", "1 to 65535"}, bad{"nats://[::1", "unterminated"},
                bad{"nats://[::1]x", "expected :PORT"}, bad{"nats://[zz]", "bad IPv6"},
                bad{"nats://h st", "bad host name"}}) {
    std::string err = check_nats_url(b.url);
    EXPECT_NE(err.find(b.why), std::string::npos) << b.url << ": " << err;
  }
}

TEST(ClusterConfig, NodeIds) {
  EXPECT_EQ(check_node_id("edge-1_a"), "");
  EXPECT_EQ(check_node_id(std::string(32, 'a')), "");
  EXPECT_NE(check_node_id(std::string(33, 'a')), "");
  EXPECT_NE(check_node_id(""), "");
  EXPECT_NE(check_node_id("a.b"), "");
  EXPECT_NE(check_node_id("a b"), "");
  EXPECT_EQ(default_node_id("web1.example.com", 8080), "web1-8080");
  EXPECT_EQ(default_node_id("we b+1", 80), "we-b-1-80");
  EXPECT_EQ(default_node_id("", 80), "node-80");
  std::string long_id = default_node_id(std::string(40, 'h'), 65535);
  EXPECT_EQ(long_id.size(), 32u);
  EXPECT_EQ(check_node_id(long_id), "");
  EXPECT_TRUE(long_id.ends_with("-65535"));
}

TEST(ClusterConfig, DurationsAndSizes) {
  int64_t v = 0;
  EXPECT_EQ(parse_duration_ms("24h", v), "");
  EXPECT_EQ(v, 86'400'000);
  EXPECT_EQ(parse_duration_ms("500ms", v), "");
  EXPECT_EQ(v, 500);
  EXPECT_EQ(parse_duration_ms("90", v), "");
  EXPECT_EQ(v, 90'000);
  EXPECT_EQ(parse_duration_ms("7d", v), "");
  EXPECT_EQ(v, 7 * 86'400'000LL);
  EXPECT_EQ(parse_duration_ms("unlimited", v), "");
  EXPECT_EQ(v, 0);  // no age limit
  EXPECT_NE(parse_duration_ms("1y", v), "");
  EXPECT_NE(parse_duration_ms("-5s", v), "");
  EXPECT_NE(parse_duration_ms("h", v), "");
  EXPECT_EQ(parse_byte_size("64MiB", v), "");
  EXPECT_EQ(v, 64LL << 20);
  EXPECT_EQ(parse_byte_size("2GB", v), "");
  EXPECT_EQ(v, 2'000'000'000);
  EXPECT_EQ(parse_byte_size("4096", v), "");
  EXPECT_EQ(v, 4096);
  EXPECT_EQ(parse_byte_size("-1", v), "");
  EXPECT_EQ(v, -1);
  EXPECT_NE(parse_byte_size("64mib", v), "");
  EXPECT_NE(parse_byte_size("99999999999TiB", v), "");
}

TEST(ClusterConfig, TopicRetention) {
  topic_retention r;
  EXPECT_EQ(parse_topic_retention("chat.>=age:1h,msgs:1000,bytes:64MiB,per_subject:50", r), "");
  EXPECT_EQ(r.pattern, "chat.>");
  EXPECT_EQ(r.max_age_ms, 3'600'000);
  EXPECT_EQ(r.max_msgs, 1000);
  EXPECT_EQ(r.max_bytes, 64LL << 20);
  EXPECT_EQ(r.max_msgs_per_subject, 50);

  topic_retention only_count;  // what an entry does not name keeps the default
  EXPECT_EQ(parse_topic_retention(" logs.* = msgs : 5 ", only_count), "");
  EXPECT_EQ(only_count.pattern, "logs.*");
  EXPECT_EQ(only_count.max_msgs, 5);
  EXPECT_EQ(only_count.max_age_ms, topic_retention{}.max_age_ms);
  EXPECT_EQ(only_count.max_bytes, -1);

  topic_retention forever;
  EXPECT_EQ(parse_topic_retention(">=age:unlimited,per_subject:unlimited", forever), "");
  EXPECT_EQ(forever.max_age_ms, 0);
  EXPECT_EQ(forever.max_msgs_per_subject, -1);

  for (const char* bad : {"chat.>", "=age:1h", "chat.>=", "chat*=age:1h", ".a=age:1h",
                          "a.=age:1h", "a..b=age:1h", "a=age", "a=ttl:1h", "a=age:1h,age:2h",
                          "a=msgs:0", "a=bytes:0", "a=per_subject:x"}) {
    topic_retention t;
    EXPECT_NE(parse_topic_retention(bad, t), "") << bad;
  }
}

TEST(ClusterConfig, CredentialsFile) {
  std::string token, user, password;
  EXPECT_EQ(parse_nats_credentials("s3cret\n", token, user, password), "");
  EXPECT_EQ(token, "s3cret");
  EXPECT_EQ(user, "");
  token.clear();
  EXPECT_EQ(parse_nats_credentials("edge:pa:ss\r\n", token, user, password), "");
  EXPECT_EQ(token, "");
  EXPECT_EQ(user, "edge");
  EXPECT_EQ(password, "pa:ss");
  for (const char* bad : {"", "\n", ":p", "u:", "a\nb", "-----BEGIN NATS USER JWT-----\nx"}) {
    std::string t, u, p;
    EXPECT_NE(parse_nats_credentials(bad, t, u, p), "") << bad;
  }
}

TEST(ClusterStores, FromTheConfiguration) {
  server_config c;
  c.nats_replicas = 3;
  c.broker_lease_ms = 4000;
  c.responses_ttl_s = 600;
  c.broker_retention_ms = 1000;
  c.broker_log_events_max = 77;
  topic_retention chat;
  ASSERT_EQ(parse_topic_retention("chat.>=age:1h,msgs:10", chat), "");
  c.topic_retentions.push_back(chat);
  cluster_stores s = make_cluster_stores(c);
  ASSERT_GE(s.streams.size(), 4u);
  EXPECT_EQ(s.streams[0].name, "RC_T0");
  // A topic stream's subjects carry its epoch: set by the ensure pass.
  EXPECT_TRUE(s.streams[0].subjects.empty());
  set_topic_epoch(s.streams[0], 0, "0badc0de");
  EXPECT_EQ(s.streams[0].subjects, std::vector<std::string>{"rc.t0.0badc0de.>"});
  EXPECT_EQ(s.streams[0].description, "ringcast epoch 0badc0de");
  EXPECT_EQ(described_epoch(s.streams[0].description), "0badc0de");
  EXPECT_EQ(described_epoch("ringcast epoch 0BADC0DE"), "");
  EXPECT_EQ(described_epoch("hand made"), "");
  EXPECT_EQ(s.streams[0].max_age_ms, 86'400'000);
  EXPECT_EQ(s.streams[1].name, "RC_T1");
  set_topic_epoch(s.streams[1], 1, "00000001");
  EXPECT_EQ(s.streams[1].subjects, std::vector<std::string>{"rc.t1.00000001.>"});
  EXPECT_EQ(s.streams[1].max_age_ms, 3'600'000);
  EXPECT_EQ(s.streams[1].max_msgs, 10);
  for (const js_stream_config& st : s.streams) {
    EXPECT_FALSE(st.subjects.empty()) << st.name;
    EXPECT_EQ(st.replicas, 3u) << st.name;
    EXPECT_EQ(st.storage, "file") << st.name;
  }
  bool work = false, log = false;
  for (const js_stream_config& st : s.streams) {
    if (st.name == broker_work_stream) work = st.subjects[0] == "rc.bq.>";
    if (st.name == broker_log_stream) {
      log = st.subjects[0] == "rc.bl.>";
      EXPECT_EQ(st.max_age_ms, 1000 + 3'600'000);
      EXPECT_EQ(st.max_msgs_per_subject, 77);
    }
  }
  EXPECT_TRUE(work);
  EXPECT_TRUE(log);
  ASSERT_EQ(s.buckets.size(), 2u);
  EXPECT_EQ(s.buckets[0].name, owners_bucket);
  EXPECT_EQ(s.buckets[0].ttl_ms, 4000);
  EXPECT_EQ(s.buckets[1].name, responses_bucket);
  EXPECT_EQ(s.buckets[1].ttl_ms, 600'000);
}

TEST(ClusterStores, EpochIsStablePerCreationTime) {
  std::string a = stream_epoch(1733356800123456789ULL);
  EXPECT_EQ(a.size(), 8u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(a, stream_epoch(1733356800123456789ULL));
  EXPECT_NE(a, stream_epoch(1733356800123456790ULL));
}

TEST(ClusterStores, EpochComesFromTheDescriptionWhenItHasOne) {
  js_stream_info info;
  info.created_ns = 1733356800123456789ULL;
  info.description = "ringcast epoch 9f00c1de";
  EXPECT_EQ(stream_epoch(info), "9f00c1de");
  // Without one (or a malformed one): the hash of the creation time.
  for (const char* d : {"", "ringcast epoch ", "ringcast epoch 9F00C1DE", "ringcast epoch 9f00c1de0",
                        "something else"}) {
    info.description = d;
    EXPECT_EQ(stream_epoch(info), stream_epoch(info.created_ns)) << d;
  }
}

}  // namespace
}  // namespace rc::server
