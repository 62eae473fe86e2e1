#include "server/responses_ws_events.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace rc::server {
namespace {

using outcome = responses_ws_translator::outcome;

class Translator : public ::testing::Test {
 protected:
  outcome feed(responses_ws_translator& t, std::string_view msg) {
    return t.on_message(parser, msg, events);
  }
  json::value parse(std::string_view text) {
    auto r = parser.parse(text);
    EXPECT_TRUE(r.ok()) << text;
    return r.root;
  }
  json::parser parser;
  std::vector<owned_event> events;
};

constexpr std::string_view created =
    R"({"type":"response.created","sequence_number":0,"response":{"id":"resp_up1","object":"response","model":"up-model","status":"in_progress","output":[]}})";
constexpr std::string_view item_done =
    R"({"type":"response.output_item.done","output_index":0,"item":{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"output_text","text":"Hi there"}]}})";
constexpr std::string_view thin_completed =
    R"({"type":"response.completed","response":{"id":"resp_up1","model":"up-model","status":"completed","output":[],"usage":{"input_tokens":5,"output_tokens":2,"total_tokens":7}}})";

TEST_F(Translator, TypedTextAndUsage) {
  responses_ws_translator t({false, true, "client-model", "resp_0_abc", ""});
  EXPECT_EQ(feed(t, created), outcome::more);
  EXPECT_EQ(feed(t, R"({"type":"response.output_text.delta","item_id":"msg_1","delta":"Hi"})"),
            outcome::more);
  EXPECT_EQ(feed(t, R"({"type":"response.output_text.delta","item_id":"msg_1","delta":" there"})"),
            outcome::more);
  EXPECT_EQ(feed(t, item_done), outcome::more);
  EXPECT_EQ(feed(t, thin_completed), outcome::completed);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].base.type, event_type::delta);
  EXPECT_EQ(events[0].text, "Hi");
  EXPECT_EQ(events[1].text, " there");
  EXPECT_EQ(events[2].base.type, event_type::done);
  EXPECT_EQ(events[2].base.finish, openai::finish_reason::stop);
  EXPECT_EQ(events[3].base.type, event_type::usage);
  EXPECT_EQ(events[3].base.usage.input_tokens, 5u);
  EXPECT_EQ(events[3].base.usage.output_tokens, 2u);
  EXPECT_EQ(t.upstream_id(), "resp_up1");
}

TEST_F(Translator, TypedFunctionCalls) {
  responses_ws_translator t({false, true, "m", "", ""});
  feed(t, R"({"type":"response.output_item.added","output_index":0,"item":{"id":"fc_1","type":"function_call","call_id":"call_9","name":"get_weather","arguments":""}})");
  feed(t, R"({"type":"response.function_call_arguments.delta","item_id":"fc_1","delta":"{\"city\":"})");
  feed(t, R"({"type":"response.function_call_arguments.delta","item_id":"fc_1","delta":"\"Oslo\"}"})");
  EXPECT_EQ(feed(t, R"({"type":"response.completed","response":{"id":"r","output":[{"type":"function_call"}]}})"),
            outcome::completed);
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].base.type, event_type::tool_call);
  EXPECT_EQ(events[0].tool_call_id, "call_9");
  EXPECT_EQ(events[0].tool_name, "get_weather");
  EXPECT_EQ(events[1].text + events[2].text, R"({"city":"Oslo"})");
  EXPECT_EQ(events[1].base.tool_index, 0u);
  EXPECT_EQ(events[3].base.finish, openai::finish_reason::tool_calls);
}

TEST_F(Translator, IncompleteIsLength) {
  responses_ws_translator t({false, true, "m", "", ""});
  EXPECT_EQ(feed(t, R"({"type":"response.incomplete","response":{"id":"r","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"}}})"),
            outcome::completed);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].base.finish, openai::finish_reason::length);
}

TEST_F(Translator, RawStreamRewritesIdAndModelAndBackfillsThinCompleted) {
  responses_ws_translator t({true, true, "client-model", "resp_0_abc", "resp_1_prev"});
  feed(t, created);
  feed(t, R"({"type":"response.output_text.delta","item_id":"msg_1","delta":"Hi there"})");
  feed(t, item_done);
  EXPECT_EQ(feed(t, thin_completed), outcome::completed);
  ASSERT_EQ(events.size(), 5u);  // created, delta, item done, completed (raw), usage
  EXPECT_EQ(events[0].raw_name, "response.created");
  json::value c = parse(events[0].raw);
  EXPECT_EQ(c.find("response").find("id").get_string(), "resp_0_abc");
  EXPECT_EQ(c.find("response").find("model").get_string(), "client-model");
  EXPECT_EQ(events[1].raw,
            R"({"type":"response.output_text.delta","item_id":"msg_1","delta":"Hi there"})");
  EXPECT_EQ(events[3].raw_name, "response.completed");
  std::string completed = events[3].raw;
  json::value done = parse(completed);
  json::value output = done.find("response").find("output");
  ASSERT_TRUE(output.is_array());
  ASSERT_EQ(output.size(), 1u);
  EXPECT_EQ(done.find("response").find("id").get_string(), "resp_0_abc");
  for (auto item : output.elements()) EXPECT_EQ(item.find("id").get_string(), "msg_1");
  EXPECT_EQ(events[4].base.type, event_type::usage);
  EXPECT_EQ(events[4].base.usage.output_tokens, 2u);
}

TEST_F(Translator, FullCompletedIsNotBackfilled) {
  responses_ws_translator t({true, false, "cm", "resp_0_x", ""});
  feed(t, item_done);
  feed(t, R"({"type":"response.completed","response":{"id":"u","output":[{"id":"msg_real","type":"message"}]}})");
  // A non-stream request gets only the final object.
  ASSERT_EQ(events.size(), 2u);
  json::value obj = parse(events[0].raw);
  EXPECT_EQ(obj.find("id").get_string(), "resp_0_x");
  json::value output = obj.find("output");
  ASSERT_EQ(output.size(), 1u);
  for (auto item : output.elements()) EXPECT_EQ(item.find("id").get_string(), "msg_real");
}

TEST_F(Translator, ErrorEventCarriesTheEnvelope) {
  responses_ws_translator t({false, true, "m", "", ""});
  EXPECT_EQ(feed(t, R"({"type":"error","status":400,"error":{"type":"invalid_request_error","code":"previous_response_not_found","message":"nope","param":"previous_response_id"}})"),
            outcome::failed);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].base.type, event_type::error);
  EXPECT_EQ(events[0].base.http_status, 400);
  EXPECT_EQ(events[0].error_code, "previous_response_not_found");
  EXPECT_EQ(events[0].error_param, "previous_response_id");
  json::value env = parse(events[0].raw);
  EXPECT_EQ(env.find("error").find("message").get_string(), "nope");
}

TEST_F(Translator, FailedResponseIsAnError) {
  responses_ws_translator t({false, true, "m", "", ""});
  EXPECT_EQ(feed(t, R"({"type":"response.failed","response":{"id":"r","status":"failed","error":{"code":"server_error","message":"boom"}}})"),
            outcome::failed);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].error_code, "server_error");
  EXPECT_EQ(events[0].error_message, "boom");
}

TEST_F(Translator, MalformedEventsAreProtocolErrors) {
  for (std::string_view bad : {std::string_view("not json"), std::string_view("[1,2]"),
                               std::string_view(R"({"delta":"x"})"),
                               std::string_view(R"({"type":"response.completed"})")}) {
    responses_ws_translator t({false, true, "m", "", ""});
    EXPECT_EQ(feed(t, bad), outcome::protocol_error) << bad;
    EXPECT_FALSE(t.problem().empty());
  }
  EXPECT_TRUE(events.empty());
}

TEST(ResponseCreate, ForwardsTheClientsBodyWithModelAndPreviousMapped) {
  json::parser parser;
  generation_request req;
  req.model = "client-model";
  req.original.api = api_kind::responses;
  req.original.body = std::make_shared<const std::string>(
      R"({"model":"client-model","input":"hi","stream":true,"previous_response_id":"resp_1_x","tools":[{"type":"namespace","name":"ns"}],"future_field":{"a":1}})");
  byte_buffer out;
  build_response_create(parser, req, "up-model", "resp_upstream", out);
  auto r = parser.parse(out.view());
  ASSERT_TRUE(r.ok()) << out.view();
  EXPECT_EQ(r.root.find("type").get_string(), "response.create");
  EXPECT_EQ(r.root.find("model").get_string(), "up-model");
  EXPECT_EQ(r.root.find("previous_response_id").get_string(), "resp_upstream");
  EXPECT_EQ(r.root.find("input").get_string(), "hi");
  EXPECT_FALSE(r.root.find("stream"));
  EXPECT_EQ(r.root.find("future_field").to_json(), R"({"a":1})");
  EXPECT_EQ(r.root.find("tools").to_json(), R"([{"type":"namespace","name":"ns"}])");
}

TEST(ResponseCreate, TypedRequestWithoutABody) {
  json::parser parser;
  generation_request req;
  req.model = "m";
  req.conversation.push_back(turn{openai::message_role::system, "be brief"});
  req.conversation.push_back(turn{openai::message_role::user, "hello"});
  req.max_tokens = 5;
  byte_buffer out;
  build_response_create(parser, req, "m", "", out);
  auto r = parser.parse(out.view());
  ASSERT_TRUE(r.ok()) << out.view();
  EXPECT_FALSE(r.root.find("previous_response_id"));
  EXPECT_EQ(r.root.find("input").to_json(),
            R"([{"type":"message","role":"system","content":"be brief"},)"
            R"({"type":"message","role":"user","content":"hello"}])");
  EXPECT_EQ(r.root.find("max_output_tokens").get_int64(), 16);  // the API's minimum
}

// The typed request's tool_choice is the Responses form, and absent when the client set none.
TEST(ResponseCreate, TypedToolChoiceInTheResponsesForm) {
  json::parser parser;
  generation_request req;
  req.model = "m";
  req.conversation.push_back(turn{openai::message_role::user, "hello"});
  auto tool_choice_of = [&](openai::tool_choice_mode mode) {
    req.tool_choice.mode = mode;
    req.tool_choice.function_name = "get_weather";
    byte_buffer out;
    build_response_create(parser, req, "m", "", out);
    auto r = parser.parse(out.view());
    EXPECT_TRUE(r.ok()) << out.view();
    json::value c = r.root.find("tool_choice");
    return c ? c.to_json() : std::string("absent");
  };
  EXPECT_EQ(tool_choice_of(openai::tool_choice_mode::unset), "absent");
  EXPECT_EQ(tool_choice_of(openai::tool_choice_mode::none), R"("none")");
  EXPECT_EQ(tool_choice_of(openai::tool_choice_mode::auto_), R"("auto")");
  EXPECT_EQ(tool_choice_of(openai::tool_choice_mode::required), R"("required")");
  EXPECT_EQ(tool_choice_of(openai::tool_choice_mode::function),
            R"({"type":"function","name":"get_weather"})");
}

}  // namespace
}  // namespace rc::server

namespace rc::server {
namespace {

TEST(ResponseCreate, ClientMembersAreForwardedByteForByte) {
  json::parser parser;
  generation_request req;
  req.original.api = api_kind::responses;
  req.original.body = std::make_shared<const std::string>(
      R"({ "model" : "c", "temperature": 1.50, "input": [ {"role":"user", "content":"\u00e9"} ] })");
  byte_buffer out;
  build_response_create(parser, req, "u", "", out);
  EXPECT_EQ(out.view(),
            R"({"type":"response.create","model":"u","temperature": 1.50,)"
            R"("input": [ {"role":"user", "content":"\u00e9"} ]})");
}

TEST(ResponseCreate, StatelessFollowUpSendsTheResolvedConversation) {
  json::parser parser;
  generation_request req;
  req.original.api = api_kind::responses;
  req.original.previous_response_id = "resp_0_0123456789abcdef";
  req.original.body = std::make_shared<const std::string>(
      R"({"model":"c","input":"and now?","previous_response_id":"resp_0_0123456789abcdef"})");
  req.conversation = {turn{openai::message_role::user, "hi"},
                      turn{openai::message_role::assistant, "hello"},
                      turn{openai::message_role::user, "and now?"}};
  byte_buffer out;
  build_response_create(parser, req, "u", "", out);
  auto r = parser.parse(out.view());
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.root.find("previous_response_id"));  // the upstream never saw ringcast's id
  EXPECT_EQ(r.root.find("input").size(), 3u);
}

}  // namespace
}  // namespace rc::server

namespace rc::server {
namespace {

TEST_F(Translator, ErrorEventStatusesAreMappedLikeHttpUpstreams) {
  struct {
    std::string_view event;
    uint16_t status;
    std::string_view code;
  } cases[] = {
      {R"({"type":"error","status":429,"error":{"type":"rate_limit_error","code":"rate_limit_exceeded","message":"slow down"}})",
       429, "rate_limit_exceeded"},
      {R"({"type":"error","status":401,"error":{"type":"invalid_request_error","code":"invalid_api_key","message":"bad key"}})",
       502, "upstream_auth_failed"},
      {R"({"type":"error","status":500,"error":{"type":"server_error","code":null,"message":"boom"}})",
       502, "upstream_error"},
      {R"({"type":"error","status":404,"error":{"type":"invalid_request_error","code":"model_not_found","message":"no"}})",
       404, "model_not_found"},
  };
  for (const auto& c : cases) {
    events.clear();
    responses_ws_translator t({false, true, "m", "", ""});
    EXPECT_EQ(feed(t, c.event), outcome::failed) << c.event;
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].base.http_status, c.status) << c.event;
    EXPECT_EQ(events[0].error_code, c.code) << c.event;
  }
}

}  // namespace
}  // namespace rc::server
