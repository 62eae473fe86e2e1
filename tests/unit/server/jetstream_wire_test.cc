// The JetStream API's JSON without a server: request bodies, answers, errors, ack subjects.
#include "server/jetstream_wire.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "proto/json_reader.h"

namespace rc::server {
namespace {

using namespace js_wire;

json::value parse(json::parser& p, const std::string& s) {
  json::parse_result r = p.parse(s);
  EXPECT_TRUE(r.ok()) << s;
  return r.root;
}

TEST(JetstreamWire, StreamConfigCarriesEveryLimitInNanoseconds) {
  js_stream_config c;
  c.name = "RC_T0";
  c.subjects = {"rc.t0.>", "rc.x"};
  c.max_age_ms = 1500;
  c.max_msgs_per_subject = 16;
  c.max_bytes = 1 << 20;
  c.duplicate_window_ms = 120000;
  c.allow_rollup = true;
  c.storage = "memory";
  c.replicas = 3;
  json::parser p;
  std::string text = stream_config_json(c);
  json::value v = parse(p, text);
  EXPECT_EQ(v.find("name").get_string(), "RC_T0");
  EXPECT_EQ(v.find("subjects").size(), 2u);
  EXPECT_EQ(v.find("max_age").get_int64(), 1'500'000'000);
  EXPECT_EQ(v.find("duplicate_window").get_int64(), 120'000'000'000);
  EXPECT_EQ(v.find("max_msgs_per_subject").get_int64(), 16);
  EXPECT_EQ(v.find("max_msgs").get_int64(), -1);
  EXPECT_EQ(v.find("max_bytes").get_int64(), 1 << 20);
  EXPECT_EQ(v.find("storage").get_string(), "memory");
  EXPECT_EQ(v.find("num_replicas").get_int64(), 3);
  EXPECT_TRUE(v.find("allow_rollup_hdrs").get_bool());
  EXPECT_FALSE(v.find("deny_delete").get_bool());
  EXPECT_TRUE(v.find("allow_direct").get_bool());

  c.duplicate_window_ms = 0;  // the server's default: not sent
  v = parse(p, stream_config_json(c));
  EXPECT_FALSE(v.find("duplicate_window"));
}

TEST(JetstreamWire, StreamInfoAnswer) {
  js_stream_info i = parse_stream_info(
      R"({"type":"io.nats.jetstream.api.v1.stream_info_response","config":{"name":"S"},)"
      R"("created":"2026-12-04T23:30:00.123456789Z","state":{"messages":3,"bytes":10,)"
      R"("first_seq":5,"last_seq":7,"consumer_count":0}})");
  ASSERT_TRUE(i.err.ok()) << i.err.description;
  EXPECT_EQ(i.created_ns, 1796427000'123456789ull);
  EXPECT_EQ(i.first_seq, 5u);
  EXPECT_EQ(i.last_seq, 7u);
  EXPECT_EQ(i.messages, 3u);
}

TEST(JetstreamWire, ApiErrorsMapIntoJsError) {
  js_stream_info i = parse_stream_info(
      R"({"type":"x","error":{"code":400,"err_code":10058,"description":"stream name already in use with a different configuration"}})");
  EXPECT_FALSE(i.err.ok());
  EXPECT_EQ(i.err.error, 0);
  EXPECT_EQ(i.err.status, 400);
  EXPECT_EQ(i.err.err_code, js_err_stream_name_in_use);
  EXPECT_EQ(i.err.description, "stream name already in use with a different configuration");

  js_pub_ack a = parse_pub_ack(
      R"({"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 4"},"stream":"S","seq":0})");
  EXPECT_EQ(a.err.err_code, js_err_wrong_last_sequence);
  EXPECT_EQ(a.err.status, 400);

  js_error e =
      parse_success(R"({"error":{"code":404,"err_code":10059,"description":"stream not found"}})");
  EXPECT_EQ(e.status, 404);
  EXPECT_EQ(e.err_code, js_err_stream_not_found);
}

TEST(JetstreamWire, GarbageIsAProtocolError) {
  for (std::string_view bad : {"", "nope", "[1]", "{\"stream\":\"S\"}", "{\"seq\":3}"}) {
    js_pub_ack a = parse_pub_ack(bad);
    EXPECT_EQ(a.err.error, EPROTO) << bad;
    EXPECT_FALSE(a.err.ok());
  }
  EXPECT_EQ(parse_stream_info("{}").err.error, EPROTO);
  EXPECT_EQ(parse_success("{}").error, EPROTO);
  EXPECT_EQ(parse_consumer_created(R"({"name":"x"})").err.error, EPROTO);
  EXPECT_EQ(parse_stored_msg(R"({"message":{"data":"!!"}})").err.error, EPROTO);
}

TEST(JetstreamWire, PubAck) {
  js_pub_ack a = parse_pub_ack(R"({"stream":"RC_T0","seq":42})");
  ASSERT_TRUE(a.err.ok());
  EXPECT_EQ(a.stream, "RC_T0");
  EXPECT_EQ(a.seq, 42u);
  EXPECT_FALSE(a.duplicate);
  a = parse_pub_ack(R"({"stream":"RC_T0","seq":42,"duplicate":true})");
  EXPECT_TRUE(a.duplicate);
}

TEST(JetstreamWire, MessageGetBodiesAndAnswer) {
  EXPECT_EQ(msg_get_by_seq_json(17), R"({"seq":17})");
  EXPECT_EQ(msg_get_last_json("rc.bl.m\"1"), R"({"last_by_subj":"rc.bl.m\"1"})");
  js_stored_msg m = parse_stored_msg(
      R"({"type":"io.nats.jetstream.api.v1.stream_msg_get_response","message":{"subject":"a.b",)"
      R"("seq":9,"hdrs":"TkFUUy8xLjANCkstVjogMQ0KDQo=","data":"aGVsbG8=","time":"1970-01-01T00:00:01.5Z"}})");
  ASSERT_TRUE(m.err.ok()) << m.err.description;
  EXPECT_TRUE(m.found);
  EXPECT_EQ(m.subject, "a.b");
  EXPECT_EQ(m.seq, 9u);
  EXPECT_EQ(m.headers, "NATS/1.0\r\nK-V: 1\r\n\r\n");
  EXPECT_EQ(m.data, "hello");
  EXPECT_EQ(m.time_ns, 1'500'000'000u);

  // No headers, no data.
  m = parse_stored_msg(R"({"message":{"subject":"a","seq":1,"time":"2020-01-01T00:00:00Z"}})");
  ASSERT_TRUE(m.err.ok());
  EXPECT_TRUE(m.found);
  EXPECT_EQ(m.headers, "");
  EXPECT_EQ(m.data, "");

  // "no message found" is an answer, not an error.
  m = parse_stored_msg(
      R"({"error":{"code":404,"err_code":10037,"description":"no message found"}})");
  EXPECT_TRUE(m.err.ok());
  EXPECT_FALSE(m.found);
  // Another 404 (the stream is missing) stays an error.
  m = parse_stored_msg(
      R"({"error":{"code":404,"err_code":10059,"description":"stream not found"}})");
  EXPECT_FALSE(m.err.ok());
  EXPECT_FALSE(m.found);
}

TEST(JetstreamWire, DeleteBodyAndSuccess) {
  EXPECT_EQ(msg_delete_json(3), R"({"seq":3,"no_erase":true})");
  EXPECT_TRUE(parse_success(R"({"type":"t","success":true})").ok());
  EXPECT_FALSE(parse_success(R"({"success":false})").ok());
}

TEST(JetstreamWire, OrderedConsumerRequest) {
  json::parser p;
  ordered_request r;
  r.stream = "S";
  r.deliver_subject = "_INBOX.x.s1";
  r.filter_subject = "rc.t0.chat";
  std::string text = ordered_consumer_json(r);
  json::value v = parse(p, text);
  EXPECT_EQ(v.find("stream_name").get_string(), "S");
  json::value c = v.find("config");
  EXPECT_EQ(c.find("deliver_subject").get_string(), "_INBOX.x.s1");
  EXPECT_EQ(c.find("deliver_policy").get_string(), "new");
  EXPECT_FALSE(c.find("opt_start_seq"));
  EXPECT_EQ(c.find("ack_policy").get_string(), "none");
  EXPECT_EQ(c.find("filter_subject").get_string(), "rc.t0.chat");
  EXPECT_TRUE(c.find("flow_control").get_bool());
  EXPECT_EQ(c.find("idle_heartbeat").get_int64(), 1'000'000'000);
  EXPECT_TRUE(c.find("mem_storage").get_bool());
  EXPECT_EQ(c.find("num_replicas").get_int64(), 1);
  EXPECT_FALSE(c.find("durable_name"));

  r.start_seq = 12;
  v = parse(p, ordered_consumer_json(r));
  EXPECT_EQ(v.find("config").find("deliver_policy").get_string(), "by_start_sequence");
  EXPECT_EQ(v.find("config").find("opt_start_seq").get_int64(), 12);

  r.start_seq = 0;
  r.deliver_last_per_subject = true;
  r.headers_only = true;
  v = parse(p, ordered_consumer_json(r));
  EXPECT_EQ(v.find("config").find("deliver_policy").get_string(), "last_per_subject");
  EXPECT_TRUE(v.find("config").find("headers_only").get_bool());
}

TEST(JetstreamWire, ConsumerCreatedAnswer) {
  consumer_created c = parse_consumer_created(
      R"({"type":"t","stream_name":"S","name":"abc","created":"2026-01-01T00:00:00Z",)"
      R"("config":{},"delivered":{"consumer_seq":0,"stream_seq":41},"num_pending":3})");
  ASSERT_TRUE(c.err.ok());
  EXPECT_EQ(c.name, "abc");
  EXPECT_EQ(c.delivered_stream_seq, 41u);
  EXPECT_EQ(c.num_pending, 3u);
}

TEST(JetstreamWire, AckReplyBothForms) {
  js_delivery d;
  ASSERT_TRUE(parse_ack_reply("$JS.ACK.S.cons.1.42.7.1700000000123456789.3", d));
  EXPECT_EQ(d.delivered, 1u);
  EXPECT_EQ(d.stream_seq, 42u);
  EXPECT_EQ(d.consumer_seq, 7u);
  EXPECT_EQ(d.time_ns, 1700000000123456789u);
  EXPECT_EQ(d.pending, 3u);

  js_delivery e;
  ASSERT_TRUE(parse_ack_reply("$JS.ACK._.ACCHASH.S.cons.2.43.8.1700000000123456790.0.rnd", e));
  EXPECT_EQ(e.delivered, 2u);
  EXPECT_EQ(e.stream_seq, 43u);
  EXPECT_EQ(e.consumer_seq, 8u);
  EXPECT_EQ(e.pending, 0u);
  js_delivery f;  // 11 tokens: the random token left out
  ASSERT_TRUE(parse_ack_reply("$JS.ACK.dom.ACC.S.cons.1.5.1.17.0", f));
  EXPECT_EQ(f.stream_seq, 5u);
}

TEST(JetstreamWire, AckReplyRejectsOtherSubjects) {
  for (std::string_view bad :
       {"", "$JS.ACK", "_INBOX.x.y", "$JS.ACK.S.cons.1.42.7.17", "$JS.ACK.S.cons.1.42.7.17.3.x",
        "$JS.NAK.S.cons.1.42.7.17.3", "$JS.ACK.S.cons.1.-2.7.17.3", "$JS.ACK.S.cons.1.42.7.17.",
        "$JS.ACK..cons.1.42.7.17.3", "$JS.ACK.S.cons.1.99999999999999999999999.7.17.3",
        "$JS.ACK.a.b.S.c.1.2.3.4.5.6.7"}) {
    js_delivery d;
    d.stream_seq = 99;
    EXPECT_FALSE(parse_ack_reply(bad, d)) << bad;
    EXPECT_EQ(d.stream_seq, 99u);
  }
}

TEST(JetstreamWire, Rfc3339) {
  EXPECT_EQ(parse_rfc3339_ns("1970-01-01T00:00:00Z"), 0u);
  EXPECT_EQ(parse_rfc3339_ns("2000-03-01T00:00:00Z"), 951868800ull * 1'000'000'000);
  EXPECT_EQ(parse_rfc3339_ns("2026-12-04T23:30:00.1Z"), 1796427000'100000000ull);
  EXPECT_EQ(parse_rfc3339_ns("2026-12-05T00:30:00.1+01:00"), 1796427000'100000000ull);
  EXPECT_EQ(parse_rfc3339_ns("2026-12-04T22:30:00.1-01:00"), 1796427000'100000000ull);
  for (std::string_view bad :
       {"", "2026-12-04", "2026-12-04T23:30:00", "2026-13-04T23:30:00Z", "2026-12-04T23:30:00.Z",
        "2026-12-04T23:30:00Zx", "1969-12-31T23:59:59Z", "2026-12-04T23:30:00+0100"}) {
    EXPECT_FALSE(parse_rfc3339_ns(bad)) << bad;
  }
}

TEST(JetstreamWire, ParseU64) {
  EXPECT_EQ(parse_u64("0"), 0u);
  EXPECT_EQ(parse_u64("18446744073709551615"), UINT64_MAX);
  EXPECT_FALSE(parse_u64("18446744073709551616"));
  EXPECT_FALSE(parse_u64(""));
  EXPECT_FALSE(parse_u64("+1"));
}

}  // namespace
}  // namespace rc::server
