// The ringcast dialect's generate call: notifications and results into typed events.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "proto/json_reader.h"
#include "server/worker_dialect.h"
#include "worker_test_context.h"

namespace rc::server {
namespace {

using test::describe;
using test::recording_context;
using lines = std::vector<std::string>;

struct fixture {
  explicit fixture(uint32_t n = 1) {
    dialect = make_ringcast_dialect(std::make_shared<upstream_config>());
    req.model = "m";
    req.choices = n;
    req.conversation.push_back({openai::message_role::user, "hi"});
    call = dialect->make_call({.request = &req, .upstream_model = "small", .request_id = "r1"});
    call->start(ctx);
  }
  void feed(std::string_view json) { ctx.feed(*call, json); }
  lines events() const { return describe(ctx.events); }

  std::unique_ptr<worker_dialect> dialect;
  generation_request req;
  std::unique_ptr<worker_call> call;
  recording_context ctx;
};

TEST(WorkerRingcastGenerate, StartSendsGenerateAndRoutesById) {
  fixture f;
  ASSERT_EQ(f.ctx.sent.size(), 1u);
  EXPECT_EQ(f.ctx.expected, std::vector<uint64_t>{7});
  EXPECT_EQ(f.ctx.keys, lines{"7"});
  EXPECT_EQ(f.ctx.sent[0].rfind(R"({"jsonrpc":"2.0","id":7,"method":"generate","params":{)", 0), 0u)
      << f.ctx.sent[0];
  EXPECT_FALSE(f.ctx.finished);
}

TEST(WorkerRingcastGenerate, StreamedTextThenResult) {
  fixture f;
  f.feed(
      R"({"jsonrpc":"2.0","method":"generate/delta","params":{"id":7,"choice":0,"text":"Hel"}})");
  f.feed(R"({"jsonrpc":"2.0","method":"generate/delta","params":{"id":7,"choice":0,"text":"lo"}})");
  f.feed(
      R"({"jsonrpc":"2.0","method":"generate/done","params":{"id":7,"choice":0,"finish_reason":"length"}})");
  EXPECT_FALSE(f.ctx.finished);
  // The result's text repeats what streamed: not emitted again.
  f.feed(R"({"jsonrpc":"2.0","id":7,"result":{"usage":{"prompt_tokens":3,"completion_tokens":2},)"
         R"("choices":[{"index":0,"finish_reason":"length","text":"Hello"}]}})");
  EXPECT_EQ(f.events(), (lines{"delta 0 Hel", "delta 0 lo", "done 0 length", "usage 3 2"}));
  EXPECT_TRUE(f.ctx.finished);
}

TEST(WorkerRingcastGenerate, NonStreamingWorkerAnswersInTheResult) {
  fixture f(2);
  f.feed(R"({"jsonrpc":"2.0","id":7,"result":{"usage":{"prompt_tokens":5,"completion_tokens":9},)"
         R"("choices":[{"index":1,"text":"b"},{"index":0,"text":"a","finish_reason":"tool_calls",)"
         R"("tool_calls":[{"id":"call_x","name":"get_weather","arguments":"{\"city\":\"P\"}"},)"
         R"({"name":"f2","arguments":"{}"}]}]}})");
  EXPECT_EQ(f.events(), (lines{"delta 0 a", "tool 0 #0 call_x get_weather {\"city\":\"P\"}",
                               "tool 0 #1 call_7_0_1 f2 {}", "done 0 tool_calls", "delta 1 b",
                               "done 1 stop", "usage 5 9"}));
  EXPECT_TRUE(f.ctx.finished);
}

TEST(WorkerRingcastGenerate, ResultWithoutChoicesEndsEveryChoice) {
  fixture f(2);
  f.feed(R"({"method":"generate/delta","params":{"id":7,"choice":1,"text":"x"}})");
  f.feed(R"({"id":7,"result":{}})");
  EXPECT_EQ(f.events(), (lines{"delta 1 x", "done 0 stop", "done 1 stop", "usage 0 0"}));
}

TEST(WorkerRingcastGenerate, StreamedToolCalls) {
  fixture f;
  f.feed(
      R"({"method":"generate/tool_call","params":{"id":7,"choice":0,"index":0,"call_id":"call_1","name":"get_weather","arguments":"{\"ci"}})");
  f.feed(
      R"({"method":"generate/tool_call","params":{"id":7,"choice":0,"index":0,"arguments":"ty\":1}"}})");
  f.feed(
      R"({"method":"generate/tool_call","params":{"id":7,"choice":0,"index":1,"name":"other"}})");
  f.feed(R"({"id":7,"result":{"usage":{"prompt_tokens":1,"completion_tokens":1}}})");
  // No done: the finish reason follows from the calls.
  EXPECT_EQ(f.events(), (lines{"tool 0 #0 call_1 get_weather {\"ci", "tool 0 #0   ty\":1}",
                               "tool 0 #1 call_7_0_1 other ", "done 0 tool_calls", "usage 1 1"}));
}

TEST(WorkerRingcastGenerate, ErrorAnswerIsMappedAndLast) {
  fixture f;
  f.feed(R"({"method":"generate/delta","params":{"id":7,"choice":0,"text":"a"}})");
  f.feed(
      R"({"jsonrpc":"2.0","id":7,"error":{"code":-32001,"message":"busy","data":{"retry_after_ms":50}}})");
  EXPECT_EQ(f.events(), (lines{"delta 0 a", "error 503 worker_overloaded"}));
  EXPECT_EQ(f.ctx.events.back().base.retry_after_ms, 50u);
  EXPECT_EQ(f.ctx.events.back().error_message, "busy");
  EXPECT_TRUE(f.ctx.finished);
  f.feed(R"({"id":7,"result":{}})");  // nothing after the end
  EXPECT_EQ(f.ctx.events.size(), 2u);
}

TEST(WorkerRingcastGenerate, CancelSendsCancelAndEmitsNothingMore) {
  fixture f;
  f.feed(R"({"method":"generate/delta","params":{"id":7,"choice":0,"text":"a"}})");
  f.call->cancel(f.ctx);
  ASSERT_EQ(f.ctx.sent.size(), 2u);
  EXPECT_EQ(f.ctx.sent[1], R"({"jsonrpc":"2.0","method":"cancel","params":{"id":7}})");
  f.feed(R"({"method":"generate/delta","params":{"id":7,"choice":0,"text":"b"}})");
  EXPECT_FALSE(f.ctx.finished);
  f.feed(R"({"id":7,"error":{"code":-32003,"message":"cancelled"}})");
  EXPECT_TRUE(f.ctx.finished);
  EXPECT_EQ(f.events(), lines{"delta 0 a"});
  f.call->cancel(f.ctx);  // a second cancel sends nothing
  EXPECT_EQ(f.ctx.sent.size(), 2u);
}

TEST(WorkerRingcastGenerate, UnknownNotificationsAreIgnored) {
  fixture f;
  f.feed(R"({"method":"generate/progress","params":{"id":7,"percent":"x"}})");
  EXPECT_TRUE(f.ctx.events.empty());
  EXPECT_FALSE(f.ctx.finished);
}

// Each of these ends the call with worker_protocol_error (and a cancel to the worker).
TEST(WorkerRingcastGenerate, InvalidWorkerMessagesAreProtocolErrors) {
  for (
      std::string_view bad : {
          R"({"method":"generate/delta","params":{"id":7,"choice":2,"text":"a"}})",
          R"({"method":"generate/delta","params":{"id":7,"choice":-1,"text":"a"}})",
          R"({"method":"generate/delta","params":{"id":7,"choice":"0","text":"a"}})",
          R"({"method":"generate/delta","params":{"id":7,"text":"a"}})",
          R"({"method":"generate/delta","params":{"id":7,"choice":0,"text":5}})",
          R"({"method":"generate/delta","params":{"id":7,"choice":0}})",
          R"({"method":"generate/delta","params":[7]})",
          R"({"method":"generate/delta"})",
          R"({"method":"generate/done","params":{"id":7,"choice":0,"finish_reason":"odd"}})",
          R"({"method":"generate/done","params":{"id":7,"choice":0}})",
          R"({"method":"generate/tool_call","params":{"id":7,"choice":0,"index":1,"name":"f"}})",
          R"({"method":"generate/tool_call","params":{"id":7,"choice":0,"index":0}})",
          R"({"method":"generate/tool_call","params":{"id":7,"choice":0,"index":0,"name":""}})",
          R"({"method":"generate/tool_call","params":{"id":7,"choice":0,"index":0,"name":"f","arguments":{}}})",
          R"({"method":"generate/tool_call","params":{"id":7,"choice":0,"index":0,"name":"f","call_id":1}})",
          R"({"id":7,"result":[]})",
          R"({"id":7,"result":null})",
          R"({"id":7,"result":{"usage":{"prompt_tokens":-1,"completion_tokens":2}}})",
          R"({"id":7,"result":{"usage":{"prompt_tokens":1.5}}})",
          R"({"id":7,"result":{"usage":[]}})",
          R"({"id":7,"result":{"choices":{}}})",
          R"({"id":7,"result":{"choices":[{"index":1}]}})",
          R"({"id":7,"result":{"choices":[{"index":0},{"index":0}]}})",
          R"({"id":7,"result":{"choices":[{"text":"no index"}]}})",
          R"({"id":7,"result":{"choices":[{"index":0,"text":3}]}})",
          R"({"id":7,"result":{"choices":[{"index":0,"finish_reason":"odd"}]}})",
          R"({"id":7,"result":{"choices":[{"index":0,"tool_calls":[{"arguments":"{}"}]}]}})",
          R"({"id":7,"result":{"choices":[{"index":0,"tool_calls":{}}]}})",
          R"({"id":7,"method":"generate/approve","params":{"id":7}})",
      }) {
    fixture f;
    f.feed(bad);
    EXPECT_EQ(f.events(), lines{"error 502 worker_protocol_error"}) << bad;
    EXPECT_TRUE(f.ctx.finished) << bad;
    ASSERT_EQ(f.ctx.sent.size(), 2u) << bad;
    EXPECT_EQ(f.ctx.sent[1], R"({"jsonrpc":"2.0","method":"cancel","params":{"id":7}})");
  }
}

TEST(WorkerRingcastGenerate, NothingForAChoiceAfterItsDone) {
  fixture f;
  f.feed(R"({"method":"generate/done","params":{"id":7,"choice":0,"finish_reason":"stop"}})");
  f.feed(R"({"method":"generate/delta","params":{"id":7,"choice":0,"text":"late"}})");
  EXPECT_EQ(f.events(), (lines{"done 0 stop", "error 502 worker_protocol_error"}));
  fixture g;
  g.feed(R"({"method":"generate/done","params":{"id":7,"choice":0,"finish_reason":"stop"}})");
  // A result's text for a choice already done (without deltas) is not emitted after its done.
  g.feed(R"({"id":7,"result":{"choices":[{"index":0,"text":"late"}]}})");
  EXPECT_EQ(g.events(), (lines{"done 0 stop", "usage 0 0"}));
}

TEST(WorkerRingcastGenerate, EmptyDeltaIsNotEmitted) {
  fixture f;
  f.feed(R"({"method":"generate/delta","params":{"id":7,"choice":0,"text":""}})");
  f.feed(R"({"id":7,"result":{"choices":[{"index":0,"text":"ignored: it streamed"}]}})");
  EXPECT_EQ(f.events(), (lines{"done 0 stop", "usage 0 0"}));
}

}  // namespace
}  // namespace rc::server

namespace rc::server {
namespace {

// The examples of docs/schemas/workers/<name>.schema.json, re-encoded compactly.
std::vector<std::string> schema_examples(std::string_view name) {
  std::string path = std::string(RINGCAST_SOURCE_DIR) + "/docs/schemas/workers/" +
                     std::string(name) + ".schema.json";
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  json::parser p;
  json::parse_result r = p.parse(text);
  std::vector<std::string> out;
  if (!r.ok() || !r.root.find("examples")) return out;
  for (json::value e : r.root.find("examples").elements()) out.push_back(e.to_json());
  return out;
}

// What the schemas document as valid, the decoder takes without a protocol error.
TEST(WorkerRingcastGenerate, AcceptsEveryExampleOfTheSchemas) {
  for (std::string_view name : {"generate.delta", "generate.tool_call", "generate.done"}) {
    std::vector<std::string> examples = schema_examples(name);
    ASSERT_FALSE(examples.empty()) << name;
    fixture f(2);
    for (const std::string& e : examples) f.feed(e);
    for (const std::string& line : f.events())
      EXPECT_EQ(line.rfind("error", 0), std::string::npos) << name;
    EXPECT_FALSE(f.ctx.finished) << name;
  }
  std::vector<std::string> results = schema_examples("generate.result");
  ASSERT_FALSE(results.empty());
  for (const std::string& e : results) {
    fixture f(2);
    f.feed(e);
    ASSERT_FALSE(f.events().empty()) << e;
    EXPECT_EQ(f.events().back().rfind("usage", 0), 0u) << e;
    EXPECT_TRUE(f.ctx.finished) << e;
  }
}

}  // namespace
}  // namespace rc::server
