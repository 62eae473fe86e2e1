// The ringcast dialect: handshake, ping, routing, the generate params, embed.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "proto/json_reader.h"
#include "server/worker_dialect.h"
#include "worker_test_context.h"

namespace rc::server {
namespace {

using test::recording_context;

std::unique_ptr<worker_dialect> dialect() {
  return make_ringcast_dialect(std::make_shared<upstream_config>());
}

TEST(WorkerRingcastDialect, Basics) {
  auto d = dialect();
  EXPECT_EQ(d->framing(), jsonrpc::framing::lines);
  EXPECT_TRUE(d->with_jsonrpc_member());
  auto cfg = std::make_shared<upstream_config>();
  cfg->framing = "content-length";
  EXPECT_EQ(make_ringcast_dialect(cfg)->framing(), jsonrpc::framing::content_length);
  std::string ping;
  d->write_ping(ping, 12);
  EXPECT_EQ(ping, R"({"jsonrpc":"2.0","id":12,"method":"ping","params":{}})");
  std::string answer;
  jsonrpc::parser p;
  jsonrpc::message m;
  std::string err;
  ASSERT_TRUE(p.parse(R"({"jsonrpc":"2.0","id":"q","method":"sampling/ask","params":{}})", m, err));
  d->answer_unrouted_request(m, answer);
  EXPECT_EQ(answer, R"({"jsonrpc":"2.0","id":"q","error":{"code":-32601,)"
                    R"("message":"ringcast serves no method sampling/ask to workers"}})");
}

TEST(WorkerRingcastDialect, RoutingKeyIsParamsIdAsText) {
  auto d = dialect();
  jsonrpc::parser p;
  std::string scratch, err;
  auto key = [&](std::string_view json) {
    jsonrpc::message m;
    EXPECT_TRUE(p.parse(json, m, err)) << err;
    return std::string(d->routing_key(m, scratch));
  };
  EXPECT_EQ(key(R"({"method":"generate/delta","params":{"choice":0, "id" : 42 ,"text":"x"}})"),
            "42");
  EXPECT_EQ(key(R"({"method":"generate/delta","params":{"text":"{\"id\":5}","id":7}})"), "7");
  EXPECT_EQ(key(R"({"method":"generate/delta","params":{"id":"7"}})"), "");
  EXPECT_EQ(key(R"({"method":"generate/delta","params":{"id":-7}})"), "");
  EXPECT_EQ(key(R"({"method":"generate/delta","params":{"id":7.5}})"), "");
  EXPECT_EQ(key(R"({"method":"generate/delta","params":{"choice":0}})"), "");
  EXPECT_EQ(key(R"({"method":"log","params":[1]})"), "");
  EXPECT_EQ(key(R"({"method":"log"})"), "");
  EXPECT_EQ(key(R"({"id":1,"method":"generate/delta","params":{"id":7}})"), "");  // a request
}

TEST(WorkerRingcastDialect, HandshakeSucceeds) {
  auto d = dialect();
  auto call = d->make_handshake("local-agent", 3);
  recording_context ctx;
  call->start(ctx);
  ASSERT_EQ(ctx.sent.size(), 1u);
  EXPECT_EQ(ctx.sent[0],
            R"({"jsonrpc":"2.0","id":7,"method":"initialize","params":{"protocol_version":1,)"
            R"("client":{"name":"ringcast","version":")" RINGCAST_TEST_VERSION R"("},)"
            R"("worker":{"upstream":"local-agent","index":3},)"
            R"("capabilities":{"cancel":true,"ping":true}}})");
  EXPECT_EQ(ctx.expected, std::vector<uint64_t>{7});
  ctx.feed(*call, R"({"jsonrpc":"2.0","id":7,"result":{"protocol_version":1,)"
                  R"("server":{"name":"w","version":"1"},"models":["small","big"],)"
                  R"("capabilities":{"embeddings":false}}})");
  EXPECT_EQ(ctx.handshakes, 1);
  EXPECT_TRUE(ctx.handshake_ok);
  EXPECT_EQ(ctx.models, (std::vector<std::string>{"small", "big"}));
  ASSERT_EQ(ctx.sent.size(), 2u);
  EXPECT_EQ(ctx.sent[1], R"({"jsonrpc":"2.0","method":"initialized","params":{}})");
  EXPECT_TRUE(ctx.finished);
}

TEST(WorkerRingcastDialect, HandshakeWithoutModels) {
  auto call = dialect()->make_handshake("u", 0);
  recording_context ctx;
  call->start(ctx);
  ctx.feed(*call, R"({"jsonrpc":"2.0","id":7,"result":{"protocol_version":1}})");
  EXPECT_TRUE(ctx.handshake_ok);
  EXPECT_TRUE(ctx.models.empty());
}

TEST(WorkerRingcastDialect, HandshakeFailures) {
  for (std::string_view bad : {
           R"({"id":7,"result":{"protocol_version":2}})",
           R"({"id":7,"result":{"protocol_version":1.0}})",
           R"({"id":7,"result":{"protocol_version":"1"}})",
           R"({"id":7,"result":{}})",
           R"({"id":7,"result":[]})",
           R"({"id":7,"result":{"protocol_version":1,"models":"small"}})",
           R"({"id":7,"result":{"protocol_version":1,"models":[1]}})",
           R"({"id":7,"error":{"code":-32603,"message":"no GPU"}})",
       }) {
    auto call = dialect()->make_handshake("u", 0);
    recording_context ctx;
    call->start(ctx);
    ctx.feed(*call, bad);
    EXPECT_EQ(ctx.handshakes, 1) << bad;
    EXPECT_FALSE(ctx.handshake_ok) << bad;
    EXPECT_FALSE(ctx.reason.empty()) << bad;
    EXPECT_EQ(ctx.sent.size(), 1u) << "no initialized after " << bad;
    EXPECT_TRUE(ctx.finished) << bad;
  }
  auto call = dialect()->make_handshake("u", 0);
  recording_context ctx;
  call->start(ctx);
  ctx.feed(*call, R"({"id":7,"error":{"code":-32603,"message":"no GPU"}})");
  EXPECT_EQ(ctx.reason, "initialize failed: no GPU (-32603)");
}

TEST(WorkerRingcastDialect, GenerateParams) {
  auto body =
      std::make_shared<const std::string>("{\n  \"model\": \"local\",\r\n  \"messages\": []\n}");
  generation_request r;
  r.model = "local";
  r.original.api = api_kind::responses;
  r.original.stream = true;
  r.original.body = body;
  r.conversation = {{openai::message_role::system, "be brief"},
                    {openai::message_role::user, "weather \"in\" Paris?"},
                    {openai::message_role::assistant, "calling"},
                    {openai::message_role::function, "{\"t\":1}"}};
  r.tools.push_back({"get_weather", "Weather now", R"({"type":"object"})", std::nullopt});
  r.tools.push_back({"noop", "", "", std::nullopt});
  r.tool_choice.mode = openai::tool_choice_mode::function;
  r.tool_choice.function_name = "get_weather";
  r.parallel_tool_calls = false;
  r.choices = 2;
  r.max_tokens = 64;
  r.stop = {"\n\n", "END"};
  r.seed = -4;
  r.temperature = 0.5;
  r.top_p = 0.25;
  auto call = dialect()->make_call({.request = &r,
                                    .upstream_model = "small",
                                    .deadline_unix_ms = 1700000000123,
                                    .request_id = "req-1"});
  r = generation_request{};  // the call copied what it needs
  recording_context ctx;
  call->start(ctx);
  ASSERT_EQ(ctx.sent.size(), 1u);
  EXPECT_EQ(ctx.sent[0],
            R"({"jsonrpc":"2.0","id":7,"method":"generate","params":{"request_id":"req-1",)"
            R"("model":"small","deadline_ms":1700000000123,"api":"responses","stream":true,)"
            R"("messages":[{"role":"system","content":"be brief"},)"
            R"({"role":"user","content":"weather \"in\" Paris?"},)"
            R"({"role":"assistant","content":"calling"},{"role":"tool","content":"{\"t\":1}"}],)"
            R"("tools":[{"type":"function","name":"get_weather","description":"Weather now",)"
            R"("parameters":{"type":"object"}},{"type":"function","name":"noop","description":"",)"
            R"("parameters":{}}],"tool_choice":{"type":"function","name":"get_weather"},)"
            R"("parallel_tool_calls":false,"n":2,"max_tokens":64,"stop":["\n\n","END"],)"
            R"("seed":-4,"temperature":0.5,"top_p":0.25,)"
            R"("request":{   "model": "local",    "messages": [] }}})");
  EXPECT_EQ(ctx.sent[0].find('\n'), std::string::npos);
}

TEST(WorkerRingcastDialect, GenerateParamsDefaultsAndNoBody) {
  generation_request r;  // the broker: no client body
  r.conversation = {{openai::message_role::developer, "d"}};
  r.model = "";
  auto call = dialect()->make_call({.request = &r, .upstream_model = "m", .request_id = "x"});
  recording_context ctx;
  call->start(ctx);
  EXPECT_EQ(
      ctx.sent[0],
      R"({"jsonrpc":"2.0","id":7,"method":"generate","params":{"request_id":"x",)"
      R"("model":"m","deadline_ms":null,"api":"chat","stream":false,)"
      R"("messages":[{"role":"developer","content":"d"}],"tools":[],"tool_choice":"auto",)"
      R"("parallel_tool_calls":true,"n":1,"max_tokens":null,"stop":[],"seed":null,)"
      R"("temperature":1.0,"top_p":1.0,"request":{"model":"","messages":[{"role":"developer",)"
      R"("content":"d"}],"stream":false}}})");
  for (auto [mode, text] : {std::pair{openai::tool_choice_mode::none, "\"none\""},
                            std::pair{openai::tool_choice_mode::required, "\"required\""},
                            std::pair{openai::tool_choice_mode::auto_, "\"auto\""}}) {
    r.tool_choice.mode = mode;
    auto c = dialect()->make_call({.request = &r, .upstream_model = "m", .request_id = "x"});
    recording_context x;
    c->start(x);
    EXPECT_NE(x.sent[0].find(std::string("\"tool_choice\":") + text), std::string::npos) << text;
  }
  // Tools appear in the rebuilt body in chat form.
  r.model = "local";
  r.tools.push_back({"f", "does f", R"({"type":"object"})", std::nullopt});
  auto c = dialect()->make_call({.request = &r, .upstream_model = "m", .request_id = "x"});
  recording_context x;
  c->start(x);
  EXPECT_NE(x.sent[0].find(R"("request":{"model":"local","messages":[{"role":"developer",)"
                           R"("content":"d"}],"tools":[{"type":"function","function":{"name":"f",)"
                           R"("description":"does f","parameters":{"type":"object"}}}],)"
                           R"("stream":false}}})"),
            std::string::npos)
      << x.sent[0];
}

TEST(WorkerRingcastDialect, Embed) {
  embedding_request r{"e", {"a", "b"}, 2};
  std::vector<embedding_result> got;
  auto call = dialect()->make_embed_call(
      r, "small-embed", [&](embedding_result&& res) { got.push_back(std::move(res)); });
  recording_context ctx;
  call->start(ctx);
  EXPECT_EQ(ctx.sent[0],
            R"({"jsonrpc":"2.0","id":7,"method":"embed","params":{"request_id":"embed-7",)"
            R"("model":"small-embed",)"
            R"("input":["a","b"],"dimensions":2}})");
  ctx.feed(*call,
           R"({"jsonrpc":"2.0","id":7,"result":{"data":[[0.6,0.8],[1,0]],"prompt_tokens":2}})");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].error_code.empty());
  EXPECT_EQ(got[0].dimensions, 2u);
  EXPECT_EQ(got[0].vectors, (std::vector<float>{0.6f, 0.8f, 1.0f, 0.0f}));
  EXPECT_EQ(got[0].prompt_tokens, 2u);
  EXPECT_TRUE(ctx.finished);
}

TEST(WorkerRingcastDialect, EmbedErrors) {
  struct row {
    std::string_view answer, code;
    uint16_t status;
  };
  for (row c : {
           row{R"({"id":7,"error":{"code":-32004,"message":"no model"}})", "model_not_found", 404},
           row{R"({"id":7,"result":{"data":[[1,2]],"prompt_tokens":2}})", "worker_protocol_error",
               502},
           row{R"({"id":7,"result":{"data":[[1,2],[1]]}})", "worker_protocol_error", 502},
           row{R"({"id":7,"result":{"data":[[1,"x"],[1,2]]}})", "worker_protocol_error", 502},
           row{R"({"id":7,"result":{"data":[[],[]]}})", "worker_protocol_error", 502},
           row{R"({"id":7,"result":{"data":[[1],[2]],"prompt_tokens":-1}})",
               "worker_protocol_error", 502},
           row{R"({"id":7,"result":{}})", "worker_protocol_error", 502},
       }) {
    embedding_request r{"e", {"a", "b"}, std::nullopt};
    std::vector<embedding_result> got;
    auto call = dialect()->make_embed_call(
        r, "m", [&](embedding_result&& res) { got.push_back(std::move(res)); });
    recording_context ctx;
    call->start(ctx);
    ctx.feed(*call, c.answer);
    ASSERT_EQ(got.size(), 1u) << c.answer;
    EXPECT_EQ(got[0].error_code, c.code) << c.answer;
    EXPECT_EQ(got[0].http_status, c.status) << c.answer;
    EXPECT_TRUE(got[0].vectors.empty()) << c.answer;
    EXPECT_TRUE(ctx.finished);
  }
}

TEST(WorkerRingcastDialect, EmbedCancelledNeverCallsDone) {
  embedding_request r{"e", {"a"}, std::nullopt};
  int calls = 0;
  auto call = dialect()->make_embed_call(r, "m", [&](embedding_result&&) { ++calls; });
  recording_context ctx;
  call->start(ctx);
  call->cancel(ctx);
  ctx.feed(*call, R"({"id":7,"result":{"data":[[1]]}})");
  EXPECT_EQ(calls, 0);
  EXPECT_TRUE(ctx.finished);
}

}  // namespace
}  // namespace rc::server
