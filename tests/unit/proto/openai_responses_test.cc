// Responses API: request validation, the response object and the streaming events.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "openai_test_util.h"
#include "proto/openai_responses.h"

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
  std::string s = R"({"model":"m","input":"hi")";
  if (!extra.empty()) {
    s += ',';
    s.append(extra);
  }
  return s + "}";
}
std::string with_input(std::string_view input) {
  return std::string(R"({"model":"m","input":)") + std::string(input) + "}";
}

TEST(OpenaiResponsesRequest, StringInputAndDefaults) {
  responses_request r;
  ASSERT_FALSE(parse(with(""), r));
  ASSERT_EQ(r.input.size(), 1u);
  EXPECT_TRUE(r.input_was_string);
  EXPECT_EQ(r.input[0].role, message_role::user);
  EXPECT_EQ(r.input[0].text, "hi");
  EXPECT_FALSE(r.stream);
  EXPECT_TRUE(r.settings.store);
  EXPECT_TRUE(r.settings.parallel_tool_calls);
  EXPECT_EQ(r.settings.temperature, 1.0);
  EXPECT_EQ(r.settings.truncation, truncation_mode::disabled);
}

TEST(OpenaiResponsesRequest, ItemsAndSettings) {
  responses_request r;
  auto e = parse(R"({"model":"gpt","stream":true,"instructions":"Be terse.",
    "previous_response_id":"resp_1","max_output_tokens":16,"temperature":0.2,"top_p":0.9,
    "store":false,"user":"u","metadata":{"a":"b"},"parallel_tool_calls":false,"truncation":"auto",
    "text":{"format":{"type":"json_schema","name":"out","schema":{"type":"object"},"strict":true}},
    "tools":[{"type":"function","name":"get","description":"d","parameters":{"type":"object"}}],
    "tool_choice":{"type":"function","name":"get"},
    "input":[
      {"role":"user","content":"plain"},
      {"type":"message","role":"developer","content":[{"type":"input_text","text":"a"},
        {"type":"input_image","image_url":"http://x"},{"type":"input_text","text":"b"}]},
      {"type":"message","role":"assistant","content":[{"type":"output_text","text":"prev"}]},
      {"type":"function_call","id":"fc_1","call_id":"call_1","name":"get","arguments":"{}"},
      {"type":"function_call_output","call_id":"call_1","output":"42"}
    ]})",
                 r);
  ASSERT_FALSE(e) << e->message;
  const response_settings& s = r.settings;
  EXPECT_TRUE(r.stream);
  EXPECT_EQ(s.model, "gpt");
  EXPECT_EQ(s.instructions, "Be terse.");
  EXPECT_EQ(s.previous_response_id, "resp_1");
  EXPECT_EQ(s.max_output_tokens, 16);
  EXPECT_EQ(s.temperature, 0.2);
  EXPECT_FALSE(s.store);
  EXPECT_FALSE(s.parallel_tool_calls);
  EXPECT_EQ(s.truncation, truncation_mode::auto_);
  EXPECT_EQ(s.text_format.type, output_format::json_schema);
  EXPECT_EQ(s.text_format.name, "out");
  EXPECT_EQ(s.text_format.raw_json,
            R"({"type":"json_schema","name":"out","schema":{"type":"object"},"strict":true})");
  ASSERT_EQ(s.tools.size(), 1u);
  EXPECT_EQ(s.tools[0].parameters_json, R"({"type":"object"})");
  EXPECT_EQ(s.tool_choice.function_name, "get");
  ASSERT_EQ(r.input.size(), 5u);
  EXPECT_EQ(r.input[1].role, message_role::developer);
  EXPECT_EQ(r.input[1].text, "ab");
  EXPECT_EQ(r.input[1].media_parts, 1u);
  EXPECT_EQ(r.input[2].text, "prev");
  EXPECT_EQ(r.input[3].type, input_item_type::function_call);
  EXPECT_EQ(r.input[3].id, "fc_1");
  EXPECT_EQ(r.input[3].name, "get");
  EXPECT_EQ(r.input[4].type, input_item_type::function_call_output);
  EXPECT_EQ(r.input[4].output, "42");
}

TEST(OpenaiResponsesRequest, Errors) {
  expect_error(parse(R"({"input":"x"})"), "Missing required parameter: 'model'.", "model",
               "missing_required_parameter");
  expect_error(parse(R"({"model":"m"})"), "Missing required parameter: 'input'.", "input",
               "missing_required_parameter");
  EXPECT_FALSE(parse(R"({"model":"m","previous_response_id":"resp_1"})"));
  expect_error(parse(with_input("7")),
               "Invalid type for 'input': expected one of a string or array of objects, but got an "
               "integer instead.",
               "input", "invalid_type");
  expect_error(parse(with_input(R"([{"role":"tool","content":"x"}])")),
               "Invalid value: 'tool'. Supported values are: 'user', 'assistant', 'system', and "
               "'developer'.",
               "input[0].role", "invalid_value");
  expect_error(parse(with_input(R"([{"type":"wizardry"}])")),
               "Invalid value: 'wizardry'. Supported values are: 'message', 'function_call', "
               "'function_call_output', 'custom_tool_call', 'custom_tool_call_output', "
               "'reasoning', 'local_shell_call', 'local_shell_call_output', and 'item_reference'.",
               "input[0].type", "invalid_value");
  expect_error(parse(with_input(R"([{"type":"reasoning"}])")),
               "Missing required parameter: 'input[0].summary'.", "input[0].summary",
               "missing_required_parameter");
  expect_error(parse(with_input(R"([{"type":"message","role":"user"}])")),
               "Missing required parameter: 'input[0].content'.", "input[0].content",
               "missing_required_parameter");
  expect_error(parse(with_input(R"([{"role":"user","content":[{"type":"text","text":"x"}]}])")),
               "Invalid value: 'text'. Supported values are: 'input_text', 'output_text', "
               "'refusal', 'input_image', 'input_file', and 'input_audio'.",
               "input[0].content[0].type", "invalid_value");
  expect_error(parse(with_input(R"([{"role":"user","content":[{"type":"input_text"}]}])")),
               "Missing required parameter: 'input[0].content[0].text'.",
               "input[0].content[0].text", "missing_required_parameter");
  expect_error(parse(with_input(R"([{"type":"function_call_output","output":"x"}])")),
               "Missing required parameter: 'input[0].call_id'.", "input[0].call_id",
               "missing_required_parameter");
  expect_error(parse(with_input(R"([{"type":"function_call","call_id":"c","name":"f"}])")),
               "Missing required parameter: 'input[0].arguments'.", "input[0].arguments",
               "missing_required_parameter");
  expect_error(parse(with(R"("max_output_tokens":10)")),
               "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, "
               "but got 10 instead.",
               "max_output_tokens", "integer_below_min_value");
  expect_error(parse(with(R"("truncation":"sometimes")")),
               "Invalid value: 'sometimes'. Supported values are: 'auto' and 'disabled'.",
               "truncation", "invalid_value");
  expect_error(parse(with(R"("tools":[{"type":7}])")),
               "Invalid type for 'tools[0].type': expected a string, but got an integer instead.",
               "tools[0].type", "invalid_type");
  expect_error(parse(with(R"("tools":[{"type":"function","function":{"name":"f"}}])")),
               "Missing required parameter: 'tools[0].name'.", "tools[0].name",
               "missing_required_parameter");
  expect_error(parse(with(R"("tool_choice":{"type":"function","name":"f"})")),
               "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
               "specified.",
               "tool_choice", std::nullopt);
  expect_error(parse(with(R"("text":{"format":{"type":"json_schema","schema":{}}})")),
               "Missing required parameter: 'text.format.name'.", "text.format.name",
               "missing_required_parameter");
  expect_error(
      parse(with(R"("previous_response_id":"")")),
      "Invalid 'previous_response_id': empty string. Expected a string with minimum length "
      "1, but got an empty string instead.",
      "previous_response_id", "empty_string");
  expect_error(parse(with(R"("instructions":["x"])")),
               "Invalid type for 'instructions': expected a string, but got an array instead.",
               "instructions", "invalid_type");
  expect_error(parse(with(R"("temperature":2.1)")),
               "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got "
               "2.1 instead.",
               "temperature", "decimal_above_max_value");
}

TEST(OpenaiResponsesRequest, InputItemCountIsBounded) {
  auto items = [](size_t n) {
    const std::string one = R"({"role":"user","content":"x"})";
    std::string s = "[" + one;
    for (size_t i = 1; i < n; ++i) s += "," + one;
    return s + "]";
  };
  responses_request r;
  ASSERT_FALSE(parse(with_input(items(responses_input_items_max)), r));
  EXPECT_EQ(r.input.size(), responses_input_items_max);
  expect_error(parse(with_input(items(responses_input_items_max + 1))),
               "Invalid 'input': array too long. Expected an array with maximum length 2048, but "
               "got an array with length 2049 instead.",
               "input", "array_above_max_length");
}

TEST(OpenaiResponsesRequest, WebSocketCreateMessageMembersAreIgnored) {
  responses_request r;
  EXPECT_FALSE(parse(R"({"type":"response.create","stream_id":"s1","model":"m","input":"x"})", r));
}

response_object fresh() {
  response_object r;
  r.id = "resp_1";
  r.created_at = 1741290958;
  r.settings.model = "m";
  r.settings.instructions = "Be nice.";
  return r;
}

const std::string settings_tail =
    R"("parallel_tool_calls":true,"previous_response_id":null,)"
    R"("prompt_cache_key":null,"reasoning":{"effort":null,"summary":null},)"
    R"("safety_identifier":null,"service_tier":"default","store":true,"temperature":1.0,)"
    R"("text":{"format":{"type":"text"},"verbosity":"medium"},"tool_choice":"auto","tools":[],)"
    R"("top_p":1.0,)"
    R"("truncation":"disabled",)";

TEST(OpenaiResponsesEncode, NonStreamingResponse) {
  response_object r = fresh();
  r.status = response_status::completed;
  r.completed_at = 1741290960;
  output_item item;
  item.id = "msg_1";
  item.status = item_status::completed;
  item.text = "Hi there!";
  r.output.push_back(item);
  r.usage = usage_counts{.input_tokens = 37, .output_tokens = 11, .cached_tokens = 1};
  r.settings.metadata = {{"k", "v"}};
  byte_buffer b;
  write_response(b, r);
  EXPECT_EQ(b.view(),
            R"({"id":"resp_1","object":"response","created_at":1741290958,"status":"completed",)"
            R"("completed_at":1741290960,"error":null,"incomplete_details":null,)"
            R"("instructions":"Be nice.","max_output_tokens":null,"model":"m","output":[)"
            R"({"id":"msg_1","type":"message","status":"completed","role":"assistant",)"
            R"("content":[{"type":"output_text","text":"Hi there!","annotations":[]}]}],)" +
                settings_tail +
                R"("usage":{"input_tokens":37,"input_tokens_details":{"cached_tokens":1},)"
                R"("output_tokens":11,"output_tokens_details":{"reasoning_tokens":0},)"
                R"("total_tokens":48},"user":null,"metadata":{"k":"v"}})");
  test::expect_valid_json(b.view());
}

TEST(OpenaiResponsesEncode, EchoesToolsToolChoiceAndFormat) {
  responses_request req;
  ASSERT_FALSE(parse(with(R"("tools":[{"type":"function","name":"get","parameters":{"a":[1]},
      "strict":false}],"tool_choice":"required","text":{"format":{"type":"json_object"}},
      "user":"u1","max_output_tokens":100,"previous_response_id":"resp_0")"),
                     req));
  response_object r = fresh();
  r.settings = req.settings;
  byte_buffer b;
  write_response(b, r);
  std::string s(b.view());
  test::expect_valid_json(s);
  EXPECT_NE(s.find(R"("tools":[{"type":"function","description":null,"name":"get",)"
                   R"("parameters":{"a":[1]},"strict":false}])"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find(R"("tool_choice":"required")"), std::string::npos);
  EXPECT_NE(s.find(R"("text":{"format":{"type":"json_object"},)"), std::string::npos);
  EXPECT_NE(s.find(R"("max_output_tokens":100)"), std::string::npos);
  EXPECT_NE(s.find(R"("previous_response_id":"resp_0")"), std::string::npos);
  EXPECT_NE(s.find(R"("user":"u1")"), std::string::npos);
  EXPECT_NE(s.find(R"("instructions":null)"), std::string::npos);
}

// Collects the events of a stream as (json) strings.
struct event_log {
  std::vector<std::string> events;
  byte_buffer b;
  template <class F>
  void add(F f) {
    b.clear();
    f(b);
    events.emplace_back(b.view());
    test::expect_valid_json(events.back());
  }
};

TEST(OpenaiResponsesEncode, TextStreamEventsInOrder) {
  response_event_writer w(fresh());
  event_log log;
  log.add([&](byte_buffer& b) { w.created(b); });
  log.add([&](byte_buffer& b) { w.in_progress(b); });
  size_t i = 0;
  log.add([&](byte_buffer& b) { i = w.begin_message(b, "msg_1"); });
  log.add([&](byte_buffer& b) { w.content_part_added(b, i); });
  log.add([&](byte_buffer& b) { w.text_delta(b, i, "Hi"); });
  log.add([&](byte_buffer& b) { w.text_delta(b, i, " there"); });
  log.add([&](byte_buffer& b) { w.text_done(b, i); });
  log.add([&](byte_buffer& b) { w.content_part_done(b, i); });
  log.add([&](byte_buffer& b) { w.end_item(b, i); });
  log.add(
      [&](byte_buffer& b) { w.completed(b, {.input_tokens = 5, .output_tokens = 2}, 1741290959); });

  const std::string head =
      R"({"id":"resp_1","object":"response","created_at":1741290958,"status":"in_progress",)"
      R"("completed_at":null,"error":null,"incomplete_details":null,"instructions":"Be nice.",)"
      R"("max_output_tokens":null,"model":"m","output":[],)" +
      settings_tail + R"("usage":null,"user":null,"metadata":{}})";
  ASSERT_EQ(log.events.size(), 10u);
  EXPECT_EQ(log.events[0],
            R"({"type":"response.created","sequence_number":0,"response":)" + head + "}");
  EXPECT_EQ(log.events[1],
            R"({"type":"response.in_progress","sequence_number":1,"response":)" + head + "}");
  EXPECT_EQ(log.events[2],
            R"({"type":"response.output_item.added","sequence_number":2,"output_index":0,)"
            R"("item":{"id":"msg_1","type":"message","status":"in_progress","role":"assistant",)"
            R"("content":[]}})");
  EXPECT_EQ(log.events[3],
            R"({"type":"response.content_part.added","sequence_number":3,"item_id":"msg_1",)"
            R"("output_index":0,"content_index":0,"part":{"type":"output_text","text":"",)"
            R"("annotations":[]}})");
  EXPECT_EQ(log.events[4],
            R"({"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1",)"
            R"("output_index":0,"content_index":0,"delta":"Hi","logprobs":[]})");
  EXPECT_EQ(log.events[6],
            R"({"type":"response.output_text.done","sequence_number":6,"item_id":"msg_1",)"
            R"("output_index":0,"content_index":0,"text":"Hi there","logprobs":[]})");
  EXPECT_EQ(log.events[7],
            R"({"type":"response.content_part.done","sequence_number":7,"item_id":"msg_1",)"
            R"("output_index":0,"content_index":0,"part":{"type":"output_text","text":"Hi there",)"
            R"("annotations":[]}})");
  const std::string item =
      R"({"id":"msg_1","type":"message","status":"completed","role":"assistant",)"
      R"("content":[{"type":"output_text","text":"Hi there","annotations":[]}]})";
  EXPECT_EQ(log.events[8],
            R"({"type":"response.output_item.done","sequence_number":8,"output_index":0,"item":)" +
                item + "}");
  EXPECT_EQ(log.events[9],
            R"({"type":"response.completed","sequence_number":9,"response":{"id":"resp_1",)"
            R"("object":"response","created_at":1741290958,"status":"completed",)"
            R"("completed_at":1741290959,"error":null,"incomplete_details":null,)"
            R"("instructions":"Be nice.","max_output_tokens":null,"model":"m","output":[)" +
                item + "]," + settings_tail +
                R"("usage":{"input_tokens":5,"input_tokens_details":{"cached_tokens":0},)"
                R"("output_tokens":2,"output_tokens_details":{"reasoning_tokens":0},)"
                R"("total_tokens":7},"user":null,"metadata":{}}})");
  EXPECT_EQ(w.response().output[0].text, "Hi there");
  EXPECT_EQ(w.next_sequence_number(), 10u);
}

TEST(OpenaiResponsesEncode, FunctionCallStream) {
  response_event_writer w(fresh());
  event_log log;
  log.add([&](byte_buffer& b) { w.created(b); });
  size_t i = 0;
  log.add([&](byte_buffer& b) { i = w.begin_function_call(b, "fc_1", "call_1", "get"); });
  log.add([&](byte_buffer& b) { w.arguments_delta(b, i, "{\"a\""); });
  log.add([&](byte_buffer& b) { w.arguments_delta(b, i, ":1}"); });
  log.add([&](byte_buffer& b) { w.arguments_done(b, i); });
  log.add([&](byte_buffer& b) { w.end_item(b, i); });
  EXPECT_EQ(log.events[1],
            R"({"type":"response.output_item.added","sequence_number":1,"output_index":0,)"
            R"("item":{"id":"fc_1","type":"function_call","status":"in_progress","arguments":"",)"
            R"("call_id":"call_1","name":"get"}})");
  EXPECT_EQ(log.events[2],
            R"({"type":"response.function_call_arguments.delta","sequence_number":2,)"
            R"("item_id":"fc_1","output_index":0,"delta":"{\"a\""})");
  EXPECT_EQ(log.events[4],
            R"({"type":"response.function_call_arguments.done","sequence_number":4,)"
            R"("item_id":"fc_1","output_index":0,"name":"get","arguments":"{\"a\":1}"})");
  EXPECT_EQ(log.events[5],
            R"({"type":"response.output_item.done","sequence_number":5,"output_index":0,)"
            R"("item":{"id":"fc_1","type":"function_call","status":"completed",)"
            R"("arguments":"{\"a\":1}","call_id":"call_1","name":"get"}})");
}

TEST(OpenaiResponsesEncode, CutShortStreamsKeepTheirOutput) {
  response_event_writer w(fresh());
  byte_buffer b;
  w.created(b);
  size_t i = w.begin_message(b, "msg_1");
  w.content_part_added(b, i);
  w.text_delta(b, i, "partial");
  b.clear();
  w.incomplete(b, "max_output_tokens", {.input_tokens = 1, .output_tokens = 1});
  std::string s(b.view());
  test::expect_valid_json(s);
  EXPECT_NE(s.find(R"("status":"incomplete","completed_at":null,"error":null,)"
                   R"("incomplete_details":{"reason":"max_output_tokens"})"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find(R"("output":[{"id":"msg_1","type":"message","status":"incomplete",)"
                   R"("role":"assistant","content":[{"type":"output_text","text":"partial",)"),
            std::string::npos)
      << s;

  response_event_writer f(fresh());
  f.created(b);
  b.clear();
  f.failed(b, "server_error", "The engine went away.");
  s = std::string(b.view());
  EXPECT_NE(s.find(R"("type":"response.failed","sequence_number":1,)"), std::string::npos);
  EXPECT_NE(s.find(R"("status":"failed","completed_at":null,"error":{"code":"server_error",)"
                   R"("message":"The engine went away."},"incomplete_details":null,)"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find(R"("output":[])"), std::string::npos);
}

TEST(OpenaiResponsesEncode, ErrorEventAndWebSocketError) {
  response_event_writer w(fresh());
  byte_buffer b;
  w.created(b);
  b.clear();
  w.error(b, previous_response_not_found("resp_x"));
  EXPECT_EQ(b.view(),
            R"({"type":"error","code":"previous_response_not_found","message":"Previous response )"
            R"(with id 'resp_x' not found.","param":"previous_response_id","sequence_number":1})");
  b.clear();
  w.error(b, invalid_request("bad"));
  EXPECT_EQ(b.view(),
            R"({"type":"error","code":null,"message":"bad","param":null,"sequence_number":2})");
  b.clear();
  write_responses_ws_error(b, conversation_busy("resp_1"));
  EXPECT_EQ(b.view(),
            R"({"type":"error","status":409,"error":{"type":"invalid_request_error",)"
            R"("code":"conflict","message":"Another request is already continuing the response )"
            R"('resp_1'. Wait for it to finish and try again.","param":"previous_response_id"}})");
}

using OpenaiResponsesDeathTest = ::testing::Test;

TEST(OpenaiResponsesDeathTest, EventsOutOfOrderStopTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        response_event_writer w(fresh());
        byte_buffer b;
        size_t i = w.begin_message(b, "msg_1");
        w.text_delta(b, i, "no part added yet");
      },
      "assertion failed");
  EXPECT_DEATH(
      {
        response_event_writer w(fresh());
        byte_buffer b;
        size_t i = w.begin_function_call(b, "fc", "c", "n");
        w.end_item(b, i);
      },
      "assertion failed");
  EXPECT_DEATH(
      {
        response_event_writer w(fresh());
        byte_buffer b;
        w.completed(b, {}, 1);
        w.begin_message(b, "late");
      },
      "assertion failed");
}

}  // namespace
}  // namespace rc::openai
