// Chat Completions: what agent clients send beyond function tools (custom tools, custom tool
// calls in the history, tool_choice kinds such as allowed_tools) and the newer members.
#include <gtest/gtest.h>

#include <string>

#include "openai_test_util.h"
#include "proto/openai_chat.h"

namespace rc::openai {
namespace {

using test::expect_error;

std::optional<api_error> parse(std::string_view body, chat_request& out) {
  return test::run(parse_chat_request, body, out);
}
std::optional<api_error> parse(std::string_view body) {
  chat_request r;
  return parse(body, r);
}
std::string with(std::string_view extra) {
  return std::string(R"({"model":"m","messages":[{"role":"user","content":"hi"}],)") +
         std::string(extra) + "}";
}

TEST(OpenaiChatAgent, CustomToolsAndToolChoiceKinds) {
  chat_request r;
  ASSERT_FALSE(parse(with(R"("tools":[{"type":"function","function":{"name":"f"}},
      {"type":"custom","custom":{"name":"apply_patch","description":"d",
       "format":{"type":"grammar","grammar":{"syntax":"lark","definition":"x"}}}}],
      "tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"required",
       "tools":[{"type":"function","function":{"name":"f"}}]}},
      "reasoning_effort":"low","verbosity":"low","prompt_cache_key":"k",
      "safety_identifier":"s","service_tier":"auto")"),
                     r));
  ASSERT_EQ(r.tools.size(), 1u);  // the function: custom tools are validated, not callable
  EXPECT_EQ(r.tools[0].name, "f");
  EXPECT_EQ(r.tool_choice.mode, tool_choice_mode::auto_);
  EXPECT_NE(r.tool_choice.raw_json.find("allowed_tools"), std::string::npos);
  EXPECT_FALSE(parse(with(R"("tools":[{"type":"custom","custom":{"name":"p"}}],)"
                          R"("tool_choice":{"type":"custom","custom":{"name":"p"}})")));
  EXPECT_FALSE(parse(with(R"("tools":[{"type":"custom","custom":{"name":"p"}}],)"
                          R"("tool_choice":"required")")));
}

TEST(OpenaiChatAgent, CustomToolCallsInTheHistory) {
  chat_request r;
  ASSERT_FALSE(parse(R"({"model":"m","messages":[{"role":"user","content":"patch it"},
      {"role":"assistant","tool_calls":[{"id":"c1","type":"custom",
        "custom":{"name":"apply_patch","input":"*** Begin"}}]},
      {"role":"tool","tool_call_id":"c1","content":"Done"}]})",
                     r));
  ASSERT_EQ(r.messages[1].tool_calls.size(), 1u);
  EXPECT_EQ(r.messages[1].tool_calls[0].name, "apply_patch");
  EXPECT_EQ(r.messages[1].tool_calls[0].arguments, "*** Begin");
  expect_error(parse(R"({"model":"m","messages":[{"role":"assistant","tool_calls":[
      {"id":"c1","type":"custom","custom":{"name":"p"}}]}]})"),
               "Missing required parameter: 'messages[0].tool_calls[0].custom.input'.",
               "messages[0].tool_calls[0].custom.input", "missing_required_parameter");
  expect_error(parse(R"({"model":"m","messages":[{"role":"assistant","tool_calls":[
      {"id":"c1","type":"shell","shell":{}}]}]})"),
               "Invalid value: 'shell'. Supported values are: 'function' and 'custom'.",
               "messages[0].tool_calls[0].type", "invalid_value");
}

TEST(OpenaiChatAgent, KeepsRealValidation) {
  expect_error(parse(with(R"("tools":[{"type":"custom"}])")),
               "Missing required parameter: 'tools[0].custom'.", "tools[0].custom",
               "missing_required_parameter");
  expect_error(parse(with(R"("tools":[{"type":"custom","custom":{"description":"d"}}])")),
               "Missing required parameter: 'tools[0].custom.name'.", "tools[0].custom.name",
               "missing_required_parameter");
  expect_error(parse(with(R"("tools":[{"type":"web_search","function":{"name":"f"}}])")),
               "Invalid value: 'web_search'. Supported values are: 'function'.", "tools[0].type",
               "invalid_value");
  expect_error(parse(with(R"("tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"x","tools":[]}})")),
               "Invalid value: 'x'. Supported values are: 'auto' and 'required'.",
               "tool_choice.allowed_tools.mode", "invalid_value");
  expect_error(parse(with(R"("tool_choice":{"type":"custom","custom":{}})")),
               "Missing required parameter: 'tool_choice.custom.name'.", "tool_choice.custom.name",
               "missing_required_parameter");
  expect_error(parse(with(R"("tool_choice":{"type":"mcp"})")),
               "Invalid value: 'mcp'. Supported values are: 'function', 'custom', and "
               "'allowed_tools'.",
               "tool_choice.type", "invalid_value");
}

}  // namespace
}  // namespace rc::openai
