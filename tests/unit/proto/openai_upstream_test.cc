// Upstream requests: byte-preserving forwarding, usage injection, chat <-> Responses
// translation, and model names mapped back in upstream JSON.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "openai_test_util.h"
#include "proto/json_reader.h"
#include "proto/openai_upstream.h"

namespace rc::openai {
namespace {

std::string chat_forward(std::string_view body, forward_info& info) {
  byte_buffer b;
  EXPECT_TRUE(build_chat_forward(body, "up/model", b, info));
  std::string s(b.view());
  test::expect_valid_json(s);
  return s;
}

TEST(OpenaiUpstream, ChatForwardMapsOnlyTheModel) {
  forward_info info;
  std::string_view body =
      R"({"model":"mine", "messages":[{"role":"user","content":[{"type":"text","text":"hi"},)"
      R"({"type":"image_url","image_url":{"url":"data:x"}}]}], "logprobs":true,"top_k":40,)"
      R"("temperature":0.70,"x_vendor":{"a":[1,2]}})";
  EXPECT_EQ(chat_forward(body, info),
            R"({"model":"up/model", "messages":[{"role":"user","content":[{"type":"text","text":"hi"},)"
            R"({"type":"image_url","image_url":{"url":"data:x"}}]}], "logprobs":true,"top_k":40,)"
            R"("temperature":0.70,"x_vendor":{"a":[1,2]}})");
  EXPECT_FALSE(info.stream);
  EXPECT_FALSE(info.include_usage);
}

TEST(OpenaiUpstream, ChatStreamAsksForUsageAndRemembersWhetherTheClientDid) {
  forward_info info;
  EXPECT_EQ(chat_forward(R"({"model":"m","stream":true,"messages":[]})", info),
            R"({"model":"up/model","stream":true,"messages":[],"stream_options":{"include_usage":true}})");
  EXPECT_TRUE(info.stream);
  EXPECT_FALSE(info.include_usage);

  EXPECT_EQ(chat_forward(R"({"model":"m","stream":true,"stream_options":{"include_usage":false,"x":1}})", info),
            R"({"model":"up/model","stream":true,"stream_options":{"include_usage":true,"x":1}})");
  EXPECT_FALSE(info.include_usage);

  EXPECT_EQ(chat_forward(R"({"stream":true,"stream_options":{"include_usage":true},"model":"m"})", info),
            R"({"stream":true,"stream_options":{"include_usage":true},"model":"up/model"})");
  EXPECT_TRUE(info.include_usage);

  EXPECT_EQ(chat_forward(R"({"model":"m","stream":true,"stream_options":null})", info),
            R"({"model":"up/model","stream":true,"stream_options":{"include_usage":true}})");
  EXPECT_EQ(chat_forward(R"({"model":"m","stream":true,"stream_options":{}})", info),
            R"({"model":"up/model","stream":true,"stream_options":{"include_usage":true}})");
}

TEST(OpenaiUpstream, ForwardCanForceAStream) {
  forward_info info;
  byte_buffer b;
  ASSERT_TRUE(build_chat_forward(R"({"model":"m","stream":false,"stream_options":{"include_usage":true}})",
                                 "up", b, info, forward_stream::always));
  EXPECT_EQ(b.view(), R"({"model":"up","stream":true,"stream_options":{"include_usage":true}})");
  EXPECT_FALSE(info.stream);
  EXPECT_FALSE(info.include_usage);
  b.clear();
  ASSERT_TRUE(build_responses_forward(R"({"model":"m","input":"x"})", "up", b, info,
                                      forward_stream::always));
  EXPECT_EQ(b.view(), R"({"model":"up","input":"x","stream":true})");
  b.clear();
  ASSERT_TRUE(build_responses_forward(R"({"model":"m","stream":true})", "up", b, info,
                                      forward_stream::always));
  EXPECT_EQ(b.view(), R"({"model":"up","stream":true})");
}

TEST(OpenaiUpstream, ResponsesForwardMapsOnlyTheModel) {
  forward_info info;
  byte_buffer b;
  std::string_view body =
      R"({"model":"mine","input":"hi","tools":[{"type":"namespace","name":"x","tools":[]}],"stream":true})";
  ASSERT_TRUE(build_responses_forward(body, "gpt-x", b, info));
  EXPECT_EQ(b.view(),
            R"({"model":"gpt-x","input":"hi","tools":[{"type":"namespace","name":"x","tools":[]}],"stream":true})");
  EXPECT_TRUE(info.stream);
  EXPECT_FALSE(build_responses_forward("[1]", "gpt-x", b, info));
}

TEST(OpenaiUpstream, RewriteModelInChunksAndResponsesEvents) {
  byte_buffer b;
  ASSERT_TRUE(rewrite_model(R"({"id":"c","model":"up/m","choices":[]})", "mine", b));
  EXPECT_EQ(b.view(), R"({"id":"c","model":"mine","choices":[]})");
  b.clear();
  ASSERT_TRUE(rewrite_model(
      R"({"type":"response.created","response":{"id":"r","model":"up/m","output":[]},"sequence_number":0})",
      "mine", b));
  EXPECT_EQ(b.view(),
            R"({"type":"response.created","response":{"id":"r","model":"mine","output":[]},"sequence_number":0})");
  b.clear();
  ASSERT_TRUE(rewrite_model(R"({"type":"response.output_text.delta","delta":"model"})", "mine", b));
  EXPECT_EQ(b.view(), R"({"type":"response.output_text.delta","delta":"model"})");
  b.clear();
  EXPECT_FALSE(rewrite_model("not json", "mine", b));
}

// Translates and re-parses, returning the re-encoded result for comparisons.
std::string to_chat(std::string_view body, std::vector<history_message> history = {}) {
  json::parser p;
  json::parse_result r = p.parse(body);
  EXPECT_TRUE(r.ok());
  byte_buffer b;
  EXPECT_FALSE(responses_to_chat(r.root, "up", history, b).has_value());
  std::string s(b.view());
  test::expect_valid_json(s);
  return s;
}

TEST(OpenaiUpstream, ResponsesToChatMessagesAndToolCalls) {
  std::string got = to_chat(
      R"({"model":"m","instructions":"Be brief.","input":[)"
      R"({"role":"developer","content":"dev"},)"
      R"({"type":"message","role":"user","content":[{"type":"input_text","text":"a"},{"type":"input_text","text":"b"}]},)"
      R"({"type":"reasoning","summary":[]},)"
      R"({"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},)"
      R"({"type":"function_call","call_id":"c2","name":"g","arguments":"{\"x\":1}"},)"
      R"({"type":"function_call_output","call_id":"c1","output":"42"}]})",
      {{message_role::user, "earlier"}, {message_role::assistant, "answer"}});
  EXPECT_EQ(got,
            R"({"model":"up","messages":[{"role":"system","content":"Be brief."},)"
            R"({"role":"user","content":"earlier"},{"role":"assistant","content":"answer"},)"
            R"({"role":"system","content":"dev"},{"role":"user","content":"ab"},)"
            R"({"role":"assistant","content":null,"tool_calls":[)"
            R"({"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}},)"
            R"({"id":"c2","type":"function","function":{"name":"g","arguments":"{\"x\":1}"}}]},)"
            R"({"role":"tool","content":"42","tool_call_id":"c1"}],)"
            R"("stream":true,"stream_options":{"include_usage":true}})");
}

TEST(OpenaiUpstream, ResponsesToChatSettingsToolsAndMedia) {
  std::string got = to_chat(
      R"({"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"see"},)"
      R"({"type":"input_image","image_url":"https://x/i.png","detail":"low"}]}],)"
      R"("tools":[{"type":"function","name":"f","description":"d","parameters":{"type":"object"},"strict":true},)"
      R"({"type":"web_search"},{"type":"namespace","name":"n","tools":[]}],)"
      R"("tool_choice":{"type":"function","name":"f"},"parallel_tool_calls":false,)"
      R"("max_output_tokens":100,"temperature":0.5,"top_p":0.9,"user":"u","reasoning":{"effort":"low"},)"
      R"("text":{"format":{"type":"json_schema","name":"s","schema":{"type":"object"},"strict":true}},)"
      R"("store":false,"include":["reasoning.encrypted_content"]})");
  EXPECT_EQ(got,
            R"({"model":"up","messages":[{"role":"user","content":[{"type":"text","text":"see"},)"
            R"({"type":"image_url","image_url":{"url":"https://x/i.png","detail":"low"}}]}],)"
            R"("stream":true,"stream_options":{"include_usage":true},)"
            R"("tools":[{"type":"function","function":{"name":"f","description":"d",)"
            R"("parameters":{"type":"object"},"strict":true}}],)"
            R"("tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false,)"
            R"("max_completion_tokens":100,"temperature":0.5,"top_p":0.9,"user":"u",)"
            R"("reasoning_effort":"low","response_format":{"type":"json_schema",)"
            R"("json_schema":{"name":"s","schema":{"type":"object"},"strict":true}}})");
}

TEST(OpenaiUpstream, ResponsesToChatSkipsWhatIsNotAnItem) {
  // Found by fuzz_openai_stream: an input element that is not an object.
  EXPECT_EQ(to_chat(R"({"model":"m","input":["x",1,{"role":"user","content":"hi"}]})"),
            R"({"model":"up","messages":[{"role":"user","content":"hi"}],"stream":true,)"
            R"("stream_options":{"include_usage":true}})");
}

TEST(OpenaiUpstream, ResponsesToChatStringInput) {
  EXPECT_EQ(to_chat(R"({"model":"m","input":"hi","tool_choice":"required"})"),
            R"({"model":"up","messages":[{"role":"user","content":"hi"}],"stream":true,)"
            R"("stream_options":{"include_usage":true},"tool_choice":"required"})");
}

std::string to_responses(std::string_view body, std::optional<api_error>* error = nullptr) {
  json::parser p;
  json::parse_result r = p.parse(body);
  EXPECT_TRUE(r.ok());
  byte_buffer b;
  std::optional<api_error> e = chat_to_responses(r.root, "up", b);
  if (error) *error = e;
  std::string s(b.view());
  if (!e) test::expect_valid_json(s);
  return s;
}

TEST(OpenaiUpstream, ChatToResponses) {
  std::string got = to_responses(
      R"({"model":"m","messages":[{"role":"system","content":"sys"},)"
      R"({"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"u"}}]},)"
      R"({"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},)"
      R"({"role":"tool","tool_call_id":"c1","content":"out"}],)"
      R"("tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],)"
      R"("tool_choice":{"type":"function","function":{"name":"f"}},"max_tokens":5,"stop":["x"],)"
      R"("response_format":{"type":"json_object"},"reasoning_effort":"high","stream":false})");
  EXPECT_EQ(got,
            R"({"model":"up","input":[{"role":"system","content":"sys"},)"
            R"({"role":"user","content":[{"type":"input_text","text":"look"},)"
            R"({"type":"input_image","image_url":"u","detail":"auto"}]},)"
            R"({"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},)"
            R"({"type":"function_call_output","call_id":"c1","output":"out"}],)"
            R"("stream":true,"store":false,"tools":[{"type":"function","name":"f",)"
            R"("parameters":{"type":"object"}}],"tool_choice":{"type":"function","name":"f"},)"
            R"("max_output_tokens":16,"reasoning":{"effort":"high"},"text":{"format":{"type":"json_object"}}})");
}

TEST(OpenaiUpstream, ChatToResponsesRefusesSeveralChoices) {
  std::optional<api_error> e;
  to_responses(R"({"model":"m","messages":[],"n":2})", &e);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->status, 400);
  EXPECT_EQ(e->param, "n");
}

}  // namespace
}  // namespace rc::openai
