// Upstream answers -> typed events: chat chunks and completions, Responses events and objects.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proto/json_reader.h"
#include "proto/openai_upstream_decode.h"

namespace rc::openai {
namespace {

// A compact transcript of events: "d0:hi", "t0.1[id,name]:args", "f0:tool_calls", "e:code".
std::string describe(const std::vector<stream_event>& events) {
  std::string s;
  for (const stream_event& e : events) {
    if (!s.empty()) s += ' ';
    // Appended piece by piece: GCC 12's -Wrestrict misfires on chained std::string operator+.
    switch (e.type) {
      case stream_event_type::delta:
        s += 'd';
        s += std::to_string(e.choice);
        s += ':';
        s += e.text;
        break;
      case stream_event_type::tool_call:
        s += 't';
        s += std::to_string(e.choice);
        s += '.';
        s += std::to_string(e.tool_index);
        if (!e.tool_call_id.empty() || !e.tool_name.empty()) {
          s += '[';
          s += e.tool_call_id;
          s += ',';
          s += e.tool_name;
          s += ']';
        }
        s += ':';
        s += e.text;
        break;
      case stream_event_type::done:
        s += 'f';
        s += std::to_string(e.choice);
        s += ':';
        s += to_string(e.finish);
        break;
      case stream_event_type::error:
        s += "e:";
        s += e.error_code;
        break;
    }
  }
  return s;
}

template <class Decode>
std::string run(std::vector<std::string_view> values, Decode decode) {
  json::parser p;
  std::vector<stream_event> out;
  for (std::string_view v : values) {
    json::parse_result r = p.parse(v);
    EXPECT_TRUE(r.ok()) << v;
    decode(r.root, out);
  }
  return describe(out);
}

TEST(OpenaiUpstreamDecode, ChatChunksWithToolCallsRefusalAndUsage) {
  chat_decoder d;
  std::string got = run(
      {R"({"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})",
       R"({"choices":[{"index":0,"delta":{"content":"Hel"},"logprobs":{"content":[]},"finish_reason":null}],"usage":null})",
       R"({"choices":[{"index":1,"delta":{"refusal":"no"}}]})",
       R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}}]})",
       R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\""}}]}}]})",
       R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","function":{"name":"f","arguments":":1}"}}]}}]})",
       R"({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"},{"index":1,"delta":{},"finish_reason":"weird"}]})",
       R"({"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8,)"
       R"("prompt_tokens_details":{"cached_tokens":1},"completion_tokens_details":{"reasoning_tokens":2}}})"},
      [&](const json::value& v, std::vector<stream_event>& out) { d.decode(v, out); });
  EXPECT_EQ(got, "d0:Hel d1:no t0.0[call_1,f]: t0.0:{\"a\" t0.0::1} f0:tool_calls f1:stop");
  ASSERT_TRUE(d.has_usage());
  EXPECT_EQ(d.usage().input_tokens, 3u);
  EXPECT_EQ(d.usage().output_tokens, 5u);
  EXPECT_EQ(d.usage().cached_tokens, 1u);
  EXPECT_EQ(d.usage().reasoning_tokens, 2u);
  EXPECT_FALSE(d.last_had_choices());
}

TEST(OpenaiUpstreamDecode, ChatCompletionObject) {
  chat_decoder d;
  std::string got = run(
      {R"({"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok",)"
       R"("tool_calls":[{"id":"c","type":"function","function":{"name":"g","arguments":"{}"}}]},"finish_reason":"length"}],)"
       R"("usage":{"prompt_tokens":1,"completion_tokens":2}})"},
      [&](const json::value& v, std::vector<stream_event>& out) { d.decode(v, out); });
  EXPECT_EQ(got, "d0:ok t0.0[c,g]:{} f0:length");
  EXPECT_EQ(d.usage().output_tokens, 2u);
}

TEST(OpenaiUpstreamDecode, ChatErrorsAndMalformedChunks) {
  chat_decoder d;
  auto decode = [&](const json::value& v, std::vector<stream_event>& out) { d.decode(v, out); };
  EXPECT_EQ(run({R"({"error":{"message":"boom","type":"server_error","code":"overloaded"}})"}, decode),
            "e:overloaded");
  EXPECT_EQ(run({R"({"error":{"message":"boom"}})"}, decode), "e:upstream_error");
  EXPECT_EQ(run({"[1]"}, decode), "e:upstream_protocol_error");
  EXPECT_EQ(run({R"({"choices":{}})"}, decode), "e:upstream_protocol_error");
  EXPECT_EQ(run({R"({"choices":[{"index":0,"delta":{"content":5}}]})"}, decode),
            "e:upstream_protocol_error");
  EXPECT_EQ(run({R"({"choices":[{"index":-1,"delta":{}}]})"}, decode), "e:upstream_protocol_error");
  EXPECT_EQ(run({R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":{}}}]}}]})"},
                decode),
            "e:upstream_protocol_error");
}

TEST(OpenaiUpstreamDecode, ResponsesEventStream) {
  responses_decoder d;
  std::string got = run(
      {R"({"type":"response.created","response":{"id":"resp_1","status":"in_progress"},"sequence_number":0})",
       R"({"type":"response.output_item.added","output_index":0,"item":{"type":"message","id":"msg_1"}})",
       R"({"type":"response.output_text.delta","output_index":0,"content_index":0,"delta":"Hi"})",
       R"({"type":"response.output_text.done","output_index":0,"text":"Hi"})",
       R"({"type":"response.output_item.added","output_index":1,"item":{"type":"function_call","id":"fc_1","call_id":"call_9","name":"f","arguments":""}})",
       R"({"type":"response.function_call_arguments.delta","output_index":1,"delta":"{}"})",
       R"({"type":"response.output_item.done","output_index":1,"item":{"type":"function_call","call_id":"call_9","name":"f","arguments":"{}"}})",
       R"({"type":"response.output_item.done","output_index":2,"item":{"type":"function_call","call_id":"call_10","name":"g","arguments":"[]"}})",
       R"({"type":"response.completed","response":{"id":"resp_1","status":"completed","output":[],)"
       R"("usage":{"input_tokens":4,"output_tokens":6,"output_tokens_details":{"reasoning_tokens":1}}}})"},
      [&](const json::value& v, std::vector<stream_event>& out) { d.decode_event(v, out); });
  EXPECT_EQ(got, "d0:Hi t0.0[call_9,f]: t0.0:{} t0.1[call_10,g]: t0.1:[] f0:tool_calls");
  EXPECT_TRUE(d.finished());
  EXPECT_EQ(d.response_id(), "resp_1");
  EXPECT_EQ(d.usage().input_tokens, 4u);
  EXPECT_EQ(d.usage().reasoning_tokens, 1u);
}

TEST(OpenaiUpstreamDecode, ResponsesTerminalStates) {
  auto one = [](std::string_view v) {
    responses_decoder d;
    return run({v}, [&](const json::value& x, std::vector<stream_event>& out) { d.decode_event(x, out); });
  };
  EXPECT_EQ(one(R"({"type":"response.incomplete","response":{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"}}})"),
            "f0:length");
  EXPECT_EQ(one(R"({"type":"response.incomplete","response":{"status":"incomplete","incomplete_details":{"reason":"content_filter"}}})"),
            "f0:content_filter");
  EXPECT_EQ(one(R"({"type":"response.failed","response":{"status":"failed","error":{"code":"server_error","message":"x"}}})"),
            "e:server_error");
  EXPECT_EQ(one(R"({"type":"error","code":"rate_limit_exceeded","message":"slow down"})"), "e:rate_limit_exceeded");
  EXPECT_EQ(one(R"({"type":"response.output_text.delta","delta":7})"), "e:upstream_protocol_error");
  EXPECT_EQ(one(R"({"delta":"x"})"), "e:upstream_protocol_error");
  EXPECT_EQ(one(R"({"type":"response.function_call_arguments.delta","output_index":3,"delta":"x"})"),
            "e:upstream_protocol_error");
  EXPECT_EQ(one(R"({"type":"response.completed"})"), "e:upstream_protocol_error");
  EXPECT_EQ(one(R"({"type":"response.reasoning_summary_text.delta","delta":"hmm"})"), "");
}

TEST(OpenaiUpstreamDecode, ResponsesObject) {
  responses_decoder d;
  std::string got = run(
      {R"({"id":"resp_2","object":"response","status":"completed","output":[)"
       R"({"type":"reasoning","summary":[]},)"
       R"({"type":"message","role":"assistant","content":[{"type":"output_text","text":"a","annotations":[]},{"type":"refusal","refusal":"b"}]},)"
       R"({"type":"function_call","call_id":"c","name":"f","arguments":"{}"}],"usage":{"input_tokens":1,"output_tokens":2}})"},
      [&](const json::value& v, std::vector<stream_event>& out) { d.decode_response(v, out); });
  EXPECT_EQ(got, "d0:ab t0.0[c,f]: t0.0:{} f0:tool_calls");
  EXPECT_EQ(d.response_id(), "resp_2");
  EXPECT_EQ(d.usage().output_tokens, 2u);
}

}  // namespace
}  // namespace rc::openai
