// The fronts' side of the engine interface (engine.h, "Fidelity" and "Lazy start"), with a
// scripted engine in a real shard: each front fills generation_request::original; a lazy engine's
// first event decides what is rendered (an error becomes a plain HTTP error with the engine's
// status, envelope and Retry-After); `raw` events are written unchanged by the HTTP fronts of
// their API.
#include "fronts_fixture.h"

#include <gtest/gtest.h>

#include <string>

namespace rc::server {
namespace {

using namespace test;

const std::string chat_body =
    R"({"model":"up","messages":[{"role":"user","content":"hi"}],"logprobs":true,"x_future":[1]})";

TEST_F(FrontsTest, ChatFillsTheOriginalRequest) {
  set_script(false, {delta("a"), done(), usage()});
  std::string body = R"({"model":"up","stream":true,"stream_options":{"include_usage":true},)"
                     R"("messages":[{"role":"user","content":"hi"}],"x_future":{"k":[1,2]}})";
  http_reply r = post("/v1/chat/completions", body, "x-request-id: req-42\r\n");
  EXPECT_EQ(r.status, 200);
  original_request o = last_original();
  EXPECT_EQ(o.api, api_kind::chat);
  ASSERT_TRUE(o.body);
  EXPECT_EQ(*o.body, body);  // byte for byte, unknown members included
  EXPECT_TRUE(o.stream);
  EXPECT_TRUE(o.include_usage);
  EXPECT_TRUE(o.passthrough);
  EXPECT_EQ(o.request_id, "req-42");
}

TEST_F(FrontsTest, ResponsesFillTheOriginalRequestAndForwardForeignIds) {
  set_script(true, {delta("a"), done(), usage()});
  // An id ringcast did not mint is the upstream's to resolve, not a 400.
  std::string body = R"({"model":"up","input":"hi","previous_response_id":"resp_upstream1"})";
  http_reply r = post("/v1/responses", body);
  EXPECT_EQ(r.status, 200) << r.body;
  original_request o = last_original();
  EXPECT_EQ(o.api, api_kind::responses);
  ASSERT_TRUE(o.body);
  EXPECT_EQ(*o.body, body);
  EXPECT_FALSE(o.stream);
  EXPECT_TRUE(o.passthrough);
  EXPECT_EQ(o.previous_response_id, "resp_upstream1");
}

TEST_F(FrontsTest, UnstoredIdsOfOurShapeGoToTheUpstream) {
  // Another ringcast upstream mints ids shaped like ours; one this ringcast did not store is
  // the upstream's to resolve.
  set_script(true, {delta("a"), done(), usage()});
  std::string body = R"({"model":"up","input":"hi","previous_response_id":"resp_0_0123456789abcdef"})";
  http_reply r = post("/v1/responses", body);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(last_original().previous_response_id, "resp_0_0123456789abcdef");
  // A non-lazy engine (no upstream) keeps the 400.
  set_script(false, {delta("a"), done(), usage()});
  r = post("/v1/responses", body);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("previous_response_not_found"), std::string::npos) << r.body;
}

TEST_F(FrontsTest, LazyErrorFirstIsAPlainHttpErrorWithTheUpstreamEnvelope) {
  scripted e;
  e.type = event_type::error;
  e.code = "rate_limit_exceeded";
  e.message = "slow down";
  e.http_status = 429;
  e.retry_after_ms = 2500;
  e.raw = R"({"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}})";
  set_script(true, {e});
  for (std::string_view path : {"/v1/chat/completions", "/v1/responses"}) {
    std::string body = path == "/v1/responses" ? R"({"model":"up","input":"hi","stream":true})"
                                               : R"({"model":"up","stream":true,"messages":[{"role":"user","content":"hi"}]})";
    http_reply r = post(path, body);
    EXPECT_EQ(r.status, 429) << path << r.head;
    EXPECT_EQ(r.header("Content-Type"), "application/json");
    EXPECT_EQ(r.header("Retry-After"), "3");
    EXPECT_EQ(r.header("retry-after-ms"), "2500");
    EXPECT_EQ(r.body, e.raw);
  }
}

TEST_F(FrontsTest, LazyErrorWithoutEnvelopeUsesTheEventsFields) {
  scripted e;
  e.type = event_type::error;
  e.code = "upstream_unavailable";
  e.message = "no endpoint answered";
  e.http_status = 503;
  e.error_type = "server_error";
  set_script(true, {e});
  http_reply r = post("/v1/chat/completions", chat_body);
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.header("Retry-After"), "");
  EXPECT_EQ(r.body, R"({"error":{"message":"no endpoint answered","type":"server_error",)"
                    R"("param":null,"code":"upstream_unavailable"}})");
}

TEST_F(FrontsTest, ChatSsePassesRawChunksThrough) {
  std::string c1 = R"({"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null}]})";
  std::string c2 = R"({"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":{"content":[]}}]})";
  set_script(true, {raw_event(api_kind::chat, c1), raw_event(api_kind::chat, c2), usage()});
  http_reply r = post("/v1/chat/completions",
                      R"({"model":"up","stream":true,"messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type").rfind("text/event-stream", 0), 0u);
  // Only the upstream's chunks (no role chunk of ringcast's own), then [DONE].
  std::string events;
  for (size_t at = 0; (at = r.body.find("data: ", at)) != std::string::npos; ++at)
    events += r.body.substr(at, r.body.find("\n\n", at) + 2 - at);
  EXPECT_EQ(events, "data: " + c1 + "\n\ndata: " + c2 + "\n\ndata: [DONE]\n\n");
}

TEST_F(FrontsTest, ChatJsonPassesTheCompletionThrough) {
  std::string completion = R"({"id":"x","object":"chat.completion","model":"up","choices":[{"index":0,"message":{"role":"assistant","content":"Hi","refusal":null},"logprobs":{"content":[]},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}})";
  set_script(true, {raw_event(api_kind::chat, completion), usage()});
  http_reply r = post("/v1/chat/completions", chat_body);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, completion);
}

TEST_F(FrontsTest, ResponsesSsePassesEventsThrough) {
  std::string created = R"({"type":"response.created","sequence_number":0,"response":{"id":"resp_up","status":"in_progress"}})";
  std::string delta_ev = R"({"type":"response.output_text.delta","sequence_number":1,"delta":"Hi","logprobs":[]})";
  std::string completed = R"({"type":"response.completed","sequence_number":2,"response":{"id":"resp_up","status":"completed","output":[]}})";
  set_script(true, {raw_event(api_kind::responses, created, "response.created"),
                    raw_event(api_kind::responses, delta_ev, "response.output_text.delta"),
                    raw_event(api_kind::responses, completed, "response.completed"), usage()});
  http_reply r = post("/v1/responses", R"({"model":"up","input":"hi","stream":true})");
  EXPECT_EQ(r.status, 200);
  std::string events;
  for (size_t at = 0; (at = r.body.find("event: ", at)) != std::string::npos; ++at)
    events += r.body.substr(at, r.body.find("\n\n", at) + 2 - at);
  EXPECT_EQ(events, "event: response.created\ndata: " + created +
                        "\n\nevent: response.output_text.delta\ndata: " + delta_ev +
                        "\n\nevent: response.completed\ndata: " + completed + "\n\n");
}

TEST_F(FrontsTest, ResponsesJsonPassesTheObjectThrough) {
  std::string object = R"({"id":"resp_up","object":"response","status":"completed","output":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Hi","annotations":[],"logprobs":[]}]}]})";
  set_script(true, {raw_event(api_kind::responses, object), usage()});
  http_reply r = post("/v1/responses", R"({"model":"up","input":"hi"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, object);
}

TEST_F(FrontsTest, LazyTypedEventsRenderTheUsualStream) {
  // A lazy engine that translates (typed events): the front's own beginning, at the first event.
  set_script(true, {delta("Hel"), delta("lo"), done(), usage()});
  http_reply r = post("/v1/chat/completions",
                      R"({"model":"up","stream":true,"messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"("delta":{"role":"assistant")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("content":"Hel")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("data: [DONE]"), std::string::npos);
  http_reply rr = post("/v1/responses", R"({"model":"up","input":"hi","stream":true})");
  EXPECT_NE(rr.body.find("event: response.created"), std::string::npos) << rr.body;
  EXPECT_NE(rr.body.find("event: response.completed"), std::string::npos) << rr.body;
}

scripted refusal() {
  scripted e;
  e.type = event_type::error;
  e.code = "rate_limit_exceeded";
  e.message = "slow down";
  e.http_status = 429;
  e.error_type = "requests";
  e.retry_after_ms = 2500;
  e.raw = R"({"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}})";
  return e;
}

TEST_F(FrontsTest, ResponsesWebSocketModeGetsAnErrorEventAndTheRequestInHttpShape) {
  set_script(true, {refusal()});
  auto msgs = ws_exchange("/v1/responses",
                          R"({"type":"response.create","stream_id":"s","model":"up","input":"hi"})", 1);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0], R"({"type":"error","status":429,"error":{"type":"requests",)"
                     R"("code":"rate_limit_exceeded","message":"slow down","param":null}})");
  original_request o = last_original();
  EXPECT_EQ(o.api, api_kind::responses);
  ASSERT_TRUE(o.body);
  EXPECT_EQ(*o.body, R"({"model":"up","input":"hi"})");
  EXPECT_TRUE(o.stream);
  EXPECT_FALSE(o.passthrough);  // WebSocket fronts render typed events
  EXPECT_EQ(o.request_id, "ws-7");
}

TEST_F(FrontsTest, WsChatActionGetsAnErrorEventAndItsPayload) {
  set_script(true, {refusal()});
  auto msgs = ws_exchange("/ws", R"({"id":"r1","action":"chat.completion","payload":)"
                                 R"({"model":"up","messages":[{"role":"user","content":"hi"}]}})", 1);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_NE(msgs[0].find(R"("event":"error")"), std::string::npos) << msgs[0];
  EXPECT_NE(msgs[0].find(R"("code":"rate_limit_exceeded")"), std::string::npos) << msgs[0];
  original_request o = last_original();
  EXPECT_EQ(o.api, api_kind::chat);
  ASSERT_TRUE(o.body);
  EXPECT_EQ(*o.body, R"({"model":"up","messages":[{"role":"user","content":"hi"}]})");
  EXPECT_FALSE(o.passthrough);
}

TEST_F(FrontsTest, BrokerMessagesCarryAChatRequest) {
  set_script(true, {delta("a"), done(), usage()});
  http_reply r = post("/api/v1/message", R"({"user_id":"u1","message":"Hello","model":"up",)"
                                         R"("system":"Be brief.","max_tokens":5,"seed":7})");
  EXPECT_EQ(r.status, 202) << r.body;
  original_request o;
  for (int i = 0; i < 500 && o.api == api_kind::none; ++i) {  // the worker starts in a later turn
    o = last_original();
    if (o.api == api_kind::none) usleep(10000);
  }
  EXPECT_EQ(o.api, api_kind::chat);
  ASSERT_TRUE(o.body);
  EXPECT_EQ(*o.body, R"({"model":"up","messages":[{"role":"system","content":"Be brief."},)"
                     R"({"role":"user","content":"Hello"}],"max_tokens":5,"seed":7,"stream":true})");
  EXPECT_TRUE(o.stream);
  EXPECT_FALSE(o.passthrough);
}

TEST_F(FrontsTest, TopicMirrorFollowsAPassedThroughChatStream) {
  std::string c1 = R"({"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]})";
  std::string c2 = R"({"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo"}}]})";
  set_script(true, {raw_event(api_kind::chat, c1), raw_event(api_kind::chat, c2), usage()});
  auto watcher = ws_open("/ws");
  watcher->send_text(R"({"id":"s","action":"subscribe","payload":{"topic":"gen"}})");
  EXPECT_NE(watcher->read_text().find("subscribed"), std::string::npos);
  http_reply r = post("/v1/chat/completions",
                      R"({"model":"up","stream":true,"messages":[{"role":"user","content":"hi"}]})",
                      "x-ringcast-topic: gen\r\n");
  EXPECT_EQ(r.status, 200);
  std::string seen;
  for (int i = 0; i < 3; ++i) seen += watcher->read_text() + "\n";
  EXPECT_NE(seen.find(R"("type":"delta")"), std::string::npos) << seen;
  EXPECT_NE(seen.find(R"("delta":"Hel")"), std::string::npos) << seen;
  EXPECT_NE(seen.find(R"("delta":"lo")"), std::string::npos) << seen;
  EXPECT_NE(seen.find(R"("type":"done")"), std::string::npos) << seen;
}

}  // namespace
}  // namespace rc::server
