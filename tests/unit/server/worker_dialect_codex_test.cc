// The codex-app-server dialect against transcripts recorded from the real `codex app-server`
// (@openai/codex 0.171.0): handshake, ping, a turn, usage, errors, cancel (codex_replay.h).
#include "codex_replay.h"

namespace rc::server {
namespace {

using namespace codex_test;

TEST(CodexDialect, HandshakeInitializeThenInitialized) {
  auto d = codex::make_dialect(nullptr, {});
  EXPECT_FALSE(d->with_jsonrpc_member());
  EXPECT_EQ(d->framing(), jsonrpc::framing::lines);
  replay w(*d, load("turn"));
  auto call = d->make_handshake("codex", 0);
  w.run(*call);
  EXPECT_TRUE(w.finished);
  EXPECT_TRUE(w.handshake_ok) << w.handshake_reason;
  ASSERT_EQ(w.sent.size(), 2u);
  EXPECT_NE(w.sent[0].find(R"("method":"initialize")"), std::string::npos);
  EXPECT_NE(w.sent[0].find(R"("clientInfo":{"name":"ringcast")"), std::string::npos);
  EXPECT_NE(w.sent[1].find(R"("method":"initialized")"), std::string::npos);
  for (const std::string& s : w.sent) EXPECT_EQ(s.find("jsonrpc"), std::string::npos) << s;
}

TEST(CodexDialect, HandshakeErrorFailsTheWorker) {
  auto d = codex::make_dialect(nullptr, {});
  replay w(*d, {{true, R"({"id":1,"method":"initialize","params":{}})"},
                {false, R"({"id":1,"error":{"code":-32600,"message":"Already initialized"}})"}});
  auto call = d->make_handshake("codex", 0);
  w.run(*call);
  EXPECT_TRUE(w.finished);
  EXPECT_FALSE(w.handshake_ok);
  EXPECT_EQ(w.handshake_reason, "Already initialized");
}

TEST(CodexDialect, PingIsALocalRequestCodexAnswers) {
  auto d = codex::make_dialect(nullptr, {});
  std::string ping;
  d->write_ping(ping, 7);
  EXPECT_EQ(ping, R"({"id":7,"method":"thread/loaded/list","params":{}})");
  // The recording shows codex answering it with a result (any answer proves life).
  std::vector<line> script = load("turn");
  EXPECT_NE(script[3].json.find("thread/loaded/list"), std::string::npos);
}

TEST(CodexDialect, TurnStreamsDeltasThenDoneAndUsage) {
  auto d = codex::make_dialect(nullptr, {});
  std::vector<line> script = load("turn");
  replay w(*d, script, "thread/start");
  generation_request r = conversation({{openai::message_role::system, "Answer briefly."},
                                       user("Say hello")});
  auto call = call_for(*d, r);
  w.run(*call);
  EXPECT_TRUE(w.finished);
  EXPECT_EQ(w.text(), recorded_text(script));
  EXPECT_EQ(w.text(), "Paper needle mirror needle moment often before around. That warmly valley "
                      "while these bridge will");
  ASSERT_GE(w.events.size(), 3u);
  size_t n = w.events.size();
  EXPECT_EQ(w.events[n - 2].base.type, event_type::done);
  EXPECT_EQ(w.events[n - 2].base.finish, openai::finish_reason::stop);
  EXPECT_EQ(w.events[n - 1].base.type, event_type::usage);
  EXPECT_EQ(w.events[n - 1].base.usage.output_tokens, 16u);
  EXPECT_GT(w.events[n - 1].base.usage.input_tokens, 1000u);  // codex's own prompt
  EXPECT_EQ(n - 2, 16u);  // one delta per notification
  // What ringcast asked for.
  auto start = w.sent_params("thread/start");
  ASSERT_EQ(start.size(), 1u);
  EXPECT_EQ(start[0], R"({"model":"ringcast-mock","approvalPolicy":"never","sandbox":"read-only",)"
                      R"("ephemeral":true,"developerInstructions":"Answer briefly."})");
  auto turn_start = w.sent_params("turn/start");
  ASSERT_EQ(turn_start.size(), 1u);
  EXPECT_NE(turn_start[0].find(R"("input":[{"type":"text","text":"Say hello","text_elements":[]}])"),
            std::string::npos);
  EXPECT_TRUE(w.sent_params("thread/inject_items").empty());
  EXPECT_EQ(w.sent_params("thread/unsubscribe").size(), 1u);  // the ephemeral thread is unloaded
  EXPECT_EQ(w.keys.size(), 1u);
  for (const std::string& s : w.sent) EXPECT_EQ(s.find("jsonrpc"), std::string::npos) << s;
}

TEST(CodexDialect, ToolTurnSumsUsageOfEveryModelCall) {
  auto d = codex::make_dialect(nullptr, {});
  std::vector<line> script = load("tool_turn");
  replay w(*d, script, "thread/start");
  w.synthetic["thread/unsubscribe"] = R"({"status":"unsubscribed"})";
  generation_request r = conversation({user("Please call get_goal now")});
  auto call = call_for(*d, r);
  w.run(*call);
  EXPECT_TRUE(w.finished);
  EXPECT_EQ(w.text(), recorded_text(script));
  ASSERT_NE(last_event(w), nullptr);
  EXPECT_EQ(last_event(w)->base.type, event_type::usage);
  // Two model calls (the tool call, then the answer): 1 + 16 output tokens, both inputs.
  EXPECT_EQ(last_event(w)->base.usage.output_tokens, 17u);
  EXPECT_GT(last_event(w)->base.usage.input_tokens, 8000u);
}

TEST(CodexDialect, StreamFailureMidTurnIsAWorkerError) {
  auto d = codex::make_dialect(nullptr, {});
  replay w(*d, load("stream_error"), "thread/start");
  w.synthetic["thread/unsubscribe"] = R"({"status":"unsubscribed"})";
  generation_request r = conversation({user("hi ringcast-mock:error-after=3")});
  auto call = call_for(*d, r);
  w.run(*call);
  EXPECT_TRUE(w.finished);
  ASSERT_EQ(w.events.size(), 4u);  // three deltas, then the error
  EXPECT_EQ(w.events[3].base.type, event_type::error);
  EXPECT_EQ(w.events[3].error_code, "worker_error");
  EXPECT_EQ(w.events[3].base.http_status, 502);
  EXPECT_NE(w.events[3].error_message.find("stream disconnected"), std::string::npos);
}

TEST(CodexDialect, ModelNotFoundIs404) {
  auto d = codex::make_dialect(nullptr, {});
  replay w(*d, load("model_not_found"), "thread/start");
  w.synthetic["thread/unsubscribe"] = R"({"status":"unsubscribed"})";
  generation_request r = conversation({user("Say hello")});
  auto call = call_for(*d, r);
  w.run(*call);
  EXPECT_TRUE(w.finished);
  ASSERT_EQ(w.events.size(), 1u);
  EXPECT_EQ(w.events[0].base.type, event_type::error);
  EXPECT_EQ(w.events[0].error_code, "model_not_found");
  EXPECT_EQ(w.events[0].base.http_status, 404);
  EXPECT_EQ(w.events[0].error_message,
            "The model 'no-such-model' does not exist or you do not have access to it.");
}

TEST(CodexDialect, RpcErrorAnswerToTurnStartIsMapped) {
  // The recorded answer of codex to a turn on a thread it does not have: -32600.
  std::vector<line> rec = load("rpc_errors");
  std::string error_line;
  for (const line& l : rec)
    if (!l.to_codex && l.json.find("thread not found") != std::string::npos) error_line = l.json;
  ASSERT_FALSE(error_line.empty());
  auto d = codex::make_dialect(nullptr, {});
  // (recorded as id 2: the turn/start of this script)
  replay w(*d, {{true, R"({"id":1,"method":"thread/start","params":{}})"},
                {false, R"({"id":1,"result":{"thread":{"id":"t1"}}})"},
                {true, R"({"id":2,"method":"turn/start","params":{}})"},
                {false, error_line},
                {true, R"({"id":3,"method":"thread/unsubscribe","params":{}})"},
                {false, R"({"id":3,"result":{"status":"unsubscribed"}})"}});
  generation_request r = conversation({user("x")});
  auto call = call_for(*d, r);
  w.run(*call);
  EXPECT_TRUE(w.finished);
  ASSERT_EQ(w.events.size(), 1u);
  EXPECT_EQ(w.events[0].error_code, "worker_protocol_error");
  EXPECT_EQ(w.events[0].base.http_status, 502);
}

TEST(CodexDialect, OverloadedThreadStartIsRetryable503) {
  auto d = codex::make_dialect(nullptr, {});
  replay w(*d, {{true, R"({"id":2,"method":"thread/start","params":{}})"},
                {false, R"({"id":2,"error":{"code":-32001,"message":"Server overloaded; retry later."}})"}});
  generation_request r = conversation({user("x")});
  auto call = call_for(*d, r);
  w.run(*call);
  EXPECT_TRUE(w.finished);  // no thread: nothing to unsubscribe
  ASSERT_EQ(w.events.size(), 1u);
  EXPECT_EQ(w.events[0].error_code, "worker_overloaded");
  EXPECT_EQ(w.events[0].base.http_status, 503);
  EXPECT_GT(w.events[0].base.retry_after_ms, 0u);
}

TEST(CodexDialect, AgentMessagesOfOneTurnAreSeparatedAndOneWithoutDeltasIsSentWhole) {
  // A preamble, a tool Codex runs, then the answer, which (here) comes only in item/completed.
  auto d = codex::make_dialect(nullptr, {});
  replay w(*d, {{true, R"({"id":1,"method":"thread/start","params":{}})"},
                {false, R"({"id":1,"result":{"thread":{"id":"t1"}}})"},
                {true, R"({"id":2,"method":"turn/start","params":{}})"},
                {false, R"({"id":2,"result":{"turn":{"id":"u1","status":"inProgress"}}})"},
                {false, R"({"method":"item/agentMessage/delta","params":{"threadId":"t1","turnId":"u1","itemId":"m1","delta":"Let me look."}})"},
                {false, R"({"method":"item/completed","params":{"threadId":"t1","turnId":"u1","item":{"type":"agentMessage","id":"m1","text":"Let me look."}}})"},
                {false, R"({"method":"item/agentMessage/delta","params":{"threadId":"t0","turnId":"u0","itemId":"x","delta":"another thread"}})"},
                {false, R"({"method":"item/completed","params":{"threadId":"t1","turnId":"u1","item":{"type":"agentMessage","id":"m2","text":"Found it."}}})"},
                {false, R"({"method":"turn/completed","params":{"threadId":"t1","turn":{"id":"u1","status":"completed","error":null}}})"},
                {true, R"({"id":3,"method":"thread/unsubscribe","params":{}})"},
                {false, R"({"id":3,"result":{"status":"unsubscribed"}})"}});
  generation_request r = conversation({user("Where is it?")});
  auto call = call_for(*d, r);
  w.run(*call);
  EXPECT_TRUE(w.finished);
  EXPECT_EQ(w.text(), "Let me look.\n\nFound it.");
  EXPECT_EQ(w.events.back().base.type, event_type::usage);
}

TEST(CodexDialect, CancelInterruptsTheTurnAndEmitsNothingMore) {
  auto d = codex::make_dialect(nullptr, {});
  std::vector<line> script = load("interrupt");
  replay w(*d, script, "thread/start");
  w.synthetic["thread/unsubscribe"] = R"({"status":"unsubscribed"})";
  w.on_emit = [&](const owned_event& e) {
    if (e.base.type == event_type::delta && w.events.size() == 1) w.cancel_call();
  };
  generation_request r = conversation({user("Tell me a long story")});
  auto call = call_for(*d, r);
  w.run(*call);
  EXPECT_TRUE(w.finished);
  ASSERT_EQ(w.events.size(), 1u);  // the delta before the cancel, then nothing
  auto interrupts = w.sent_params("turn/interrupt");
  ASSERT_EQ(interrupts.size(), 1u);
  EXPECT_NE(interrupts[0].find(R"("turnId":")"), std::string::npos);
  EXPECT_EQ(w.sent_params("thread/unsubscribe").size(), 1u);
}

TEST(CodexDialect, CancelBeforeTheThreadExistsSendsNoTurn) {
  auto d = codex::make_dialect(nullptr, {});
  std::vector<line> script = load("turn");
  replay w(*d, script, "thread/start");
  w.synthetic["thread/unsubscribe"] = R"({"status":"unsubscribed"})";
  generation_request r = conversation({user("Say hello")});
  auto call = call_for(*d, r);
  call->start(w);
  call->cancel(w);  // the thread/start answer is still to come
  w.run_after_start(*call);
  EXPECT_TRUE(w.finished);
  EXPECT_TRUE(w.events.empty());
  EXPECT_TRUE(w.sent_params("turn/start").empty());
  EXPECT_EQ(w.sent_params("thread/unsubscribe").size(), 1u);
}

}  // namespace
}  // namespace rc::server
