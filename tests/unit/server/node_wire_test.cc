#include "server/node_wire.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "server/remote_node.h"

namespace rc::server {
namespace {

using namespace rc::openai;

// Every member set to something other than its default, strings with bytes a text format would
// have to escape, so that a member the bytes forget shows up as a difference.
generation_request full() {
  generation_request r;
  r.model = "ws-model";
  r.original.api = api_kind::responses;
  r.original.body = std::make_shared<const std::string>(std::string("{\"a\":\0}", 7));
  r.original.stream = true;
  r.original.include_usage = true;
  r.original.passthrough = true;
  r.original.request_id = "req-1";
  r.original.previous_response_id = "resp_1_00ff";
  r.original.response_id = "resp_1_0100";
  r.conversation = {{message_role::system, "be brief"},
                    {message_role::user, std::string("nul\0byte \"q\"\n", 13)},
                    {message_role::tool, ""}};
  r.tools = {{"get_weather", "the weather", R"({"type":"object"})", true},
             {"noop", "", "", std::nullopt},
             {"f", "d", "{}", false}};
  r.tool_choice = {tool_choice_mode::function, "get_weather", R"({"type":"function"})"};
  r.parallel_tool_calls = false;
  r.choices = 3;
  r.max_tokens = std::numeric_limits<uint64_t>::max();
  r.stop = {"\n\n", ""};
  r.seed = std::numeric_limits<int64_t>::min();
  r.temperature = 0.1 + 0.2;
  r.top_p = -0.0;
  r.deadline_ms = 10'000;
  return r;
}

void expect_same(const generation_request& a, const generation_request& b) {
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.original.api, b.original.api);
  ASSERT_EQ(a.original.body == nullptr, b.original.body == nullptr);
  if (a.original.body) {
    EXPECT_EQ(*a.original.body, *b.original.body);
  }
  EXPECT_EQ(a.original.stream, b.original.stream);
  EXPECT_EQ(a.original.include_usage, b.original.include_usage);
  EXPECT_EQ(a.original.passthrough, b.original.passthrough);
  EXPECT_EQ(a.original.request_id, b.original.request_id);
  EXPECT_EQ(a.original.previous_response_id, b.original.previous_response_id);
  EXPECT_EQ(a.original.response_id, b.original.response_id);
  ASSERT_EQ(a.conversation.size(), b.conversation.size());
  for (size_t i = 0; i < a.conversation.size(); ++i) {
    EXPECT_EQ(a.conversation[i].role, b.conversation[i].role);
    EXPECT_EQ(a.conversation[i].text, b.conversation[i].text);
  }
  ASSERT_EQ(a.tools.size(), b.tools.size());
  for (size_t i = 0; i < a.tools.size(); ++i) {
    EXPECT_EQ(a.tools[i].name, b.tools[i].name);
    EXPECT_EQ(a.tools[i].description, b.tools[i].description);
    EXPECT_EQ(a.tools[i].parameters_json, b.tools[i].parameters_json);
    EXPECT_EQ(a.tools[i].strict, b.tools[i].strict);
  }
  EXPECT_EQ(a.tool_choice.mode, b.tool_choice.mode);
  EXPECT_EQ(a.tool_choice.function_name, b.tool_choice.function_name);
  EXPECT_EQ(a.tool_choice.raw_json, b.tool_choice.raw_json);
  EXPECT_EQ(a.parallel_tool_calls, b.parallel_tool_calls);
  EXPECT_EQ(a.choices, b.choices);
  EXPECT_EQ(a.max_tokens, b.max_tokens);
  EXPECT_EQ(a.stop, b.stop);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(std::memcmp(&a.temperature, &b.temperature, sizeof(double)), 0);
  EXPECT_EQ(std::memcmp(&a.top_p, &b.top_p, sizeof(double)), 0);
}

TEST(NodeWire, RequestRoundTripsEveryField) {
  generation_request in = full();
  std::string bytes;
  encode_node_request("ws-up", in, 4'000, bytes);
  std::string upstream;
  generation_request out;
  // The receiver's clock differs: the time left (6 s) is what travels.
  ASSERT_EQ(decode_node_request(bytes, bytes.size(), 90'000, upstream, out), record_error::none);
  EXPECT_EQ(upstream, "ws-up");
  expect_same(in, out);
  EXPECT_EQ(out.deadline_ms, 96'000u);
}

TEST(NodeWire, DefaultsRoundTripAndNoDeadlineStaysNone) {
  generation_request in;  // no body, no options
  std::string bytes;
  encode_node_request("", in, 4'000, bytes);
  std::string upstream = "stale";
  generation_request out = full();
  ASSERT_EQ(decode_node_request(bytes, bytes.size(), 90'000, upstream, out), record_error::none);
  EXPECT_EQ(upstream, "");
  expect_same(in, out);
  EXPECT_EQ(out.deadline_ms, 0u);
  // A deadline already past still travels as a deadline (1 ms left), never as "none".
  in.deadline_ms = 100;
  bytes.clear();
  encode_node_request("", in, 4'000, bytes);
  ASSERT_EQ(decode_node_request(bytes, bytes.size(), 50, upstream, out), record_error::none);
  EXPECT_EQ(out.deadline_ms, 51u);
}

TEST(NodeWire, EventRoundTripsEveryField) {
  owned_event in;
  in.base.type = event_type::error;
  in.base.choice = 7;
  in.base.tool_index = 3;
  in.base.finish = finish_reason::content_filter;
  in.base.usage = {1, 2, 3, std::numeric_limits<uint64_t>::max()};
  in.base.http_status = 503;
  in.base.retry_after_ms = 1000;
  in.base.raw_api = api_kind::chat;
  in.text = std::string("a\0b", 3);
  in.tool_call_id = "call_1";
  in.tool_name = "f";
  in.error_code = "node_unavailable";
  in.error_message = "gone";
  in.error_type = "server_error";
  in.error_param = "p";
  in.raw = R"({"type":"response.completed"})";
  in.raw_name = "response.completed";
  std::string bytes;
  encode_node_event(in.view(), bytes);
  owned_event out;
  ASSERT_EQ(decode_node_event(bytes, bytes.size(), out), record_error::none);
  engine_event a = in.view(), b = out.view();
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.choice, b.choice);
  EXPECT_EQ(a.tool_index, b.tool_index);
  EXPECT_EQ(a.finish, b.finish);
  EXPECT_EQ(a.usage.input_tokens, b.usage.input_tokens);
  EXPECT_EQ(a.usage.output_tokens, b.usage.output_tokens);
  EXPECT_EQ(a.usage.cached_tokens, b.usage.cached_tokens);
  EXPECT_EQ(a.usage.reasoning_tokens, b.usage.reasoning_tokens);
  EXPECT_EQ(a.http_status, b.http_status);
  EXPECT_EQ(a.retry_after_ms, b.retry_after_ms);
  EXPECT_EQ(a.raw_api, b.raw_api);
  EXPECT_EQ(a.text, b.text);
  EXPECT_EQ(a.tool_call_id, b.tool_call_id);
  EXPECT_EQ(a.tool_name, b.tool_name);
  EXPECT_EQ(a.error_code, b.error_code);
  EXPECT_EQ(a.error_message, b.error_message);
  EXPECT_EQ(a.error_type, b.error_type);
  EXPECT_EQ(a.error_param, b.error_param);
  EXPECT_EQ(a.raw, b.raw);
  EXPECT_EQ(a.raw_name, b.raw_name);
}

TEST(NodeWire, MalformedRequestsAreRefusedWithAReason) {
  std::string bytes;
  encode_node_request("ws-up", full(), 0, bytes);
  std::string upstream;
  generation_request out;
  auto decode = [&](std::string_view in, size_t max = 1 << 20) {
    return decode_node_request(in, max, 0, upstream, out);
  };
  EXPECT_EQ(decode(bytes, bytes.size() - 1), record_error::too_large);
  EXPECT_EQ(decode(""), record_error::truncated);
  EXPECT_EQ(decode("RC"), record_error::truncated);
  EXPECT_EQ(decode("RCR\x01"), record_error::bad_magic);  // a responses record is not a request
  EXPECT_EQ(decode("RCG\x02"), record_error::bad_version);
  EXPECT_EQ(decode(bytes + "x"), record_error::trailing);
  // Every truncation is refused, never read past the end.
  for (size_t n = 4; n < bytes.size(); ++n)
    EXPECT_NE(decode(std::string_view(bytes).substr(0, n)), record_error::none) << n;
  // An api kind out of range (the byte after upstream "ws-up" and model "ws-model").
  std::string bad = bytes;
  bad[4 + 6 + 9] = 9;
  EXPECT_EQ(decode(bad), record_error::bad_value);
  // A count of tools larger than the bytes left could hold.
  generation_request none;
  std::string small;
  encode_node_request("", none, 0, small);
  std::string lie = small;
  size_t tools_at = small.size() - (1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 8 + 8 + 1) - 1;
  ASSERT_EQ(lie[tools_at], 0);
  lie[tools_at] = 0x7f;
  EXPECT_EQ(decode(lie), record_error::bad_value);
}

TEST(NodeWire, MalformedEventsAreRefused) {
  owned_event e = error_event("x", "y", 400);
  std::string bytes;
  encode_node_event(e.view(), bytes);
  owned_event out;
  for (size_t n = 0; n < bytes.size(); ++n)
    EXPECT_NE(decode_node_event(std::string_view(bytes).substr(0, n), 1 << 20, out),
              record_error::none);
  EXPECT_EQ(decode_node_event(bytes + std::string(1, '\0'), 1 << 20, out), record_error::trailing);
  std::string bad = bytes;
  bad[4] = 6;  // event type out of range
  EXPECT_EQ(decode_node_event(bad, 1 << 20, out), record_error::bad_value);
  EXPECT_EQ(decode_node_event("RCG\x01", 1 << 20, out), record_error::bad_magic);
}

TEST(NodeWire, OwnerRecords) {
  std::string node;
  unsigned shard = 9;
  EXPECT_TRUE(parse_session_owner("1 n1 0", node, shard));
  EXPECT_EQ(node, "n1");
  EXPECT_EQ(shard, 0u);
  EXPECT_TRUE(parse_session_owner("1 host-8080 12", node, shard));
  EXPECT_EQ(node, "host-8080");
  EXPECT_EQ(shard, 12u);
  for (const char* bad : {"", "1", "1 n1", "1 n1 ", "2 n1 0", "1  0", "1 n1 x", "1 n1 -1",
                          "1 n1 1234567", "RCR"})
    EXPECT_FALSE(parse_session_owner(bad, node, shard)) << bad;
  EXPECT_EQ(node_subject("n1", 3, "gen"), "rc.node.n1.s3.gen");
}

}  // namespace
}  // namespace rc::server
