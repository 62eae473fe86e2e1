// NATS protocol codec: server operations in every fragmentation, malformed, truncated,
// oversized and hostile input, header blocks, writers, subjects, INFO and URLs.
#include "proto/nats.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace rc::nats {
namespace {

struct seen {
  op kind;
  std::string subject, reply, sid, headers, payload;
};

// Feeds `input` in chunks of `step` bytes (0: at once); false on a protocol error.
bool feed_all(parser& p, std::string_view input, size_t step, std::vector<seen>& out) {
  auto on = [&](const server_op& o) {
    out.push_back({o.kind, std::string(o.subject), std::string(o.reply), std::string(o.sid),
                   std::string(o.headers), std::string(o.payload)});
  };
  if (step == 0) return p.feed(input, on);
  for (size_t i = 0; i < input.size(); i += step)
    if (!p.feed(input.substr(i, step), on)) return false;
  return true;
}

constexpr std::string_view stream =
    "INFO {\"server_id\":\"S\",\"max_payload\":1048576,\"headers\":true}\r\n"
    "PING\r\n"
    "MSG a.b 1 5\r\nhello\r\n"
    "MSG a.b 12 _INBOX.x.1 0\r\n\r\n"
    "HMSG c 2 18 23\r\nNATS/1.0\r\nK: v\r\n\r\nhello\r\n"
    "HMSG c 2 r.1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"
    "+OK\r\n"
    "pong\r\n"
    "-ERR 'Authorization Violation'\r\n";

TEST(NatsParser, EveryFragmentationGivesTheSameOperations) {
  std::vector<seen> whole;
  parser p0;
  ASSERT_TRUE(feed_all(p0, stream, 0, whole)) << p0.error();
  ASSERT_EQ(whole.size(), 9u);
  EXPECT_EQ(whole[0].kind, op::info);
  EXPECT_EQ(whole[0].payload.front(), '{');
  EXPECT_EQ(whole[1].kind, op::ping);
  EXPECT_EQ(whole[2].kind, op::msg);
  EXPECT_EQ(whole[2].subject, "a.b");
  EXPECT_EQ(whole[2].sid, "1");
  EXPECT_EQ(whole[2].payload, "hello");
  EXPECT_EQ(whole[2].reply, "");
  EXPECT_EQ(whole[3].reply, "_INBOX.x.1");
  EXPECT_EQ(whole[3].payload, "");
  EXPECT_EQ(whole[4].kind, op::hmsg);
  EXPECT_EQ(whole[4].headers, "NATS/1.0\r\nK: v\r\n\r\n");
  EXPECT_EQ(whole[4].payload, "hello");
  EXPECT_EQ(whole[5].reply, "r.1");
  EXPECT_EQ(whole[5].headers, "NATS/1.0 503\r\n\r\n");
  EXPECT_EQ(whole[5].payload, "");
  EXPECT_EQ(whole[6].kind, op::ok);
  EXPECT_EQ(whole[7].kind, op::pong);
  EXPECT_EQ(whole[8].kind, op::err);
  EXPECT_EQ(whole[8].payload, "Authorization Violation");
  for (size_t step = 1; step < stream.size(); ++step) {
    parser p;
    std::vector<seen> got;
    ASSERT_TRUE(feed_all(p, stream, step, got)) << step << ": " << p.error();
    ASSERT_EQ(got.size(), whole.size()) << step;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].kind, whole[i].kind);
      EXPECT_EQ(got[i].subject, whole[i].subject);
      EXPECT_EQ(got[i].headers, whole[i].headers);
      EXPECT_EQ(got[i].payload, whole[i].payload) << step << " op " << i;
    }
    EXPECT_EQ(p.buffered(), 0u);
  }
}

TEST(NatsParser, TruncatedInputWaitsForMore) {
  parser p;
  std::vector<seen> got;
  ASSERT_TRUE(feed_all(p, "MSG a 1 11\r\nhell", 0, got));
  EXPECT_TRUE(got.empty());
  EXPECT_GT(p.buffered(), 0u);
  ASSERT_TRUE(feed_all(p, "o worl", 0, got));
  EXPECT_TRUE(got.empty());
  ASSERT_TRUE(feed_all(p, "d\r", 0, got));
  EXPECT_TRUE(got.empty());
  ASSERT_TRUE(feed_all(p, "\nPI", 0, got));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload,
            "hello worl"
            "d");
}

struct bad_case {
  const char* name;
  std::string input;
  const char* error;
};

TEST(NatsParser, MalformedInputIsAProtocolError) {
  std::vector<bad_case> cases = {
      {"unknown op", "HELLO\r\n", "unknown operation"},
      {"garbage bytes", std::string("\x00\xff\x13\r\n", 6), "unknown operation"},
      {"msg without size", "MSG a 1\r\n", "MSG: wrong number of arguments"},
      {"msg too many args", "MSG a 1 r x 5\r\n", "MSG: wrong number of arguments"},
      {"negative size", "MSG a 1 -5\r\n", "MSG: bad size"},
      {"hex size", "MSG a 1 0x5\r\n", "MSG: bad size"},
      {"overflowing size", "MSG a 1 99999999999999999999999\r\n", "MSG: bad size"},
      {"header beyond total", "HMSG a 1 20 10\r\n", "HMSG: header size exceeds total size"},
      {"header too short", "HMSG a 1 2 10\r\n", "HMSG: header block too short"},
      {"hmsg too few", "HMSG a 1 12\r\n", "HMSG: wrong number of arguments"},
      {"payload without crlf", "MSG a 1 3\r\nabcXY", "payload not followed by CRLF"},
      {"ping with args", "PING now\r\n", "unexpected arguments"},
      {"empty info", "INFO \r\n", "INFO without a body"},
      {"endless control line", std::string(5000, 'M'), "control line too long"},
      {"long control line", "MSG " + std::string(5000, 'a') + " 1 1\r\nx\r\n",
       "control line too long"},
  };
  for (const auto& c : cases) {
    for (size_t step : {size_t{0}, size_t{1}, size_t{3}}) {
      parser p;
      std::vector<seen> got;
      EXPECT_FALSE(feed_all(p, c.input, step, got)) << c.name << " step " << step;
      EXPECT_EQ(p.error(), c.error) << c.name;
      EXPECT_TRUE(got.empty()) << c.name;
      // Once broken, always broken.
      EXPECT_FALSE(p.feed("PING\r\n", [](const server_op&) {}));
    }
  }
}

TEST(NatsParser, OversizedMessagesAreRefusedBeforeTheirPayload) {
  parser p(100);
  std::vector<seen> got;
  EXPECT_TRUE(feed_all(p, "MSG a 1 100\r\n" + std::string(100, 'x') + "\r\n", 0, got));
  ASSERT_EQ(got.size(), 1u);
  // The size alone is refused: nothing of the payload needs to arrive (or be buffered).
  EXPECT_FALSE(feed_all(p, "MSG a 1 101\r\n", 0, got));
  EXPECT_EQ(p.error(), "message exceeds max_payload");
  parser q(100);
  EXPECT_FALSE(feed_all(q, "HMSG a 1 12 101\r\n", 0, got));
  parser big;
  big.set_max_payload(10);
  EXPECT_FALSE(feed_all(big, "MSG a 1 11\r\n", 0, got));
}

// A big message split across feeds is copied into the parser's buffer; once it is complete that
// memory is given back (a connection's peak does not stay pinned), small ones keep their buffer.
TEST(NatsParser, GivesBackTheBufferOfABigSplitMessage) {
  parser p;
  std::vector<seen> got;
  std::string big = "MSG a 1 200000\r\n" + std::string(200000, 'x') + "\r\n";
  ASSERT_TRUE(feed_all(p, big, 4096, got));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload.size(), 200000u);
  EXPECT_EQ(p.buffered(), 0u);
  EXPECT_LE(p.buffer_capacity(), parser::partial_keep_bytes);
  ASSERT_TRUE(feed_all(p, "MSG a 1 5\r\nhello\r\n", 3, got));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].payload, "hello");
}

TEST(NatsParser, InfoMayBeLargerThanAControlLine) {
  std::string json = "{\"connect_urls\":[\"" + std::string(10000, 'h') + "\"]}";
  parser p;
  std::vector<seen> got;
  ASSERT_TRUE(feed_all(p, "INFO " + json + "\r\n", 7, got)) << p.error();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, json);
  parser q;
  EXPECT_FALSE(feed_all(q, "INFO {" + std::string(70000, ' '), 4096, got));
  EXPECT_EQ(q.error(), "control line too long");
}

TEST(NatsParser, ToleratesTabsCaseAndBareNewlines) {
  parser p;
  std::vector<seen> got;
  ASSERT_TRUE(feed_all(p, "msg\ta.b\t 3  2\r\nhi\r\nPing\n+ok\r\n", 0, got)) << p.error();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].subject, "a.b");
  EXPECT_EQ(got[0].sid, "3");
  EXPECT_EQ(got[0].payload, "hi");
  EXPECT_EQ(got[1].kind, op::ping);
}

TEST(NatsHeaders, ParsesStatusAndFields) {
  auto h = header_block::parse("NATS/1.0 503 No Responders\r\nK: V\r\nk: second\r\n\r\n");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 503);
  EXPECT_EQ(h->description, "No Responders");
  EXPECT_EQ(h->get("k"), "V");
  EXPECT_EQ(h->get("missing"), "");
  EXPECT_EQ(h->fields.size(), 2u);
  auto plain = header_block::parse("NATS/1.0\r\nNats-Msg-Id: abc\r\n\r\n");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 0);
  EXPECT_EQ(plain->get("NATS-MSG-ID"), "abc");
  auto hb = header_block::parse("NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 5\r\n\r\n");
  ASSERT_TRUE(hb);
  EXPECT_EQ(hb->status, 100);
  EXPECT_EQ(hb->get("Nats-Last-Consumer"), "5");
  auto bare = header_block::parse("NATS/1.0 404\r\n\r\n");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->status, 404);
  EXPECT_EQ(bare->description, "");
}

TEST(NatsHeaders, RefusesMalformedBlocks) {
  for (std::string_view raw : {"", "NATS/1.0", "NATS/1.0\r\n", "HTTP/1.1\r\n\r\n",
                               "NATS/1.0 50\r\n\r\n", "NATS/1.0 5x3\r\n\r\n", "NATS/1.0503\r\n\r\n",
                               "NATS/1.0\r\nnocolon\r\n\r\n", "NATS/1.0\r\n: v\r\n\r\n",
                               "NATS/1.0\r\nbad key: v\r\n\r\n", "NATS/1.0\r\n\r\nextra\r\n\r\n"}) {
    EXPECT_FALSE(header_block::parse(raw)) << raw;
  }
}

TEST(NatsWriters, WriteTheWireFormat) {
  std::string out;
  write_pub(out, "a.b", "", "hello");
  write_pub(out, "a.b", "_INBOX.1", "");
  write_sub(out, "a.*", "", 3);
  write_sub(out, "a.>", "q", 4);
  write_unsub(out, 3);
  write_unsub(out, 4, 10);
  write_ping(out);
  write_pong(out);
  EXPECT_EQ(out,
            "PUB a.b 5\r\nhello\r\nPUB a.b _INBOX.1 0\r\n\r\nSUB a.* 3\r\nSUB a.> q 4\r\n"
            "UNSUB 3\r\nUNSUB 4 10\r\nPING\r\nPONG\r\n");
  std::string h = make_headers({{"Nats-Msg-Id", "m1"}, {"Rc-Seq", "2"}});
  EXPECT_EQ(h, "NATS/1.0\r\nNats-Msg-Id: m1\r\nRc-Seq: 2\r\n\r\n");
  out.clear();
  write_hpub(out, "s", "r", h, "body");
  EXPECT_EQ(out, "HPUB s r 40 44\r\n" + h + "body\r\n");
  // What the client writes, the server-side grammar reads back (HPUB -> HMSG shape).
  parser p;
  std::vector<seen> got;
  std::string msg = "HMSG s 1 r 40 44\r\n" + h + "body\r\n";
  ASSERT_TRUE(feed_all(p, msg, 0, got));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].headers, h);
  EXPECT_EQ(got[0].payload, "body");
}

TEST(NatsWriters, ConnectEscapesCredentials) {
  std::string out;
  connect_options o;
  o.name = "node-1/0";
  o.auth_token = "t\"ok\\en";
  write_connect(out, o);
  EXPECT_EQ(out.substr(0, 8), "CONNECT ");
  EXPECT_EQ(out.substr(out.size() - 2), "\r\n");
  EXPECT_EQ(out.find('\n'), out.size() - 1);
  EXPECT_NE(out.find("\"auth_token\":\"t\\\"ok\\\\en\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"headers\":true"), std::string::npos);
  EXPECT_NE(out.find("\"no_responders\":true"), std::string::npos);
  EXPECT_NE(out.find("\"verbose\":false"), std::string::npos);
  EXPECT_EQ(out.find("\"user\""), std::string::npos);
  out.clear();
  o.auth_token = {};
  o.user = "u";
  o.pass = "p\r\nPUB x 1";
  write_connect(out, o);
  EXPECT_EQ(out.find('\r'), out.size() - 2) << "credentials cannot inject operations";
}

TEST(NatsSubjects, Validity) {
  for (std::string_view s : {"a", "a.b.c", "rc.t0.chat-1", "_INBOX.n.0.ab12.7", "a:b", "é.x"})
    EXPECT_TRUE(valid_subject(s, false)) << s;
  for (std::string_view s :
       {"", ".", "a.", ".a", "a..b", "a b", "a\tb", "a\r\n", "a.*", "a.>", "*", ">"})
    EXPECT_FALSE(valid_subject(s, false)) << s;
  for (std::string_view s : {"a.*", "a.>", "*", ">", "*.b.>", "a*b"})
    EXPECT_TRUE(valid_subject(s, true)) << s;
  for (std::string_view s : {"a.>.b", ">.a", "a..*", "a.* "})
    EXPECT_FALSE(valid_subject(s, true)) << s;
  EXPECT_FALSE(valid_subject(std::string(subject_bytes_max + 1, 'a'), true));
}

TEST(NatsInfo, ReadsWhatTheClientUses) {
  auto i =
      parse_info(R"({"server_id":"NABC","version":"2.9.10","max_payload":1048576,"headers":true,)"
                 R"("auth_required":true,"connect_urls":["10.0.0.1:4222","10.0.0.2:4222"]})");
  ASSERT_TRUE(i);
  EXPECT_EQ(i->server_id, "NABC");
  EXPECT_EQ(i->max_payload, 1048576u);
  EXPECT_TRUE(i->headers);
  EXPECT_TRUE(i->auth_required);
  EXPECT_FALSE(i->tls_required);
  EXPECT_EQ(i->connect_urls.size(), 2u);
  EXPECT_FALSE(parse_info("not json"));
  EXPECT_FALSE(parse_info("[1]"));
  auto odd = parse_info(R"({"max_payload":-5,"headers":"yes"})");
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->max_payload, 0u);
  EXPECT_FALSE(odd->headers);
}

TEST(NatsUrl, Parses) {
  auto u = parse_url("nats://h1:4223");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "h1");
  EXPECT_EQ(u->port, 4223);
  u = parse_url("nats://10.0.0.1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->port, 4222);
  u = parse_url("[::1]:5000");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 5000);
  u = parse_url("nats://alice:s3cret@host:1/");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->user, "alice");
  EXPECT_EQ(u->pass, "s3cret");
  u = parse_url("NATS://tok@host");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->token, "tok");
  std::string why;
  EXPECT_FALSE(parse_url("tls://h:1", &why));
  EXPECT_NE(why.find("nats://"), std::string::npos);
  for (std::string_view bad :
       {"", "nats://", "h:0", "h:65536", "h:x", "h:", "[::1", "[::1]x", "nats://:4222", "a b:1"})
    EXPECT_FALSE(parse_url(bad)) << bad;
}

}  // namespace
}  // namespace rc::nats
