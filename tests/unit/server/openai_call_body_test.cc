// What the openai engine sends upstream for each kind of request: forwarded, forced to stream,
// translated (with the stored conversation), or built from the typed request.
#include "../../../server/src/openai_call.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace rc::server {
namespace {

generation_request with_body(api_kind api, std::string body, bool passthrough) {
  generation_request g;
  g.model = "client-model";
  g.original.api = api;
  g.original.body = std::make_shared<const std::string>(std::move(body));
  g.original.passthrough = passthrough;
  return g;
}

upstream_body prepare(const generation_request& g, upstream_api api) {
  json::parser p;
  upstream_body out;
  std::optional<upstream_failure> f = prepare_upstream_body(g, api, "up", p, out);
  EXPECT_FALSE(f.has_value()) << (f ? f->message : "");
  return out;
}

TEST(OpenaiCallBody, PassthroughForwardsAsSent) {
  generation_request g = with_body(api_kind::chat, R"({"model":"client-model","messages":[],"logprobs":true})", true);
  upstream_body b = prepare(g, upstream_api::both);
  EXPECT_EQ(b.wire, api_kind::chat);
  EXPECT_TRUE(b.passthrough);
  EXPECT_FALSE(b.stream);
  EXPECT_EQ(b.text, R"({"model":"up","messages":[],"logprobs":true})");
}

TEST(OpenaiCallBody, TypedFrontsAlwaysStream) {
  generation_request g = with_body(api_kind::responses, R"({"model":"m","input":"x"})", false);
  upstream_body b = prepare(g, upstream_api::responses);
  EXPECT_EQ(b.wire, api_kind::responses);
  EXPECT_FALSE(b.passthrough);
  EXPECT_TRUE(b.stream);
  EXPECT_EQ(b.text, R"({"model":"up","input":"x","stream":true})");
}

TEST(OpenaiCallBody, ResponsesOnAChatUpstreamReplaysTheStoredConversation) {
  generation_request g = with_body(
      api_kind::responses,
      R"({"model":"m","instructions":"Be brief.","input":[{"role":"user","content":"now"}],"previous_response_id":"resp_1"})",
      true);
  g.original.previous_response_id = "resp_1";
  // As the front builds it: instructions, the stored history, one turn per input item.
  g.conversation = {{openai::message_role::system, "Be brief."},
                    {openai::message_role::user, "before"},
                    {openai::message_role::assistant, "answer"},
                    {openai::message_role::user, "now"}};
  upstream_body b = prepare(g, upstream_api::chat);
  EXPECT_EQ(b.wire, api_kind::chat);
  EXPECT_FALSE(b.passthrough);
  EXPECT_EQ(b.text,
            R"({"model":"up","messages":[{"role":"system","content":"Be brief."},)"
            R"({"role":"user","content":"before"},{"role":"assistant","content":"answer"},)"
            R"({"role":"user","content":"now"}],"stream":true,"stream_options":{"include_usage":true}})");
}

TEST(OpenaiCallBody, InputItemsWithoutATurnDoNotHideHistory) {
  generation_request g = with_body(
      api_kind::responses,
      R"({"model":"m","input":[{"type":"reasoning","summary":[]},{"role":"user","content":"now"},)"
      R"({"type":"item_reference","id":"x"}],"previous_response_id":"resp_1"})",
      true);
  g.original.previous_response_id = "resp_1";
  g.conversation = {{openai::message_role::user, "before"},
                    {openai::message_role::assistant, "answer"},
                    {openai::message_role::user, "now"}};
  upstream_body b = prepare(g, upstream_api::chat);
  EXPECT_EQ(b.text,
            R"({"model":"up","messages":[{"role":"user","content":"before"},)"
            R"({"role":"assistant","content":"answer"},{"role":"user","content":"now"}],)"
            R"("stream":true,"stream_options":{"include_usage":true}})");
}

TEST(OpenaiCallBody, AConversationRingcastDidNotKeepCannotContinueOnAChatUpstream) {
  generation_request g = with_body(api_kind::responses, R"({"model":"m","input":"now"})", true);
  g.original.previous_response_id = "resp_upstream";
  g.conversation = {{openai::message_role::user, "now"}};
  json::parser p;
  upstream_body out;
  std::optional<upstream_failure> f = prepare_upstream_body(g, upstream_api::chat, "up", p, out);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->http_status, 400);
  EXPECT_EQ(f->code, "previous_response_not_found");
  EXPECT_EQ(f->param, "previous_response_id");
}

TEST(OpenaiCallBody, AResponseRingcastMintedIsReplayedToAResponsesUpstream) {
  // A typed front (WebSocket mode) answered the first response: its id is ringcast's, and the
  // front found its conversation in the store.
  generation_request g = with_body(
      api_kind::responses,
      R"({"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"now"}]}],)"
      R"("previous_response_id":"resp_0_1","tools":[]})",
      false);
  g.original.previous_response_id = "resp_0_1";
  g.conversation = {{openai::message_role::user, "before"},
                    {openai::message_role::assistant, "answer"},
                    {openai::message_role::user, "now"}};
  upstream_body b = prepare(g, upstream_api::both);
  EXPECT_EQ(b.wire, api_kind::responses);
  EXPECT_EQ(b.text,
            R"({"model":"up","input":[{"role":"user","content":"before"},{"role":"assistant","content":"answer"},)"
            R"({"role":"user","content":[{"type":"input_text","text":"now"}]}],)"
            R"("previous_response_id":null,"tools":[],"stream":true})");
}

TEST(OpenaiCallBody, ChatOnAResponsesUpstreamIsTranslated) {
  generation_request g = with_body(api_kind::chat, R"({"model":"m","messages":[{"role":"user","content":"q"}]})", true);
  upstream_body b = prepare(g, upstream_api::responses);
  EXPECT_EQ(b.wire, api_kind::responses);
  EXPECT_FALSE(b.passthrough);
  EXPECT_EQ(b.text, R"({"model":"up","input":[{"role":"user","content":"q"}],"stream":true,"store":false})");
}

TEST(OpenaiCallBody, UntranslatableRequestsAre400) {
  generation_request g = with_body(api_kind::chat, R"({"model":"m","messages":[],"n":3})", true);
  json::parser p;
  upstream_body out;
  std::optional<upstream_failure> f = prepare_upstream_body(g, upstream_api::responses, "up", p, out);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->http_status, 400);
  EXPECT_EQ(f->param, "n");
}

TEST(OpenaiCallBody, WithoutABodyTheTypedRequestIsSent) {
  generation_request g;
  g.model = "client-model";
  g.conversation = {{openai::message_role::user, "hi"}, {openai::message_role::tool, "42"}};
  g.max_tokens = 7;
  g.stop = {"x"};
  upstream_body b = prepare(g, upstream_api::chat);
  EXPECT_EQ(b.wire, api_kind::chat);
  EXPECT_EQ(b.text,
            R"({"model":"up","messages":[{"role":"user","content":"hi"},{"role":"user","content":"42"}],)"
            R"("stream":true,"stream_options":{"include_usage":true},"max_completion_tokens":7,)"
            R"("stop":["x"],"temperature":1.0,"top_p":1.0})");
}

}  // namespace
}  // namespace rc::server
