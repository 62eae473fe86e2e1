#include <gtest/gtest.h>

#include <string>

#include "guarded_input.h"
#include "proto/jsonrpc.h"

namespace rc::jsonrpc {
namespace {

struct parsed {
  bool ok = false;
  message m;
  std::string error;
};

parsed parse(parser& p, std::string_view text) {
  parsed r;
  r.ok = p.parse(text, r.m, r.error);
  return r;
}

TEST(JsonrpcParser, Request) {
  parser p;
  parsed r = parse(p, R"({"jsonrpc":"2.0","id":7,"method":"generate","params":{"a":[1, 2]}})");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.m.type, kind::request);
  EXPECT_EQ(r.m.id, "7");
  EXPECT_EQ(r.m.id_number, 7u);
  EXPECT_EQ(r.m.method, "generate");
  EXPECT_EQ(r.m.params, R"({"a":[1, 2]})");  // raw, not re-encoded
}

TEST(JsonrpcParser, NotificationWithoutJsonrpcMemberAndEscapedMethod) {
  parser p;
  parsed r = parse(p, R"({"method":"generate\/delta","params":[1]})");  // codex omits jsonrpc
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.m.type, kind::notification);
  EXPECT_EQ(r.m.method, "generate/delta");
  EXPECT_EQ(r.m.id, "");
  EXPECT_FALSE(r.m.id_number);
  EXPECT_EQ(r.m.params, "[1]");
  r = parse(p, R"({"method":"ping"})");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.m.params, "");
}

TEST(JsonrpcParser, ResponsesAndIds) {
  parser p;
  parsed r = parse(p, R"({"jsonrpc":"2.0","id":"a\"b","result":null})");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.m.type, kind::response);
  EXPECT_EQ(r.m.id, R"("a\"b")");
  EXPECT_FALSE(r.m.id_number);
  EXPECT_EQ(r.m.result, "null");
  r = parse(p, R"({"id":18446744073709551615,"result":{"x":1}})");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.m.id_number, 18446744073709551615u);
  EXPECT_EQ(r.m.result, R"({"x":1})");
  r = parse(p, R"({"id":-3,"result":1})");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.m.id, "-3");
  EXPECT_FALSE(r.m.id_number);
}

TEST(JsonrpcParser, ErrorResponse) {
  parser p;
  parsed r = parse(p, R"({"jsonrpc":"2.0","id":3,"error":{"code":-32001,"message":"busy \u00e9",)"
                      R"("data":{"retry_after_ms":250}}})");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.m.type, kind::error);
  EXPECT_EQ(r.m.id_number, 3u);
  EXPECT_EQ(r.m.error_code, -32001);
  EXPECT_EQ(r.m.error_message, "busy \xc3\xa9");  // unescaped
  EXPECT_EQ(r.m.error_data, R"({"retry_after_ms":250})");
  r = parse(p, R"({"id":null,"error":{"code":-32700}})");  // a parse error has no id
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.m.id, "null");
  EXPECT_EQ(r.m.error_message, "");
  EXPECT_EQ(r.m.error_data, "");
}

TEST(JsonrpcParser, ViewsOutliveTheInput) {
  parser p;
  message m;
  std::string err;
  {
    std::string text = R"({"id":1,"method":"x","params":{"k":"v"}})";
    ASSERT_TRUE(p.parse(text, m, err));
    text.assign(text.size(), '#');
  }
  EXPECT_EQ(m.method, "x");
  EXPECT_EQ(m.params, R"({"k":"v"})");
}

TEST(JsonrpcParser, RejectsWhatIsNotJsonRpc) {
  parser p;
  for (std::string_view bad : {
           "",
           "garbage",
           "[1,2]",
           "\"x\"",
           "null",
           "{",
           R"({"id":1})",  // neither
           R"({"jsonrpc":"1.0","method":"x"})",
           R"({"jsonrpc":2,"method":"x"})",
           R"({"method":3})",
           R"({"method":"x","params":3})",
           R"({"method":"x","params":"s"})",
           R"({"method":"x","id":1.5})",
           R"({"method":"x","id":true})",
           R"({"method":"x","id":{}})",
           R"({"method":"x","id":null})",
           R"({"method":"x","result":1})",
           R"({"id":1,"result":1,"error":{"code":1}})",
           R"({"result":1})",
           R"({"id":null,"result":1})",
           R"({"id":1,"error":"bad"})",
           R"({"id":1,"error":{"message":"no code"}})",
           R"({"id":1,"error":{"code":1.5}})",
           R"({"id":1,"error":{"code":1,"message":7}})",
           R"({"id":1,"result":1} trailing)",
           "{\"id\":1,\"result\":\"\xff\"}",
       }) {
    parsed r = parse(p, bad);
    EXPECT_FALSE(r.ok) << bad;
    EXPECT_FALSE(r.error.empty()) << bad;
  }
}

TEST(JsonrpcParser, HostileNestingIsRejectedNotOverflowed) {
  parser p;
  std::string deep =
      R"({"id":1,"result":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  parsed r = parse(p, deep);
  EXPECT_FALSE(r.ok);
  std::string fine = R"({"id":1,"result":)" + std::string(parser::depth_max - 2, '[') +
                     std::string(parser::depth_max - 2, ']') + "}";
  EXPECT_TRUE(parse(p, fine).ok) << parse(p, fine).error;
}

TEST(JsonrpcParser, TruncatedMessagesFailAtEveryLength) {
  parser p;
  std::string whole =
      R"({"jsonrpc":"2.0","id":9,"error":{"code":-32602,"message":"m","data":{"param":"n"}}})";
  test::guarded_input guard;
  for (size_t n = 0; n < whole.size(); ++n) {
    EXPECT_FALSE(parse(p, guard.place(whole.substr(0, n))).ok) << n;
  }
  EXPECT_TRUE(parse(p, guard.place(whole)).ok);
}

TEST(JsonrpcParser, DuplicateMembersLastWins) {
  parser p;
  parsed r = parse(p, R"({"id":1,"id":2,"result":"a","result":"b"})");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.m.id, "2");
  EXPECT_EQ(r.m.id_number, 2u);
  EXPECT_EQ(r.m.result, R"("b")");
}

TEST(JsonrpcWriters, CompactAndParseable) {
  std::string out;
  write_request(out, 5, "generate", R"({"a":1})");
  EXPECT_EQ(out, R"({"jsonrpc":"2.0","id":5,"method":"generate","params":{"a":1}})");
  out.clear();
  write_notification(out, "initialized", "", false);
  EXPECT_EQ(out, R"({"method":"initialized","params":{}})");
  out.clear();
  write_result(out, R"("x")", "");
  EXPECT_EQ(out, R"({"jsonrpc":"2.0","id":"x","result":null})");
  out.clear();
  write_error(out, "3", -32602, "bad \"n\"\n", R"({"param":"n"})");
  EXPECT_EQ(out, R"({"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"bad \"n\"\n",)"
                 R"("data":{"param":"n"}}})");
  parser p;
  parsed r = parse(p, out);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.m.error_message, "bad \"n\"\n");
  out.clear();
  write_error(out, "", -32700, "x", {}, false);
  EXPECT_EQ(out, R"({"id":null,"error":{"code":-32700,"message":"x"}})");
}

}  // namespace
}  // namespace rc::jsonrpc
