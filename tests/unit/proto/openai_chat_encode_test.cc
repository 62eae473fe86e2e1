// chat.completion / chat.completion.chunk encoders: byte-exact output, re-parsed.
#include <gtest/gtest.h>

#include <string>

#include "openai_test_util.h"
#include "proto/openai_chat.h"

namespace rc::openai {
namespace {

completion_header header() {
  return completion_header{.id = std::string("chatcmpl-1"),
                           .created = 1700000000,
                           .model = std::string("m"),
                           .system_fingerprint = std::string("fp_1")};
}

const std::string prefix =
    R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m",)"
    R"("service_tier":"default","system_fingerprint":"fp_1","choices":[)";

template <class F>
std::string encode(F f) {
  byte_buffer b;
  f(b);
  std::string s(b.view());
  test::expect_valid_json(s);
  return s;
}

TEST(OpenaiChatEncode, ChunksWithoutUsage) {
  chat_chunk_writer w(header(), usage_chunk::off);
  EXPECT_EQ(encode([&](byte_buffer& b) { w.role(b, 0); }),
            prefix + R"({"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,)"
                     R"("finish_reason":null}]})");
  EXPECT_EQ(encode([&](byte_buffer& b) { w.content(b, 1, "Hi \"you\"\n"); }),
            prefix + R"({"index":1,"delta":{"content":"Hi \"you\"\n"},"logprobs":null,)"
                     R"("finish_reason":null}]})");
  EXPECT_EQ(encode([&](byte_buffer& b) { w.finish(b, 0, finish_reason::length); }),
            prefix + R"({"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}]})");
}

TEST(OpenaiChatEncode, ToolCallChunks) {
  chat_chunk_writer w(header(), usage_chunk::off);
  EXPECT_EQ(encode([&](byte_buffer& b) { w.tool_call_begin(b, 0, 0, "call_abc", "get_weather"); }),
            prefix + R"({"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_abc",)"
                     R"("type":"function","function":{"name":"get_weather","arguments":""}}]},)"
                     R"("logprobs":null,"finish_reason":null}]})");
  EXPECT_EQ(encode([&](byte_buffer& b) { w.tool_call_arguments(b, 0, 1, "{\"city\":"); }),
            prefix + R"({"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":)"
                     R"("{\"city\":"}}]},"logprobs":null,"finish_reason":null}]})");
  EXPECT_EQ(encode([&](byte_buffer& b) { w.finish(b, 0, finish_reason::tool_calls); }),
            prefix + R"({"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]})");
}

TEST(OpenaiChatEncode, IncludeUsageAddsNullUsageAndAFinalUsageChunk) {
  chat_chunk_writer w(header(), usage_chunk::on);
  EXPECT_EQ(encode([&](byte_buffer& b) { w.content(b, 0, "x"); }),
            prefix + R"({"index":0,"delta":{"content":"x"},"logprobs":null,)"
                     R"("finish_reason":null}],"usage":null})");
  EXPECT_EQ(encode([&](byte_buffer& b) { w.finish(b, 0, finish_reason::stop); }),
            prefix + R"({"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],)"
                     R"("usage":null})");
  usage_counts u{.input_tokens = 10, .output_tokens = 5, .cached_tokens = 2, .reasoning_tokens = 1};
  EXPECT_EQ(encode([&](byte_buffer& b) { w.usage(b, u); }),
            prefix + R"(],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,)"
                     R"("prompt_tokens_details":{"cached_tokens":2,"audio_tokens":0},)"
                     R"("completion_tokens_details":{"reasoning_tokens":1,"audio_tokens":0,)"
                     R"("accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}})");
}

TEST(OpenaiChatEncode, HeaderVariants) {
  completion_header h = header();
  h.system_fingerprint.clear();
  h.service_tier.clear();
  h.model = "m\"odel";
  chat_chunk_writer w(h, usage_chunk::off);
  EXPECT_EQ(encode([&](byte_buffer& b) { w.content(b, 0, ""); }),
            R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,)"
            R"("model":"m\"odel","system_fingerprint":null,"choices":[{"index":0,)"
            R"("delta":{"content":""},"logprobs":null,"finish_reason":null}]})");
}

TEST(OpenaiChatEncode, InvalidUtf8InADeltaStillGivesValidJson) {
  chat_chunk_writer w(header(), usage_chunk::off);
  std::string s = encode([&](byte_buffer& b) { w.content(b, 0, "a\xE2\x82"); });
  EXPECT_NE(s.find("\"a\xEF\xBF\xBD\""), std::string::npos);
}

TEST(OpenaiChatEncode, CompletionWithContent) {
  chat_choice c{.index = 0, .content = "Hello!", .tool_calls = {}, .finish = finish_reason::stop};
  usage_counts u{.input_tokens = 3, .output_tokens = 2};
  EXPECT_EQ(encode([&](byte_buffer& b) {
              write_chat_completion(b, header(), {&c, 1}, u);
            }),
            R"({"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m",)"
            R"("choices":[{"index":0,"message":{"role":"assistant","content":"Hello!",)"
            R"("refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],)"
            R"("usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,)"
            R"("prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},)"
            R"("completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,)"
            R"("accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},)"
            R"("service_tier":"default","system_fingerprint":"fp_1"})");
}

TEST(OpenaiChatEncode, CompletionWithToolCallsAndSeveralChoices) {
  tool_call calls[] = {{"call_1", "get", "{\"a\":1}"}};
  chat_choice c[] = {
      {.index = 0, .content = "", .tool_calls = calls, .finish = finish_reason::tool_calls},
      {.index = 1, .content = "plain", .tool_calls = {}, .finish = finish_reason::length},
  };
  std::string s = encode([&](byte_buffer& b) { write_chat_completion(b, header(), c, {}); });
  EXPECT_NE(s.find(R"({"index":0,"message":{"role":"assistant","content":null,"refusal":null,)"
                   R"("annotations":[],"tool_calls":[{"id":"call_1","type":"function",)"
                   R"("function":{"name":"get","arguments":"{\"a\":1}"}}]},"logprobs":null,)"
                   R"("finish_reason":"tool_calls"})"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find(R"({"index":1,"message":{"role":"assistant","content":"plain",)"),
            std::string::npos);
  json::parser p;
  json::parse_result r = p.parse(s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.root.find("choices").size(), 2u);
}

}  // namespace
}  // namespace rc::openai
