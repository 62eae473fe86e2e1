// Chat Completions request validation: every rule, with OpenAI's exact envelope.
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
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

// A valid request with `extra` members spliced in (e.g. R"("n":2)").
std::string with(std::string_view extra) {
  std::string s = R"({"model":"m","messages":[{"role":"user","content":"hi"}])";
  if (!extra.empty()) {
    s += ',';
    s.append(extra);
  }
  s += '}';
  return s;
}

std::string with_messages(std::string_view messages) {
  return std::string(R"({"model":"m","messages":)") + std::string(messages) + "}";
}

TEST(OpenaiChat, ParsesAFullRequest) {
  chat_request r;
  auto e = parse(R"({
    "model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true},
    "messages": [
      {"role": "developer", "content": "Be brief."},
      {"role": "user", "name": "ann", "content": [
        {"type": "text", "text": "Look "}, {"type": "image_url", "image_url": {"url": "http://x"}},
        {"type": "text", "text": "here."}]},
      {"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{\"a\":1}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "42"}
    ],
    "n": 2, "max_completion_tokens": 100, "temperature": 0.5, "top_p": 1, "presence_penalty": -1.5,
    "frequency_penalty": 2, "stop": ["\n", "END"], "seed": -7, "user": "u-1",
    "tools": [{"type": "function", "function": {"name": "get", "description": "d",
               "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}},
               "strict": true}}],
    "tool_choice": {"type": "function", "function": {"name": "get"}},
    "parallel_tool_calls": false, "response_format": {"type": "json_object"},
    "logprobs": true, "top_logprobs": 3, "metadata": {"k": "v"}, "store": true,
    "logit_bias": {"50256": -100, "1": 2.5}
  })",
                 r);
  ASSERT_FALSE(e) << e->message;
  EXPECT_EQ(r.model, "gpt-4o");
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0].role, message_role::developer);
  EXPECT_EQ(r.messages[1].content, "Look here.");
  EXPECT_EQ(r.messages[1].media_parts, 1u);
  EXPECT_EQ(r.messages[1].name, "ann");
  EXPECT_TRUE(r.messages[2].content_null);
  ASSERT_EQ(r.messages[2].tool_calls.size(), 1u);
  EXPECT_EQ(r.messages[2].tool_calls[0].arguments, "{\"a\":1}");
  EXPECT_EQ(r.messages[3].tool_call_id, "call_1");
  EXPECT_EQ(r.n, 2u);
  EXPECT_EQ(r.max_tokens, 100);
  EXPECT_EQ(r.max_tokens_source, max_tokens_param::max_completion_tokens);
  EXPECT_EQ(r.temperature, 0.5);
  EXPECT_EQ(r.top_p, 1.0);
  EXPECT_EQ(r.presence_penalty, -1.5);
  EXPECT_EQ(r.frequency_penalty, 2.0);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n", "END"}));
  EXPECT_EQ(r.seed, -7);
  EXPECT_EQ(r.user, "u-1");
  ASSERT_EQ(r.tools.size(), 1u);
  EXPECT_EQ(r.tools[0].parameters_json,
            R"({"type":"object","properties":{"a":{"type":"integer"}}})");
  EXPECT_EQ(r.tools[0].strict, true);
  EXPECT_EQ(r.tool_choice.mode, tool_choice_mode::function);
  EXPECT_EQ(r.tool_choice.function_name, "get");
  EXPECT_EQ(r.parallel_tool_calls, false);
  EXPECT_EQ(r.response_format.type, output_format::json_object);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 3u);
  EXPECT_EQ(r.metadata, (metadata_pairs{{"k", "v"}}));
  EXPECT_EQ(r.store, true);
  ASSERT_EQ(r.logit_bias.size(), 2u);
  EXPECT_EQ(r.logit_bias[0].first, 50256);
  EXPECT_EQ(r.logit_bias[1].second, 2.5);
}

TEST(OpenaiChat, DefaultsAndNullsCountAsAbsent) {
  chat_request r;
  ASSERT_FALSE(
      parse(with(R"("temperature":null,"stop":null,"n":null,"tools":null,"stream":null)"), r));
  EXPECT_FALSE(r.temperature);
  EXPECT_TRUE(r.stop.empty());
  EXPECT_EQ(r.n, 1u);
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(r.max_tokens_source, max_tokens_param::none);
}

TEST(OpenaiChat, UnknownMembersAreIgnored) {
  chat_request r;
  EXPECT_FALSE(parse(with(R"("top_k":40,"chat_template_kwargs":{"x":[1]},"vendor":null)"), r));
}

TEST(OpenaiChat, DuplicateMembersLastWins) {
  chat_request r;
  ASSERT_FALSE(parse(R"({"model":"a","messages":[{"role":"user","content":"x"}],"model":"b"})", r));
  EXPECT_EQ(r.model, "b");
}

TEST(OpenaiChat, ErrorsComeInAFixedOrder) {
  // temperature is invalid too, but the missing model is reported first wherever it sits.
  expect_error(parse(R"({"temperature":9,"messages":[]})"), "Missing required parameter: 'model'.",
               "model", "missing_required_parameter");
  expect_error(parse(R"({"temperature":9,"model":"m"})"), "Missing required parameter: 'messages'.",
               "messages", "missing_required_parameter");
}

TEST(OpenaiChat, Model) {
  expect_error(parse(R"({"model":1,"messages":[{"role":"user","content":"x"}]})"),
               "Invalid type for 'model': expected a string, but got an integer instead.", "model",
               "invalid_type");
  expect_error(parse(R"({"model":null,"messages":[]})"), "Missing required parameter: 'model'.",
               "model", "missing_required_parameter");
}

TEST(OpenaiChat, Messages) {
  expect_error(parse(with_messages(R"("hi")")),
               "Invalid type for 'messages': expected an array, but got a string instead.",
               "messages", "invalid_type");
  expect_error(parse(with_messages("[]")),
               "Invalid 'messages': empty array. Expected an array with minimum length 1, but got "
               "an empty array instead.",
               "messages", "empty_array");
  expect_error(parse(with_messages("[1]")),
               "Invalid type for 'messages[0]': expected an object, but got an integer instead.",
               "messages[0]", "invalid_type");
  expect_error(parse(with_messages(R"([{"content":"x"}])")),
               "Missing required parameter: 'messages[0].role'.", "messages[0].role",
               "missing_required_parameter");
  expect_error(
      parse(with_messages(R"([{"role":"user","content":"x"},{"role":"bot","content":"y"}])")),
      "Invalid value: 'bot'. Supported values are: 'system', 'assistant', 'user', "
      "'function', 'tool', and 'developer'.",
      "messages[1].role", "invalid_value");
  expect_error(
      parse(with_messages(R"([{"role":7,"content":"x"}])")),
      "Invalid type for 'messages[0].role': expected a string, but got an integer instead.",
      "messages[0].role", "invalid_type");
}

TEST(OpenaiChat, MessageCountIsBounded) {
  auto messages = [](size_t n) {
    const std::string one = R"({"role":"user","content":"x"})";
    std::string s = "[" + one;
    for (size_t i = 1; i < n; ++i) s += "," + one;
    return s + "]";
  };
  chat_request r;
  ASSERT_FALSE(parse(with_messages(messages(chat_messages_max)), r));
  EXPECT_EQ(r.messages.size(), chat_messages_max);
  expect_error(parse(with_messages(messages(chat_messages_max + 1))),
               "Invalid 'messages': array too long. Expected an array with maximum length 2048, "
               "but got an array with length 2049 instead.",
               "messages", "array_above_max_length");
}

TEST(OpenaiChat, MessageContent) {
  expect_error(parse(with_messages(R"([{"role":"user"}])")),
               "Missing required parameter: 'messages[0].content'.", "messages[0].content",
               "missing_required_parameter");
  expect_error(parse(with_messages(R"([{"role":"user","content":null}])")),
               "Missing required parameter: 'messages[0].content'.", "messages[0].content",
               "missing_required_parameter");
  expect_error(parse(with_messages(R"([{"role":"user","content":{"text":"x"}}])")),
               "Invalid type for 'messages[0].content': expected one of a string or array of "
               "objects, but got an object instead.",
               "messages[0].content", "invalid_type");
  expect_error(parse(with_messages(R"([{"role":"user","content":[]}])")),
               "Invalid 'messages[0].content': empty array. Expected an array with minimum length "
               "1, but got an empty array instead.",
               "messages[0].content", "empty_array");
  expect_error(parse(with_messages(R"([{"role":"user","content":["x"]}])")),
               "Invalid type for 'messages[0].content[0]': expected an object, but got a string "
               "instead.",
               "messages[0].content[0]", "invalid_type");
  expect_error(parse(with_messages(R"([{"role":"user","content":[{"text":"x"}]}])")),
               "Missing required parameter: 'messages[0].content[0].type'.",
               "messages[0].content[0].type", "missing_required_parameter");
  expect_error(parse(with_messages(R"([{"role":"user","content":[{"type":"text"}]}])")),
               "Missing required parameter: 'messages[0].content[0].text'.",
               "messages[0].content[0].text", "missing_required_parameter");
  expect_error(parse(with_messages(R"([{"role":"user","content":[{"type":"video"}]}])")),
               "Invalid value: 'video'. Supported values are: 'text', 'image_url', 'input_audio', "
               "and 'file'.",
               "messages[0].content[0].type", "invalid_value");
  expect_error(
      parse(with_messages(
          R"([{"role":"system","content":[{"type":"image_url","image_url":{"url":"u"}}]}])")),
      "Invalid value: 'image_url'. Supported values are: 'text'.", "messages[0].content[0].type",
      "invalid_value");
  expect_error(parse(with_messages(R"([{"role":"user","content":[{"type":"image_url"}]}])")),
               "Missing required parameter: 'messages[0].content[0].image_url'.",
               "messages[0].content[0].image_url", "missing_required_parameter");
  chat_request r;
  ASSERT_FALSE(
      parse(with_messages(R"([{"role":"assistant","content":[{"type":"refusal","refusal":"no"},
                                       {"type":"text","text":"ok"}]}])"),
            r));
  EXPECT_EQ(r.messages[0].content, "ok");
  ASSERT_FALSE(parse(with_messages(R"([{"role":"user","content":[{"type":"input_audio",
      "input_audio":{"data":"AAA=","format":"wav"}},{"type":"file","file":{"file_id":"f"}}]}])"),
                     r));
  EXPECT_EQ(r.messages[0].media_parts, 2u);
  EXPECT_EQ(r.messages[0].content, "");
}

TEST(OpenaiChat, ToolAndAssistantMessages) {
  expect_error(parse(with_messages(R"([{"role":"tool","content":"42"}])")),
               "Missing required parameter: 'messages[0].tool_call_id'.",
               "messages[0].tool_call_id", "missing_required_parameter");
  expect_error(parse(with_messages(R"([{"role":"assistant"}])")),
               "Missing required parameter: 'messages[0].content'.", "messages[0].content",
               "missing_required_parameter");
  expect_error(parse(with_messages(R"([{"role":"assistant","tool_calls":[]}])")),
               "Invalid 'messages[0].tool_calls': empty array. Expected an array with minimum "
               "length 1, but got an empty array instead.",
               "messages[0].tool_calls", "empty_array");
  expect_error(
      parse(with_messages(
          R"([{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"arguments":"{}"}}]}])")),
      "Missing required parameter: 'messages[0].tool_calls[0].function.name'.",
      "messages[0].tool_calls[0].function.name", "missing_required_parameter");
  expect_error(parse(with_messages(
                   R"([{"role":"assistant","tool_calls":[{"type":"function","function":{}}]}])")),
               "Missing required parameter: 'messages[0].tool_calls[0].id'.",
               "messages[0].tool_calls[0].id", "missing_required_parameter");
  expect_error(parse(with_messages(R"([{"role":"function","content":"x"}])")),
               "Missing required parameter: 'messages[0].name'.", "messages[0].name",
               "missing_required_parameter");
}

TEST(OpenaiChat, StreamOptionsNeedStream) {
  expect_error(parse(with(R"("stream_options":{"include_usage":true})")),
               "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
               "stream_options", std::nullopt);
  expect_error(parse(with(R"("stream":false,"stream_options":{"include_usage":true})")),
               "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
               "stream_options", std::nullopt);
  expect_error(parse(with(R"("stream":"yes")")),
               "Invalid type for 'stream': expected a boolean, but got a string instead.", "stream",
               "invalid_type");
  expect_error(parse(with(R"("stream":true,"stream_options":{"include_usage":1})")),
               "Invalid type for 'stream_options.include_usage': expected a boolean, but got an "
               "integer instead.",
               "stream_options.include_usage", "invalid_type");
  chat_request r;
  ASSERT_FALSE(parse(with(R"("stream":true,"stream_options":{})"), r));
  EXPECT_FALSE(r.include_usage);
}

TEST(OpenaiChat, N) {
  expect_error(
      parse(with(R"("n":0)")),
      "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead.", "n",
      "integer_below_min_value");
  expect_error(parse(with(R"("n":129)")),
               "Invalid 'n': integer above maximum value. Expected a value <= 128, but got 129 "
               "instead.",
               "n", "integer_above_max_value");
  expect_error(parse(with(R"("n":1.5)")),
               "Invalid type for 'n': expected an integer, but got a decimal instead.", "n",
               "invalid_type");
  expect_error(parse(with(R"("n":18446744073709551615)")),
               "Invalid 'n': integer above maximum value. Expected a value <= 128, but got "
               "18446744073709551615 instead.",
               "n", "integer_above_max_value");
  chat_request r;
  ASSERT_FALSE(parse(with(R"("n":2.0)"), r));
  EXPECT_EQ(r.n, 2u);
}

TEST(OpenaiChat, SamplingRanges) {
  expect_error(parse(with(R"("temperature":"hot")")),
               "Invalid type for 'temperature': expected a decimal, but got a string instead.",
               "temperature", "invalid_type");
  expect_error(parse(with(R"("temperature":3)")),
               "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got "
               "3 instead.",
               "temperature", "decimal_above_max_value");
  expect_error(parse(with(R"("temperature":2.5)")),
               "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got "
               "2.5 instead.",
               "temperature", "decimal_above_max_value");
  expect_error(parse(with(R"("temperature":-0.5)")),
               "Invalid 'temperature': decimal below minimum value. Expected a value >= 0, but got "
               "-0.5 instead.",
               "temperature", "decimal_below_min_value");
  expect_error(parse(with(R"("top_p":1.01)")),
               "Invalid 'top_p': decimal above maximum value. Expected a value <= 1, but got 1.01 "
               "instead.",
               "top_p", "decimal_above_max_value");
  expect_error(parse(with(R"("presence_penalty":-3)")),
               "Invalid 'presence_penalty': decimal below minimum value. Expected a value >= -2, "
               "but got -3 instead.",
               "presence_penalty", "decimal_below_min_value");
  expect_error(parse(with(R"("frequency_penalty":true)")),
               "Invalid type for 'frequency_penalty': expected a decimal, but got a boolean "
               "instead.",
               "frequency_penalty", "invalid_type");
  chat_request r;
  ASSERT_FALSE(
      parse(with(R"("temperature":0,"top_p":0,"presence_penalty":2,"frequency_penalty":-2)"), r));
  EXPECT_EQ(r.temperature, 0.0);
}

TEST(OpenaiChat, MaxTokens) {
  expect_error(parse(with(R"("max_tokens":0)")),
               "Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got "
               "0 instead.",
               "max_tokens", "integer_below_min_value");
  expect_error(parse(with(R"("max_tokens":"10")")),
               "Invalid type for 'max_tokens': expected an integer, but got a string instead.",
               "max_tokens", "invalid_type");
  expect_error(parse(with(R"("max_completion_tokens":-1)")),
               "Invalid 'max_completion_tokens': integer below minimum value. Expected a value >= "
               "1, but got -1 instead.",
               "max_completion_tokens", "integer_below_min_value");

  chat_request r;
  ASSERT_FALSE(parse(with(R"("max_tokens":6000)"), r));
  EXPECT_EQ(r.max_tokens_source, max_tokens_param::max_tokens);
  expect_error(check_completion_tokens(r, 4096),
               "max_tokens is too large: 6000. This model supports at most 4096 completion tokens, "
               "whereas you provided 6000.",
               "max_tokens", std::nullopt);
  EXPECT_FALSE(check_completion_tokens(r, 6000));

  ASSERT_FALSE(parse(with(R"("max_tokens":10,"max_completion_tokens":32000)"), r));
  EXPECT_EQ(r.max_tokens, 32000);
  expect_error(check_completion_tokens(r, 16384),
               "max_completion_tokens is too large: 32000. This model supports at most 16384 "
               "completion tokens, whereas you provided 32000.",
               "max_completion_tokens", std::nullopt);
  ASSERT_FALSE(parse(with(""), r));
  EXPECT_FALSE(check_completion_tokens(r, 1));
}

TEST(OpenaiChat, Stop) {
  expect_error(parse(with(R"("stop":["a","b","c","d","e"])")),
               "Invalid 'stop': array too long. Expected an array with maximum length 4, but got "
               "an array with length 5 instead.",
               "stop", "array_above_max_length");
  expect_error(parse(with(R"("stop":["a",1])")),
               "Invalid type for 'stop[1]': expected a string, but got an integer instead.",
               "stop[1]", "invalid_type");
  expect_error(parse(with(R"("stop":5)")),
               "Invalid type for 'stop': expected one of a string or array of strings, but got an "
               "integer instead.",
               "stop", "invalid_type");
  chat_request r;
  ASSERT_FALSE(parse(with(R"("stop":"###")"), r));
  EXPECT_EQ(r.stop, std::vector<std::string>{"###"});
}

TEST(OpenaiChat, SeedUserLogprobs) {
  expect_error(parse(with(R"("seed":1.5)")),
               "Invalid type for 'seed': expected an integer, but got a decimal instead.", "seed",
               "invalid_type");
  expect_error(parse(with(R"("seed":9223372036854775808)")),
               "Invalid 'seed': integer above maximum value. Expected a value <= "
               "9223372036854775807, but got 9223372036854775808 instead.",
               "seed", "integer_above_max_value");
  expect_error(parse(with(R"("user":5)")),
               "Invalid type for 'user': expected a string, but got an integer instead.", "user",
               "invalid_type");
  expect_error(parse(with(R"("top_logprobs":21)")),
               "Invalid 'top_logprobs': integer above maximum value. Expected a value <= 20, but "
               "got 21 instead.",
               "top_logprobs", "integer_above_max_value");
  expect_error(parse(with(R"("logprobs":"true")")),
               "Invalid type for 'logprobs': expected a boolean, but got a string instead.",
               "logprobs", "invalid_type");
}

TEST(OpenaiChat, Tools) {
  expect_error(parse(with(R"("tools":{})")),
               "Invalid type for 'tools': expected an array, but got an object instead.", "tools",
               "invalid_type");
  expect_error(parse(with(R"("tools":[{"function":{"name":"f"}}])")),
               "Missing required parameter: 'tools[0].type'.", "tools[0].type",
               "missing_required_parameter");
  expect_error(parse(with(R"("tools":[{"type":"retrieval"}])")),
               "Invalid value: 'retrieval'. Supported values are: 'function'.", "tools[0].type",
               "invalid_value");
  expect_error(parse(with(R"("tools":[{"type":"function"}])")),
               "Missing required parameter: 'tools[0].function'.", "tools[0].function",
               "missing_required_parameter");
  expect_error(parse(with(R"("tools":[{"type":"function","function":{"description":"d"}}])")),
               "Missing required parameter: 'tools[0].function.name'.", "tools[0].function.name",
               "missing_required_parameter");
  expect_error(parse(with(R"("tools":[{"type":"function","function":{"name":"get weather"}}])")),
               "Invalid 'tools[0].function.name': string does not match pattern. Expected a "
               "string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
               "tools[0].function.name", "invalid_value");
  std::string long_name(65, 'a');
  expect_error(
      parse(with(R"("tools":[{"type":"function","function":{"name":")" + long_name + "\"}}]")),
      "Invalid 'tools[0].function.name': string too long. Expected a string with maximum length "
      "64, but got a string with length 65 instead.",
      "tools[0].function.name", "string_above_max_length");
  expect_error(parse(with(R"("tools":[{"type":"function","function":{"name":""}}])")),
               "Invalid 'tools[0].function.name': empty string. Expected a string with minimum "
               "length 1, but got an empty string instead.",
               "tools[0].function.name", "empty_string");
  expect_error(
      parse(with(R"("tools":[{"type":"function","function":{"name":"f","parameters":"{}"}}])")),
      "Invalid type for 'tools[0].function.parameters': expected an object, but got a string "
      "instead.",
      "tools[0].function.parameters", "invalid_type");
  std::string many = R"("tools":[)";
  for (int i = 0; i < 129; ++i) {
    if (i) many += ',';
    many += R"({"type":"function","function":{"name":"f"}})";
  }
  many += ']';
  expect_error(parse(with(many)),
               "Invalid 'tools': array too long. Expected an array with maximum length 128, but "
               "got an array with length 129 instead.",
               "tools", "array_above_max_length");
  // A parameter schema declares at most 5000 properties, counted at every level.
  auto schema = [](size_t top, size_t nested) {
    std::string s = R"("tools":[{"type":"function","function":{"name":"f","parameters":)";
    s += R"({"type":"object","properties":{"n":{"type":"object","properties":{)";
    for (size_t i = 0; i < nested; ++i) s += (i ? ",\"q" : "\"q") + std::to_string(i) + "\":{}";
    s += "}}";
    for (size_t i = 0; i < top; ++i) s += ",\"p" + std::to_string(i) + "\":{}";
    return s + "}}}}]";
  };
  EXPECT_FALSE(parse(with(schema(2499, 2500))));
  expect_error(parse(with(schema(2500, 2500))),
               "Invalid 'tools[0].function.parameters': the schema declares more than 5000 object "
               "properties in total.",
               "tools[0].function.parameters", "object_above_max_properties");
  chat_request r;
  ASSERT_FALSE(parse(with(R"("tools":[{"type":"function","function":{"name":"A-z_9"}}])"), r));
  EXPECT_EQ(r.tools[0].parameters_json, "");
  EXPECT_FALSE(r.tools[0].strict);
}

TEST(OpenaiChat, ToolChoice) {
  const std::string tools = R"("tools":[{"type":"function","function":{"name":"get"}}])";
  expect_error(parse(with(R"("tool_choice":"required")")),
               "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
               "specified.",
               "tool_choice", std::nullopt);
  expect_error(parse(with(tools + R"(,"tool_choice":"maybe")")),
               "Invalid value: 'maybe'. Supported values are: 'none', 'auto', and 'required'.",
               "tool_choice", "invalid_value");
  expect_error(
      parse(with(tools + R"(,"tool_choice":{"type":"function","function":{"name":"put"}})")),
      "Invalid value for 'tool_choice': function 'put' is not one of the functions "
      "declared in 'tools'.",
      "tool_choice", "invalid_value");
  expect_error(parse(with(tools + R"(,"tool_choice":{"type":"function"})")),
               "Missing required parameter: 'tool_choice.function'.", "tool_choice.function",
               "missing_required_parameter");
  expect_error(parse(with(tools + R"(,"tool_choice":{"type":"function","function":{}})")),
               "Missing required parameter: 'tool_choice.function.name'.",
               "tool_choice.function.name", "missing_required_parameter");
  expect_error(parse(with(tools + R"(,"tool_choice":3)")),
               "Invalid type for 'tool_choice': expected one of a string or object, but got an "
               "integer instead.",
               "tool_choice", "invalid_type");
  chat_request r;
  ASSERT_FALSE(parse(with(R"("tool_choice":"none")"), r));  // tolerated without tools
  EXPECT_EQ(r.tool_choice.mode, tool_choice_mode::none);
  ASSERT_FALSE(parse(with(tools + R"(,"tool_choice":"required")"), r));
  EXPECT_EQ(r.tool_choice.mode, tool_choice_mode::required);
}

TEST(OpenaiChat, ResponseFormat) {
  expect_error(parse(with(R"("response_format":{"type":"xml"})")),
               "Invalid value: 'xml'. Supported values are: 'text', 'json_object', and "
               "'json_schema'.",
               "response_format.type", "invalid_value");
  expect_error(parse(with(R"("response_format":{"type":"json_schema"})")),
               "Missing required parameter: 'response_format.json_schema'.",
               "response_format.json_schema", "missing_required_parameter");
  expect_error(
      parse(with(R"("response_format":{"type":"json_schema","json_schema":{"schema":{}}})")),
      "Missing required parameter: 'response_format.json_schema.name'.",
      "response_format.json_schema.name", "missing_required_parameter");
  expect_error(parse(with(R"("response_format":"json")")),
               "Invalid type for 'response_format': expected an object, but got a string instead.",
               "response_format", "invalid_type");
  chat_request r;
  ASSERT_FALSE(parse(with(R"("response_format":{"type":"json_schema","json_schema":
      {"name":"answer","strict":true,"schema":{"type":"object"}}})"),
                     r));
  EXPECT_EQ(r.response_format.type, output_format::json_schema);
  EXPECT_EQ(r.response_format.name, "answer");
  EXPECT_EQ(r.response_format.schema_json, R"({"type":"object"})");
  EXPECT_EQ(r.response_format.strict, true);
}

TEST(OpenaiChat, MetadataStoreLogitBias) {
  std::string many = R"("metadata":{)";
  for (int i = 0; i < 17; ++i) many += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":\"v\"";
  many += '}';
  expect_error(parse(with(many)),
               "Invalid 'metadata': too many properties. Expected an object with at most 16 "
               "properties, but got an object with 17 properties instead.",
               "metadata", "object_above_max_properties");
  expect_error(parse(with(R"("metadata":{"k":1})")),
               "Invalid type for 'metadata.k': expected a string, but got an integer instead.",
               "metadata.k", "invalid_type");
  expect_error(parse(with(R"("metadata":{"k":")" + std::string(513, 'x') + "\"}")),
               "Invalid 'metadata.k': string too long. Expected a string with maximum length 512, "
               "but got a string with length 513 instead.",
               "metadata.k", "string_above_max_length");
  expect_error(parse(with(R"("store":"no")")),
               "Invalid type for 'store': expected a boolean, but got a string instead.", "store",
               "invalid_type");
  expect_error(parse(with(R"("logit_bias":{"abc":1})")),
               "Invalid key in 'logit_bias': abc. You should only be submitting non-negative "
               "integers.",
               "logit_bias", "invalid_value");
  expect_error(parse(with(R"("logit_bias":{"50256":-101})")),
               "Invalid 'logit_bias.50256': decimal below minimum value. Expected a value >= -100, "
               "but got -101 instead.",
               "logit_bias.50256", "decimal_below_min_value");
  std::string bias = R"("logit_bias":{"0":1)";
  for (int i = 1; i <= 300; ++i) bias += ",\"" + std::to_string(i) + "\":1";
  expect_error(parse(with(bias + "}")),
               "Invalid 'logit_bias': too many properties. Expected an object with at most 300 "
               "properties, but got an object with 301 properties instead.",
               "logit_bias", "object_above_max_properties");
  chat_request r;
  // Metadata lengths count characters, not bytes: 512 two-byte characters are fine.
  std::string wide;
  for (int i = 0; i < 512; ++i) wide += "\xC3\xA9";
  ASSERT_FALSE(parse(with(R"("metadata":{"k":")" + wide + R"(","k":"last"})"), r));
  EXPECT_EQ(r.metadata, (metadata_pairs{{"k", "last"}}));
}

TEST(OpenaiChat, BodyErrors) {
  chat_request r;
  json::parser p;
  json::value root;
  auto e = parse_json_body(p, "{\"model\":", 9, 9, root);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->message.rfind("We could not parse the JSON body of your request: ", 0), 0u)
      << e->message;
  EXPECT_EQ(e->param, std::nullopt);
  EXPECT_EQ(e->code, std::nullopt);
  std::string env = test::envelope(*e);
  std::string_view tail = "\"param\":null,\"code\":null}}";
  EXPECT_EQ(env.substr(env.size() - tail.size()), tail);
  e = parse_json_body(p, "", 0, 0, root);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->message,
            "We could not parse the JSON body of your request: the body is empty. The OpenAI API "
            "expects a JSON object.");
  e = parse_json_body(p, "[1]", 3, 3, root);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->message,
            "We could not parse the JSON body of your request: expected a JSON object, but got "
            "an array instead.");
  e = parse_json_body(p, "{\"a\":\"\xff\"}", 9, 9, root);
  ASSERT_TRUE(e);
  EXPECT_NE(e->message.find("UTF-8"), std::string::npos) << e->message;
}

TEST(OpenaiChat, HostileBodies) {
  // Nesting beyond the parser's depth limit inside a tool schema.
  std::string deep = R"("tools":[{"type":"function","function":{"name":"f","parameters":)";
  deep += std::string(200, '[') + std::string(200, ']') + "}}]";
  std::optional<api_error> e = parse(with(deep));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->message.rfind("We could not parse the JSON body of your request: ", 0), 0u);
  EXPECT_EQ(e->param, std::nullopt);
  // Numbers beyond double or 64-bit integer range are not JSON we accept.
  EXPECT_TRUE(parse(with(R"("temperature":1e400)")));
  EXPECT_TRUE(parse(with(R"("seed":123456789012345678901234567890)")));
  // Invalid UTF-8 anywhere, even in an ignored member.
  e = parse(with("\"vendor\":\"\xC0\x80\""));
  ASSERT_TRUE(e);
  EXPECT_NE(e->message.find("UTF-8"), std::string::npos);
  // Every truncation of a valid body is an invalid-JSON error, never a crash or a success.
  std::string body = with(R"("tools":[{"type":"function","function":{"name":"f"}}],"n":2)");
  for (size_t n = 0; n < body.size(); ++n) {
    e = parse(std::string_view(body.data(), n));
    ASSERT_TRUE(e) << n;
    EXPECT_EQ(e->message.rfind("We could not parse the JSON body", 0), 0u) << n;
  }
  EXPECT_FALSE(parse(body));
}

TEST(OpenaiChat, ParsesABodyThatEndsAtAGuardPage) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  char* base = static_cast<char*>(
      mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(base, MAP_FAILED);
  ASSERT_EQ(mprotect(base + page, page, PROT_NONE), 0);
  std::string body = with(R"("stop":"x")");
  char* at = base + page - body.size();
  std::memcpy(at, body.data(), body.size());
  json::parser p;
  json::value root;
  ASSERT_FALSE(parse_json_body(p, at, body.size(), body.size(), root));
  chat_request r;
  EXPECT_FALSE(parse_chat_request(root, r));
  EXPECT_EQ(r.stop, std::vector<std::string>{"x"});
  munmap(base, 2 * page);
}

TEST(OpenaiChat, ErrorEnvelopeIsExact) {
  std::optional<api_error> e = parse(with_messages("[]"));
  ASSERT_TRUE(e);
  EXPECT_EQ(
      test::envelope(*e),
      "{\"error\":{\"message\":\"Invalid 'messages': empty array. Expected an array with "
      "minimum length 1, but got an empty array instead.\",\"type\":\"invalid_request_error\","
      "\"param\":\"messages\",\"code\":\"empty_array\"}}");
  e = parse(with(R"("stream_options":{})"));
  ASSERT_TRUE(e);
  EXPECT_EQ(
      test::envelope(*e),
      "{\"error\":{\"message\":\"The 'stream_options' parameter is only allowed when "
      "'stream' is enabled.\",\"type\":\"invalid_request_error\",\"param\":\"stream_options\","
      "\"code\":null}}");
}

TEST(OpenaiChat, ParamPathsEscapeCleanlyInTheEnvelope) {
  // A hostile metadata key ends up in the param path; the envelope must stay valid JSON.
  std::optional<api_error> e = parse(with(R"("metadata":{"a\"b\n\u0000":1})"));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param, std::string("metadata.a\"b\n", 13) + std::string(1, '\0'));
  test::expect_valid_json(test::envelope(*e));
}

}  // namespace
}  // namespace rc::openai
