#include "server/access_log.h"

#include <gtest/gtest.h>

#include <string>

#include "proto/json_reader.h"

namespace rc::server {
namespace {

std::string line_of(const access_record& r) {
  byte_buffer b;
  encode_access_line(b, r);
  return std::string(b.view());
}

access_record sample() {
  access_record r;
  r.wall_ms = 1764858333123;  // 2025-12-04T14:25:33.123Z
  r.request_id = "f327b1b500000001";
  r.client = "127.0.0.1:55350";
  r.method = "GET";
  r.route = "/healthz";
  r.path = "/healthz";
  r.protocol = "http";
  r.status = 200;
  r.bytes_in = 86;
  r.bytes_out = 155;
  r.duration_us = 30;
  return r;
}

TEST(AccessLine, ExactFormat) {
  EXPECT_EQ(line_of(sample()),
            R"({"time":"2025-12-04T14:25:33.123Z","request_id":"f327b1b500000001",)"
            R"("client":"127.0.0.1:55350","method":"GET","route":"/healthz","path":"/healthz",)"
            R"("protocol":"http","status":200,"bytes_in":86,"bytes_out":155,"duration_ms":0.030,)"
            R"("close_reason":"complete"})"
            "\n");
}

TEST(AccessLine, OptionalFieldsAndExactMilliseconds) {
  access_record r = sample();
  r.key = "team-a";
  r.ws_id = "req-1";
  r.protocol = "sse";
  r.duration_us = 12'345'678;
  r.first_byte_us = 0;
  r.first_token_us = 1'000;
  r.reason = close_reason::slow_consumer;
  std::string line = line_of(r);
  EXPECT_NE(line.find(R"("key":"team-a")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("ws_id":"req-1")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("duration_ms":12345.678,"first_byte_ms":0.000,"first_token_ms":1.000)"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find(R"("close_reason":"slow_consumer")"), std::string::npos) << line;
  // Absent: no key, no method, no path.
  r = sample();
  r.method = {};
  r.path = {};
  line = line_of(r);
  EXPECT_EQ(line.find("\"key\""), std::string::npos);
  EXPECT_EQ(line.find("\"method\""), std::string::npos);
  EXPECT_EQ(line.find("\"path\""), std::string::npos);
}

TEST(AccessLine, Rfc3339) {
  char t[24];
  format_rfc3339_ms(0, t);
  EXPECT_EQ(std::string_view(t, 24), "1970-01-01T00:00:00.000Z");
  format_rfc3339_ms(951782400007, t);  // a leap day
  EXPECT_EQ(std::string_view(t, 24), "2000-02-29T00:00:00.007Z");
  format_rfc3339_ms(4102444799999, t);
  EXPECT_EQ(std::string_view(t, 24), "2099-12-31T23:59:59.999Z");
}

TEST(AccessLine, HostileValuesStayOneValidJsonLine) {
  // Quotes, backslashes, control bytes (newlines among them), invalid UTF-8 and a cut multi-byte
  // sequence: the line is still one JSON object on one line, and reads back as U+FFFD.
  std::string id = "a\"b\\c\n\r\x01\x7f";
  std::string path = "/x\xff\xfe\"\n/\xe2\x82";  // \xe2\x82: a truncated euro sign
  std::string key = "k\x00y\x1b[31m";
  key[1] = '\0';
  access_record r = sample();
  r.request_id = id;
  r.path = path;
  r.key = key;
  r.ws_id = "\xc0\xaf";  // an overlong encoding of '/'
  std::string line = line_of(r);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
  EXPECT_EQ(line.find('\r'), std::string::npos);
  json::parser p;
  auto res = p.parse(std::string_view(line).substr(0, line.size() - 1));
  ASSERT_TRUE(res.ok()) << res.message << "\n" << line;
  EXPECT_EQ(res.root.find("request_id").get_string(), id);
  EXPECT_EQ(res.root.find("path").get_string(), "/x\xef\xbf\xbd\xef\xbf\xbd\"\n/\xef\xbf\xbd");
  EXPECT_EQ(res.root.find("key").get_string(), key);
  EXPECT_EQ(res.root.find("ws_id").get_string(), "\xef\xbf\xbd\xef\xbf\xbd");
}

TEST(AccessLine, WorstCaseFitsInOneAtomicPipeWrite) {
  // Every string at (beyond) its bound, every byte needing a 6-byte escape.
  std::string ctl(10'000, '\x01');
  access_record r = sample();
  r.request_id = r.ws_id = r.client = r.key = r.method = r.route = r.path = r.protocol = ctl;
  r.status = -2147483647;
  r.bytes_in = r.bytes_out = UINT64_MAX;
  r.duration_us = UINT64_MAX;
  r.first_byte_us = r.first_token_us = INT64_MAX;
  std::string line = line_of(r);
  EXPECT_LE(line.size(), access_line_bytes_max);
  json::parser p;
  auto res = p.parse(std::string_view(line).substr(0, line.size() - 1));
  ASSERT_TRUE(res.ok()) << res.message;
  EXPECT_EQ(res.root.find("path").get_string().size(), access_path_bytes_max);
}

}  // namespace
}  // namespace rc::server
