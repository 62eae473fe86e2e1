// fanout dialects: what each one puts on the wire and how it reads answers and deliveries.
#include "load/fanout_dialect.h"

#include <gtest/gtest.h>

#include <string>

namespace rc::load {
namespace {

std::string publication(fanout_dialect d, uint64_t seq, uint64_t ts, std::string_view pad) {
  byte_buffer b;
  write_publication(b, d, seq, ts, pad);
  return std::string(b.view());
}

std::string request(fanout_dialect d, std::string_view topic, std::string_view body) {
  byte_buffer b;
  write_publish_request(b, d, topic, "127.0.0.1:9000", body);
  return std::string(b.view());
}

TEST(FanoutDialect, TokenPadIsExactlySizedJsonStringSafeAndVaried) {
  EXPECT_EQ(make_pad(5, false), "xxxxx");
  for (size_t n : {0u, 1u, 7u, 200u, 1999u, 2000u, 4096u}) {
    std::string pad = make_pad(n, true);
    ASSERT_EQ(pad.size(), n);
    // No control bytes, and every quote escaped: the pad sits inside a JSON string.
    size_t backslashes = 0;
    for (char c : pad) {
      ASSERT_GE(static_cast<unsigned char>(c), 0x20) << n;
      if (c == '"') {
        ASSERT_EQ(backslashes % 2, 1u) << n;
      }
      backslashes = c == '\\' ? backslashes + 1 : 0;
    }
    ASSERT_EQ(backslashes % 2, 0u) << n;  // the closing quote stays a quote
  }
  // Varied words: a 2,000-byte pad is not one repeated chunk.
  std::string pad = make_pad(2000, true);
  EXPECT_NE(pad.find("chat.completion.chunk"), std::string::npos);
  size_t first = pad.find("content"), second = pad.find("content", first + 1);
  EXPECT_NE(pad.substr(first, 40), pad.substr(second, 40));
}

TEST(FanoutDialect, NamesRoundTripAndUnknownNamesAreRefused) {
  for (auto d : {fanout_dialect::ringcast, fanout_dialect::nchan, fanout_dialect::pushpin,
                 fanout_dialect::uws})
    EXPECT_EQ(parse_dialect(dialect_name(d)), d);
  EXPECT_FALSE(parse_dialect("centrifugo"));
  EXPECT_FALSE(parse_dialect(""));
  EXPECT_FALSE(parse_dialect("Nchan"));
}

TEST(FanoutDialect, OnlyNchanAndPushpinNumberTheirOwnPublications) {
  EXPECT_FALSE(self_numbered(fanout_dialect::ringcast));
  EXPECT_FALSE(self_numbered(fanout_dialect::uws));
  EXPECT_TRUE(self_numbered(fanout_dialect::nchan));
  EXPECT_TRUE(self_numbered(fanout_dialect::pushpin));
}

TEST(FanoutDialect, SubscribePaths) {
  EXPECT_EQ(subscribe_path(fanout_dialect::ringcast, sub_protocol::ws, "t-1"), "/ws");
  EXPECT_EQ(subscribe_path(fanout_dialect::uws, sub_protocol::sse, "t-1"),
            "/v1/topics/t-1/events?since=0");
  EXPECT_EQ(subscribe_path(fanout_dialect::nchan, sub_protocol::ws, "t-1"), "/sub/t-1");
  EXPECT_EQ(subscribe_path(fanout_dialect::pushpin, sub_protocol::sse, "t-1"), "/sub/t-1");
}

TEST(FanoutDialect, RingcastPublicationHasNoSequence) {
  EXPECT_EQ(publication(fanout_dialect::ringcast, 7, 123, "xx"), R"({"ts":123,"pad":"xx"})");
  EXPECT_EQ(publication(fanout_dialect::uws, 7, 123, ""), R"({"ts":123,"pad":""})");
}

TEST(FanoutDialect, SelfNumberedPublicationCarriesItsSequence) {
  std::string p = publication(fanout_dialect::nchan, 42, 9876543210, "xyz");
  EXPECT_EQ(p, R"({"seq":42,"ts":9876543210,"pad":"xyz"})");
  uint64_t seq = 0, ts = 0;
  ASSERT_TRUE(parse_publication(p, seq, ts));
  EXPECT_EQ(seq, 42u);
  EXPECT_EQ(ts, 9876543210u);
}

TEST(FanoutDialect, ParsePublicationNeedsBothNumbers) {
  uint64_t seq = 0, ts = 0;
  EXPECT_FALSE(parse_publication(R"({"ts":5,"pad":""})", seq, ts));
  EXPECT_FALSE(parse_publication(R"({"seq":5,"pad":""})", seq, ts));
  EXPECT_FALSE(parse_publication(R"({"seq":"5","ts":1})", seq, ts));
  EXPECT_FALSE(parse_publication("", seq, ts));
  EXPECT_TRUE(parse_publication(R"({"seq":1,"ts":2})", seq, ts));
}

TEST(FanoutDialect, RingcastAndNchanPostTheBodyToTheirPaths) {
  std::string body = R"({"ts":1,"pad":""})";
  EXPECT_EQ(request(fanout_dialect::ringcast, "t", body),
            "POST /v1/topics/t HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nContent-Type: "
            "application/json\r\nContent-Length: 17\r\n\r\n" +
                body);
  EXPECT_EQ(request(fanout_dialect::nchan, "t", body),
            "POST /pub/t HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nContent-Type: "
            "application/json\r\nContent-Length: 17\r\n\r\n" +
                body);
}

TEST(FanoutDialect, PushpinPublishesOneItemInBothFormats) {
  std::string body = R"({"seq":1,"ts":2,"pad":""})";
  std::string want_body =
      R"({"items":[{"channel":"t-1","formats":{"ws-message":{"content":"{\"seq\":1,\"ts\":2,)"
      R"(\"pad\":\"\"}"},"http-stream":{"content":"event: message\ndata: {\"seq\":1,\"ts\":2,)"
      R"(\"pad\":\"\"}\n\n"}}}]})";
  EXPECT_EQ(request(fanout_dialect::pushpin, "t-1", body),
            "POST /publish/ HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nContent-Type: "
            "application/json\r\nContent-Length: " +
                std::to_string(want_body.size()) + "\r\n\r\n" + want_body);
}

TEST(FanoutDialect, RingcastAnswerCarriesTheServersSequence) {
  EXPECT_EQ(publish_answer(fanout_dialect::ringcast, 200, R"({"topic":"t","seq":17})", 3), 17u);
  EXPECT_EQ(publish_answer(fanout_dialect::uws, 200, R"({"seq":4})", 9), 4u);
  EXPECT_FALSE(publish_answer(fanout_dialect::ringcast, 200, R"({"ok":true})", 3));
  EXPECT_FALSE(publish_answer(fanout_dialect::ringcast, 503, R"({"seq":17})", 3));
}

TEST(FanoutDialect, SelfNumberedAnswersAcknowledgeTheNthPublication) {
  const char* nchan_body = "queued messages: 1\r\nactive subscribers: 100\r\n";
  EXPECT_EQ(publish_answer(fanout_dialect::nchan, 201, nchan_body, 5), 5u);
  EXPECT_EQ(publish_answer(fanout_dialect::nchan, 202, nchan_body, 6), 6u);
  EXPECT_EQ(publish_answer(fanout_dialect::nchan, 200, "", 7), 7u);
  EXPECT_FALSE(publish_answer(fanout_dialect::nchan, 403, "", 8));
  EXPECT_EQ(publish_answer(fanout_dialect::pushpin, 200, "Published\n", 1), 1u);
  EXPECT_FALSE(publish_answer(fanout_dialect::pushpin, 400, "Bad format.\n", 2));
  EXPECT_FALSE(publish_answer(fanout_dialect::pushpin, 201, "", 2));
}

}  // namespace
}  // namespace rc::load
