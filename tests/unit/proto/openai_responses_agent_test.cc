// Responses API: the requests real agent clients send (Codex CLI and the like): every tool type,
// the input item types they send back, and the members the mock ignores but the API accepts.
#include <gtest/gtest.h>

#include <string>

#include "openai_test_util.h"
#include "proto/openai_responses.h"
#include "proto/openai_responses_items.h"

namespace rc::openai {
namespace {

using test::expect_error;

std::optional<api_error> parse(std::string_view body, responses_request& out) {
  return test::run(parse_responses_request, body, out);
}
std::optional<api_error> parse(std::string_view body) {
  responses_request r;
  return parse(body, r);
}
std::string with(std::string_view extra) {
  return std::string(R"({"model":"m","input":"hi",)") + std::string(extra) + "}";
}
std::string with_input(std::string_view input) {
  return std::string(R"({"model":"m","input":)") + std::string(input) + "}";
}

// The shape of a Codex CLI 0.171 turn (trimmed): functions, a namespace, web_search, and the
// members it sends with store: false.
constexpr std::string_view codex_request = R"({
  "model":"m","instructions":"","stream":true,"store":false,"tool_choice":"auto",
  "parallel_tool_calls":true,"reasoning":{"effort":"medium","summary":"auto"},
  "include":["reasoning.encrypted_content"],"prompt_cache_key":"019b-thread",
  "client_metadata":{"x-codex-installation-id":"i","turn_id":"t"},
  "text":{"verbosity":"low"},"service_tier":"priority",
  "tools":[
    {"type":"function","name":"exec_command","description":"Runs a command","strict":false,
     "parameters":{"type":"object","properties":{"cmd":{"type":"string"}},"required":["cmd"]}},
    {"type":"namespace","name":"multi_agent_v1","description":"Sub-agents.","tools":[
      {"type":"function","name":"close_agent","strict":false,"parameters":{"type":"object"}},
      {"type":"custom","name":"spawn","description":"free text"}]},
    {"type":"web_search","external_web_access":false},
    {"type":"custom","name":"apply_patch","format":{"type":"grammar","syntax":"lark","definition":"x"}},
    {"type":"local_shell"},
    {"type":"mcp","server_label":"docs","server_url":"https://example.com/mcp"},
    {"type":"file_search","vector_store_ids":["vs_1"]},
    {"type":"code_interpreter","container":{"type":"auto"}},
    {"type":"image_generation"},
    {"type":"web_search_preview"},
    {"type":"computer_use_preview","display_width":800,"display_height":600,"environment":"linux"},
    {"type":"some_future_tool","knob":1}
  ],
  "input":[
    {"type":"message","id":"msg_a","role":"developer","content":[{"type":"input_text","text":"rules"}]},
    {"type":"message","role":"user","content":[{"type":"input_text","text":"list files"}]},
    {"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"gAAAA"},
    {"type":"function_call","id":"fc_1","call_id":"call_1","name":"exec_command","arguments":"{\"cmd\":\"ls\"}"},
    {"type":"function_call_output","call_id":"call_1","output":"a.txt"},
    {"type":"function_call","call_id":"call_2","namespace":"multi_agent_v1","name":"close_agent","arguments":"{}"},
    {"type":"function_call_output","call_id":"call_2","output":[{"type":"input_text","text":"closed"}]},
    {"type":"custom_tool_call","call_id":"call_3","name":"apply_patch","input":"*** Begin Patch"},
    {"type":"custom_tool_call_output","call_id":"call_3","output":"Done"},
    {"type":"local_shell_call","call_id":"call_4","status":"completed","action":{"type":"exec","command":["ls"]}},
    {"type":"local_shell_call_output","id":"call_4","output":"b.txt"},
    {"type":"web_search_call","id":"ws_1","status":"completed","action":{"type":"search","query":"q"}},
    {"type":"item_reference","id":"msg_old"},
    {"type":"message","role":"assistant","content":[{"type":"output_text","text":"ok"}],"phase":"final_answer"}
  ]})";

TEST(OpenaiResponsesAgent, CodexTurnIsAccepted) {
  responses_request r;
  ASSERT_FALSE(parse(codex_request, r));
  const response_settings& s = r.settings;
  EXPECT_FALSE(s.store);
  EXPECT_TRUE(r.stream);
  ASSERT_EQ(s.tools.size(), 1u);  // only the flat function is callable by engines
  EXPECT_EQ(s.tools[0].name, "exec_command");
  ASSERT_EQ(s.tool_entries.size(), 12u);
  EXPECT_EQ(s.tool_entries[0], "");
  EXPECT_EQ(s.tool_entries[2], R"({"type":"web_search","external_web_access":false})");
  EXPECT_EQ(s.tool_entries[11], R"({"type":"some_future_tool","knob":1})");
  EXPECT_EQ(s.reasoning_effort, "medium");
  EXPECT_EQ(s.reasoning_summary, "auto");
  EXPECT_EQ(s.prompt_cache_key, "019b-thread");
  EXPECT_EQ(s.service_tier, "priority");
  EXPECT_EQ(s.text_verbosity, "low");

  ASSERT_EQ(r.input.size(), 14u);
  EXPECT_EQ(r.input[0].role, message_role::developer);
  EXPECT_EQ(r.input[2].type, input_item_type::other);
  EXPECT_EQ(r.input[2].type_name, "reasoning");
  EXPECT_EQ(r.input[2].text, "");  // nothing a text engine can use
  EXPECT_EQ(r.input[2].raw_json,
            R"({"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"gAAAA"})");
  EXPECT_EQ(r.input[5].tool_namespace, "multi_agent_v1");
  EXPECT_EQ(r.input[6].output, "closed");
  EXPECT_EQ(r.input[7].type, input_item_type::custom_tool_call);
  EXPECT_EQ(r.input[7].arguments, "*** Begin Patch");
  EXPECT_EQ(r.input[8].type, input_item_type::custom_tool_call_output);
  EXPECT_EQ(r.input[8].output, "Done");
  EXPECT_EQ(r.input[9].role, message_role::assistant);
  EXPECT_EQ(r.input[9].text, R"(local_shell({"type":"exec","command":["ls"]}))");
  EXPECT_EQ(r.input[10].role, message_role::tool);
  EXPECT_EQ(r.input[10].text, "b.txt");
  EXPECT_EQ(r.input[12].type_name, "item_reference");
}

TEST(OpenaiResponsesAgent, ResponseEchoesToolsAsSent) {
  responses_request req;
  ASSERT_FALSE(parse(codex_request, req));
  response_object r;
  r.id = "resp_1";
  r.settings = req.settings;
  byte_buffer b;
  write_response(b, r);
  std::string s(b.view());
  test::expect_valid_json(s);
  EXPECT_NE(s.find(R"("tools":[{"type":"function","description":"Runs a command",)"
                   R"("name":"exec_command",)"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find(R"(,{"type":"namespace","name":"multi_agent_v1",)"), std::string::npos) << s;
  EXPECT_NE(s.find(R"({"type":"some_future_tool","knob":1}])"), std::string::npos) << s;
  EXPECT_NE(s.find(R"("reasoning":{"effort":"medium","summary":"auto"})"), std::string::npos);
  EXPECT_NE(s.find(R"("prompt_cache_key":"019b-thread")"), std::string::npos);
  EXPECT_NE(s.find(R"("service_tier":"priority")"), std::string::npos);
  EXPECT_NE(s.find(R"("store":false)"), std::string::npos);
  EXPECT_NE(s.find(R"("verbosity":"low")"), std::string::npos);
}

TEST(OpenaiResponsesAgent, ToolChoiceKinds) {
  responses_request r;
  ASSERT_FALSE(parse(with(R"("tools":[{"type":"web_search"}],"tool_choice":{"type":"web_search"})"),
                     r));
  EXPECT_EQ(r.settings.tool_choice.mode, tool_choice_mode::auto_);
  EXPECT_EQ(r.settings.tool_choice.raw_json, R"({"type":"web_search"})");
  response_object o;
  o.settings = r.settings;
  byte_buffer b;
  write_response(b, o);
  EXPECT_NE(b.view().find(R"("tool_choice":{"type":"web_search"})"), std::string::npos);
  // "required" is satisfied by any tool, not only functions.
  EXPECT_FALSE(parse(with(R"("tools":[{"type":"web_search"}],"tool_choice":"required")")));
  EXPECT_FALSE(parse(with(R"("tools":[{"type":"custom","name":"p"}],)"
                          R"("tool_choice":{"type":"custom","name":"p"})")));
  EXPECT_FALSE(parse(with(R"("tools":[{"type":"function","name":"f"}],"tool_choice":)"
                          R"({"type":"allowed_tools","mode":"auto","tools":[{"type":"function","name":"f"}]})")));
  expect_error(parse(with(R"("tool_choice":{"type":"allowed_tools","mode":"often","tools":[]})")),
               "Invalid value: 'often'. Supported values are: 'auto' and 'required'.",
               "tool_choice.mode", "invalid_value");
  expect_error(parse(with(R"("tool_choice":{"type":"custom"})")),
               "Missing required parameter: 'tool_choice.name'.", "tool_choice.name",
               "missing_required_parameter");
  expect_error(parse(with(R"("tool_choice":{"type":"mcp"})")),
               "Missing required parameter: 'tool_choice.server_label'.",
               "tool_choice.server_label", "missing_required_parameter");
  // A named function must still be declared.
  expect_error(parse(with(R"("tools":[{"type":"web_search"}],)"
                          R"("tool_choice":{"type":"function","name":"f"})")),
               "Invalid value for 'tool_choice': function 'f' is not one of the functions "
               "declared in 'tools'.",
               "tool_choice", "invalid_value");
}

TEST(OpenaiResponsesAgent, ToolsKeepRealValidation) {
  expect_error(parse(with(R"("tools":[{"name":"x"}])")),
               "Missing required parameter: 'tools[0].type'.", "tools[0].type",
               "missing_required_parameter");
  expect_error(parse(with(R"("tools":[{"type":"namespace","tools":[]}])")),
               "Missing required parameter: 'tools[0].name'.", "tools[0].name",
               "missing_required_parameter");
  expect_error(parse(with(R"("tools":[{"type":"namespace","name":"n"}])")),
               "Missing required parameter: 'tools[0].tools'.", "tools[0].tools",
               "missing_required_parameter");
  expect_error(parse(with(R"("tools":[{"type":"namespace","name":"n","tools":[{"type":"function"}]}])")),
               "Missing required parameter: 'tools[0].tools[0].name'.", "tools[0].tools[0].name",
               "missing_required_parameter");
  expect_error(parse(with(R"("tools":[{"type":"namespace","name":"n","tools":[{"type":"web_search"}]}])")),
               "Invalid value: 'web_search'. Supported values are: 'function'.",
               "tools[0].tools[0].type", "invalid_value");
  expect_error(parse(with(R"("tools":[{"type":"custom"}])")),
               "Missing required parameter: 'tools[0].name'.", "tools[0].name",
               "missing_required_parameter");
  expect_error(parse(with(R"("tools":[{"type":"custom","name":"p","format":{"type":"regex"}}])")),
               "Invalid value: 'regex'. Supported values are: 'text' and 'grammar'.",
               "tools[0].format.type", "invalid_value");
  expect_error(parse(with(R"("tools":[{"type":"mcp"}])")),
               "Missing required parameter: 'tools[0].server_label'.", "tools[0].server_label",
               "missing_required_parameter");
  expect_error(parse(with(R"("tools":[{"type":"file_search","vector_store_ids":"vs"}])")),
               "Invalid type for 'tools[0].vector_store_ids': expected an array, but got a string "
               "instead.",
               "tools[0].vector_store_ids", "invalid_type");
  expect_error(parse(with(R"("tools":[{"type":"computer_use_preview","display_width":1,"display_height":2}])")),
               "Missing required parameter: 'tools[0].environment'.", "tools[0].environment",
               "missing_required_parameter");
}

TEST(OpenaiResponsesAgent, MembersKeepRealValidation) {
  expect_error(parse(with(R"("reasoning":{"effort":"huge"})")),
               "Invalid value: 'huge'. Supported values are: 'none', 'minimal', 'low', 'medium', "
               "'high', and 'xhigh'.",
               "reasoning.effort", "invalid_value");
  expect_error(parse(with(R"("reasoning":"high")")),
               "Invalid type for 'reasoning': expected an object, but got a string instead.",
               "reasoning", "invalid_type");
  expect_error(parse(with(R"("include":"reasoning.encrypted_content")")),
               "Invalid type for 'include': expected an array, but got a string instead.",
               "include", "invalid_type");
  expect_error(parse(with(R"("include":[1])")),
               "Invalid type for 'include[0]': expected a string, but got an integer instead.",
               "include[0]", "invalid_type");
  expect_error(parse(with(R"("client_metadata":[])")),
               "Invalid type for 'client_metadata': expected an object, but got an array instead.",
               "client_metadata", "invalid_type");
  expect_error(parse(with(R"("prompt_cache_key":1)")),
               "Invalid type for 'prompt_cache_key': expected a string, but got an integer "
               "instead.",
               "prompt_cache_key", "invalid_type");
  expect_error(parse(with(R"("service_tier":"gold")")),
               "Invalid value: 'gold'. Supported values are: 'auto', 'default', 'flex', 'scale', "
               "and 'priority'.",
               "service_tier", "invalid_value");
  expect_error(parse(with(R"("text":{"verbosity":"loud"})")),
               "Invalid value: 'loud'. Supported values are: 'low', 'medium', and 'high'.",
               "text.verbosity", "invalid_value");
  expect_error(parse(with(R"("top_logprobs":21)")),
               "Invalid 'top_logprobs': integer above maximum value. Expected a value <= 20, but "
               "got 21 instead.",
               "top_logprobs", "integer_above_max_value");
}

TEST(OpenaiResponsesAgent, InputItemsKeepRealValidation) {
  expect_error(parse(with_input(R"([{"type":"custom_tool_call","call_id":"c","name":"p"}])")),
               "Missing required parameter: 'input[0].input'.", "input[0].input",
               "missing_required_parameter");
  expect_error(parse(with_input(R"([{"type":"custom_tool_call_output","call_id":"c"}])")),
               "Missing required parameter: 'input[0].output'.", "input[0].output",
               "missing_required_parameter");
  expect_error(parse(with_input(R"([{"type":"local_shell_call","call_id":"c"}])")),
               "Missing required parameter: 'input[0].action'.", "input[0].action",
               "missing_required_parameter");
  expect_error(parse(with_input(R"([{"type":"item_reference"}])")),
               "Missing required parameter: 'input[0].id'.", "input[0].id",
               "missing_required_parameter");
  expect_error(parse(with_input(R"([{"type":"function_call","call_id":"c","name":"f",)"
                                R"("arguments":"{}","namespace":3}])")),
               "Invalid type for 'input[0].namespace': expected a string, but got an integer "
               "instead.",
               "input[0].namespace", "invalid_type");
}

TEST(OpenaiResponsesAgent, StoredItemsListAsSent) {
  responses_request r;
  ASSERT_FALSE(parse(with_input(R"([{"type":"reasoning","summary":[{"type":"summary_text","text":"s"}]},)"
                                R"({"type":"custom_tool_call","call_id":"c","name":"p","input":"x"}])"),
                     r));
  set_item_id(r.input[0], "rs_9");
  set_item_id(r.input[1], "ctc_9");
  item_page_request asc;
  asc.ascending = true;
  byte_buffer b;
  ASSERT_FALSE(write_input_item_page(b, r.input, asc));
  test::expect_valid_json(b.view());
  EXPECT_EQ(b.view(),
            R"({"object":"list","data":[)"
            R"({"id":"rs_9","type":"reasoning","summary":[{"type":"summary_text","text":"s"}]},)"
            R"({"id":"ctc_9","type":"custom_tool_call","call_id":"c","name":"p","input":"x",)"
            R"("status":"completed"}],"first_id":"rs_9","last_id":"ctc_9","has_more":false})");
}

}  // namespace
}  // namespace rc::openai
