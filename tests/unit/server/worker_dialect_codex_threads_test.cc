// The codex-app-server dialect: conversations (history injected, retained threads resumed),
// declined approval requests, thread_params, the error mapping of failed turns, and the bounded
// store of retained threads (recorded transcripts replayed by codex_replay.h).
#include "codex_replay.h"

namespace rc::server {
namespace {

using namespace codex_test;

TEST(CodexDialect, HistoryIsInjectedAndTheLastUserTurnIsTheInput) {
  auto d = codex::make_dialect(nullptr, {});
  std::vector<line> script = load("history");
  replay w(*d, script, "thread/start");
  generation_request r = conversation({{openai::message_role::developer, "Be kind."},
                                       user("My name is Ada"),
                                       {openai::message_role::assistant, "Hello Ada"},
                                       user("What is my name?")});
  auto call = call_for(*d, r);
  w.run(*call);
  EXPECT_TRUE(w.finished);
  EXPECT_EQ(w.text(), recorded_text(script));
  ASSERT_EQ(w.events.back().base.type, event_type::usage);
  auto inject = w.sent_params("thread/inject_items");
  ASSERT_EQ(inject.size(), 1u);
  EXPECT_NE(inject[0].find(R"({"type":"message","role":"user","content":[{"type":"input_text",)"
                           R"("text":"My name is Ada"}]},{"type":"message","role":"assistant",)"
                           R"("content":[{"type":"output_text","text":"Hello Ada"}]})"),
            std::string::npos)
      << inject[0];
  auto turn_start = w.sent_params("turn/start");
  ASSERT_EQ(turn_start.size(), 1u);
  EXPECT_NE(turn_start[0].find(R"("text":"What is my name?")"), std::string::npos);
  EXPECT_EQ(turn_start[0].find("Ada"), std::string::npos);
  EXPECT_NE(w.sent_params("thread/start")[0].find(R"("developerInstructions":"Be kind.")"),
            std::string::npos);
}

TEST(CodexDialect, RetainedThreadIsResumedByPreviousResponseId) {
  codex::settings s;
  s.retain_threads = true;
  int key = 0;  // the upstream config the store belongs to
  auto d = codex::make_dialect(&key, s);
  std::vector<line> script = load("retained");
  replay w(*d, script, "thread/start");
  w.synthetic["thread/unsubscribe"] = R"({"status":"unsubscribed"})";  // after the last turn

  generation_request first = conversation({user("First question")});
  first.original.response_id = "resp_1";
  auto call1 = call_for(*d, first);
  size_t unsubscribed_at_done = 0;
  w.on_emit = [&](const owned_event& e) {
    if (e.base.type == event_type::done) unsubscribed_at_done = w.sent_params("thread/unsubscribe").size();
  };
  w.run(*call1);
  EXPECT_EQ(unsubscribed_at_done, 1u);  // the thread is unloaded before the response ends
  w.on_emit = nullptr;
  EXPECT_TRUE(w.finished);
  std::string answer = w.text();
  EXPECT_EQ(answer, recorded_text(script, 0));
  EXPECT_NE(w.sent_params("thread/start")[0].find(R"("ephemeral":false)"), std::string::npos);
  EXPECT_EQ(codex::store_for(&key, 1)->size(), 1u);

  // The follow-up: the front resolved the whole conversation; only the new turn goes to codex.
  replay& w2 = w;
  w2.events.clear();
  w2.sent.clear();
  generation_request second = conversation({user("First question"),
                                            {openai::message_role::assistant, answer},
                                            user("Second question")});
  second.original.previous_response_id = "resp_1";
  second.original.response_id = "resp_2";
  auto call2 = call_for(*d, second);
  w2.run(*call2);
  EXPECT_TRUE(w2.finished);
  EXPECT_EQ(w2.text(), recorded_text(script, 1));
  EXPECT_TRUE(w2.sent_params("thread/start").empty());
  auto resume = w2.sent_params("thread/resume");
  ASSERT_EQ(resume.size(), 1u);
  EXPECT_NE(resume[0].find(R"("excludeTurns":true)"), std::string::npos);
  EXPECT_TRUE(w2.sent_params("thread/inject_items").empty());
  auto turn_start = w2.sent_params("turn/start");
  ASSERT_EQ(turn_start.size(), 1u);
  EXPECT_EQ(turn_start[0].find("First question"), std::string::npos);
  EXPECT_NE(turn_start[0].find("Second question"), std::string::npos);
  // resp_1's thread moved on to resp_2: a second follow-up of resp_1 gets a new thread.
  auto store = codex::store_for(&key, 1);
  EXPECT_FALSE(store->take("resp_1"));
  EXPECT_TRUE(store->take("resp_2"));
}

TEST(CodexDialect, ClientGoneWhileARetainedThreadUnloadsGetsNoMoreEvents) {
  codex::settings s;
  s.retain_threads = true;
  int key = 0;
  auto d = codex::make_dialect(&key, s);
  replay w(*d, load("retained"), "thread/start");
  w.on_send = [&](const std::string& json) {
    if (json.find("thread/unsubscribe") != std::string::npos) w.cancel_call();
  };
  generation_request r = conversation({user("First question")});
  r.original.response_id = "resp_1";
  auto call = call_for(*d, r);
  w.run(*call);
  EXPECT_TRUE(w.finished);
  for (const owned_event& e : w.events) EXPECT_EQ(e.base.type, event_type::delta);
  EXPECT_TRUE(codex::store_for(&key, 1)->take("resp_1"));  // the thread is still good
}

TEST(CodexDialect, AResumeThatFailsReplaysTheConversationOnANewThread) {
  codex::settings s;
  s.retain_threads = true;
  int key = 0;
  auto d = codex::make_dialect(&key, s);
  codex::store_for(&key, 10)->put("resp_1", {"gone-thread", 2});
  replay w(*d, {{true, R"({"id":1,"method":"thread/resume","params":{}})"},
                {false, R"({"id":1,"error":{"code":-32600,"message":"no rollout found for thread id gone-thread"}})"},
                {true, R"({"id":2,"method":"thread/start","params":{}})"},
                {false, R"({"id":2,"result":{"thread":{"id":"t2"}}})"},
                {true, R"({"id":3,"method":"thread/inject_items","params":{}})"},
                {false, R"({"id":3,"result":{}})"},
                {true, R"({"id":4,"method":"turn/start","params":{}})"}});
  generation_request r = conversation({user("a"), {openai::message_role::assistant, "b"}, user("c")});
  r.original.previous_response_id = "resp_1";
  r.original.response_id = "resp_2";
  auto call = call_for(*d, r);
  w.run(*call);
  auto inject = w.sent_params("thread/inject_items");
  ASSERT_EQ(inject.size(), 1u);
  EXPECT_NE(inject[0].find(R"("threadId":"t2")"), std::string::npos);
  EXPECT_NE(inject[0].find(R"("text":"a")"), std::string::npos);
  EXPECT_EQ(w.sent_params("turn/start").size(), 1u);
  EXPECT_TRUE(w.events.empty());
}

TEST(CodexDialect, AConversationOfOnlyInstructionsIsRefused) {
  auto d = codex::make_dialect(nullptr, {});
  replay w(*d, {});
  generation_request r = conversation({{openai::message_role::system, "Be brief."}});
  auto call = call_for(*d, r);
  w.run(*call);
  EXPECT_TRUE(w.finished);
  EXPECT_TRUE(w.sent.empty());
  ASSERT_EQ(w.events.size(), 1u);
  EXPECT_EQ(w.events[0].base.http_status, 400);
  EXPECT_EQ(w.events[0].error_code, "invalid_request");
}

TEST(CodexDialect, WithoutRetainThreadsEveryRequestGetsAnEphemeralThread) {
  auto d = codex::make_dialect(nullptr, {});
  replay w(*d, {{true, R"({"id":1,"method":"thread/start","params":{}})"}});
  generation_request r = conversation({user("x")});
  r.original.previous_response_id = "resp_1";
  r.original.response_id = "resp_2";
  auto call = call_for(*d, r);
  w.run(*call);
  ASSERT_EQ(w.sent_params("thread/start").size(), 1u);
  EXPECT_NE(w.sent_params("thread/start")[0].find(R"("ephemeral":true)"), std::string::npos);
}

TEST(CodexDialect, ApprovalRequestsAreDeclined) {
  auto d = codex::make_dialect(nullptr, {});
  replay w(*d, load("turn"), "thread/start");
  generation_request r = conversation({user("Say hello")});
  auto call = call_for(*d, r);
  call->start(w);
  // Shapes per `codex app-server generate-ts` (v2 CommandExecutionRequestApprovalParams).
  jsonrpc::parser p;
  jsonrpc::message m;
  std::string err;
  ASSERT_TRUE(p.parse(R"({"id":"srv-1","method":"item/commandExecution/requestApproval","params":)"
                      R"({"kind":"command","threadId":"t1","turnId":"u1","itemId":"i1"}})",
                      m, err));
  std::string scratch;
  EXPECT_EQ(d->routing_key(m, scratch), "t1");
  call->on_message(w, m);
  EXPECT_EQ(w.sent.back(), R"({"id":"srv-1","result":{"decision":"decline"}})");
  // Unrouted: the legacy approval (keyed by conversationId), a question, an auth refresh.
  ASSERT_TRUE(p.parse(R"({"id":5,"method":"execCommandApproval","params":{"conversationId":"t9"}})",
                      m, err));
  EXPECT_EQ(d->routing_key(m, scratch), "t9");
  std::string out;
  d->answer_unrouted_request(m, out);
  EXPECT_NE(out.find(R"("decision":{"denied":)"), std::string::npos) << out;
  ASSERT_TRUE(p.parse(R"({"id":6,"method":"item/tool/requestUserInput","params":{"threadId":"t1"}})",
                      m, err));
  out.clear();
  d->answer_unrouted_request(m, out);
  EXPECT_NE(out.find(R"("error":{"code":-32601)"), std::string::npos) << out;
  ASSERT_TRUE(p.parse(R"({"id":7,"method":"mcpServer/elicitation/request","params":{"threadId":"t1"}})",
                      m, err));
  out.clear();
  d->answer_unrouted_request(m, out);
  EXPECT_EQ(out, R"({"id":7,"result":{"action":"decline","content":null,"_meta":null}})");
  EXPECT_EQ(out.find("jsonrpc"), std::string::npos);
}

TEST(CodexDialect, ThreadParamsMergeOverTheDefaults) {
  codex::settings s;
  s.thread_params = R"({"sandbox":"workspace-write","config":{"model_reasoning_effort":"low"},)"
                    R"("developerInstructions":"House rules.","model":"ignored","cwd":"/srv"})";
  EXPECT_EQ(codex::thread_start_params(s, "gpt", "Be brief.", true),
            R"({"model":"gpt","approvalPolicy":"never","ephemeral":true,)"
            R"("developerInstructions":"House rules.\n\nBe brief.","sandbox":"workspace-write",)"
            R"("config":{"model_reasoning_effort":"low"},"cwd":"/srv"})");
  EXPECT_EQ(codex::thread_start_params({}, "gpt", "", false),
            R"({"model":"gpt","approvalPolicy":"never","sandbox":"read-only","ephemeral":false})");
  std::string resume = codex::thread_resume_params(s, "t1", "gpt", "");
  EXPECT_NE(resume.find(R"("sandbox":"workspace-write")"), std::string::npos);
  EXPECT_NE(resume.find(R"("cwd":"/srv")"), std::string::npos);
  EXPECT_EQ(resume.find("ignored"), std::string::npos);
}

TEST(CodexDialect, FailedTurnErrorsMapOntoWorkerErrors) {
  worker_failure f = codex::failure_from_turn_error(
      R"({"message":"busy","codexErrorInfo":"serverOverloaded","additionalDetails":null})");
  EXPECT_EQ(f.http_status, 503);
  EXPECT_EQ(f.code, "worker_overloaded");
  EXPECT_TRUE(f.retryable);
  f = codex::failure_from_turn_error(
      R"({"message":"down","codexErrorInfo":{"responseStreamConnectionFailed":{"httpStatusCode":503}}})");
  EXPECT_EQ(f.code, "worker_overloaded");
  f = codex::failure_from_turn_error(R"({"message":"too long","codexErrorInfo":"contextWindowExceeded"})");
  EXPECT_EQ(f.http_status, 400);
  EXPECT_EQ(f.code, "context_length_exceeded");
  f = codex::failure_from_turn_error(R"({"message":"nope","codexErrorInfo":"modelNotFound"})");
  EXPECT_EQ(f.http_status, 404);
  f = codex::failure_from_turn_error("");
  EXPECT_EQ(f.http_status, 502);
  EXPECT_EQ(f.code, "worker_error");
  EXPECT_EQ(f.message, "the codex turn failed");
}

TEST(CodexDialect, UpstreamConfigSetsThreadParamsAndRetention) {
  auto cfg = std::make_shared<upstream_config>();
  cfg->thread_params = R"({"sandbox":"workspace-write"})";
  cfg->retain_threads = true;
  auto d = make_codex_dialect(cfg);
  replay w(*d, {{true, R"({"id":1,"method":"thread/start","params":{}})"}});
  generation_request r = conversation({user("x")});
  r.original.response_id = "resp_1";
  auto call = call_for(*d, r);
  w.run(*call);
  auto start = w.sent_params("thread/start");
  ASSERT_EQ(start.size(), 1u);
  EXPECT_NE(start[0].find(R"("sandbox":"workspace-write")"), std::string::npos) << start[0];
  EXPECT_NE(start[0].find(R"("ephemeral":false)"), std::string::npos) << start[0];
}

TEST(CodexDialect, RetainedThreadsAreBoundedOldestFirst) {
  codex::thread_store store(2);
  store.put("a", {"ta", 2});
  store.put("b", {"tb", 2});
  store.put("c", {"tc", 2});
  EXPECT_EQ(store.size(), 2u);
  EXPECT_FALSE(store.take("a"));
  EXPECT_EQ(store.take("c")->thread_id, "tc");
  for (int i = 0; i < 100; ++i) store.put(std::to_string(i), {"t", 1});
  EXPECT_EQ(store.size(), 2u);
}

}  // namespace
}  // namespace rc::server
