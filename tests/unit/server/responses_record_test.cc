#include "server/responses_record.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

namespace rc::server {
namespace {

using namespace rc::openai;

// Every member set to something other than its default (and strings with bytes a text format
// would have to escape), so that a member the record forgets shows up as a difference.
stored_response full() {
  stored_response s;
  s.conversation = {{message_role::system, "be brief"},
                    {message_role::user, std::string("nul\0byte \"quoted\"\n", 18)},
                    {message_role::assistant, "reply"},
                    {message_role::function, ""}};
  response_object& r = s.response;
  r.id = "resp_1_00ff";
  r.created_at = -1700000000;
  r.completed_at = std::numeric_limits<int64_t>::max();
  r.status = response_status::incomplete;
  response_settings& st = r.settings;
  st.model = "mock";
  st.instructions = "";  // present but empty differs from absent
  st.max_output_tokens = std::numeric_limits<int64_t>::min();
  st.previous_response_id = "resp_0_aa";
  st.store = false;
  st.temperature = 0.1 + 0.2;  // not exactly representable in short decimal
  st.top_p = -0.0;
  st.parallel_tool_calls = false;
  st.tool_choice = {tool_choice_mode::function, "get_weather", R"({"type":"function"})"};
  st.tools = {{"get_weather", "the weather", R"({"type":"object"})", true},
              {"noop", "", "", std::nullopt},
              {"f", "d", "{}", false}};
  st.tool_entries = {"", R"({"type":"web_search"})"};
  st.text_format = {output_format::json_schema, "answer", R"({"type":"string"})", false,
                    R"({"type":"json_schema"})"};
  st.text_verbosity = "low";
  st.reasoning_effort = "high";
  st.reasoning_summary = "auto";
  st.service_tier = "flex";
  st.prompt_cache_key = "pck";
  st.safety_identifier = "sid";
  st.truncation = truncation_mode::auto_;
  st.user = "u1";
  st.metadata = {{"k1", "v1"}, {"", ""}, {"k3", std::string(512, 'x')}};
  output_item m;
  m.type = output_item_type::message;
  m.id = "msg_1";
  m.status = item_status::completed;
  m.text = "héllo ✓";
  output_item fc;
  fc.type = output_item_type::function_call;
  fc.id = "fc_1";
  fc.status = item_status::incomplete;
  fc.call_id = "call_1";
  fc.name = "get_weather";
  fc.arguments = R"({"city":"Paris"})";
  r.output = {m, fc};
  r.usage = usage_counts{1, UINT64_MAX, 3, 4};
  r.error_code = "server_error";
  r.error_message = "boom";
  r.incomplete_reason = "max_output_tokens";
  input_item a;
  a.type = input_item_type::message;
  a.id = "msg_in";
  a.role = message_role::developer;
  a.text = "hi";
  a.media_parts = UINT32_MAX;
  input_item b;
  b.type = input_item_type::function_call;
  b.id = "fc_in";
  b.call_id = "c";
  b.name = "n";
  b.arguments = "{}";
  b.tool_namespace = "ns";
  input_item c;
  c.type = input_item_type::other;
  c.id = "x_1";
  c.output = "out";
  c.type_name = "reasoning";
  c.raw_json = R"({"type":"reasoning","id":"x_1"})";
  input_item d;
  d.type = input_item_type::custom_tool_call_output;
  d.role = message_role::tool;
  s.input = {a, b, c, d};
  return s;
}

void expect_same_settings(const response_settings& a, const response_settings& b) {
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.instructions, b.instructions);
  EXPECT_EQ(a.max_output_tokens, b.max_output_tokens);
  EXPECT_EQ(a.previous_response_id, b.previous_response_id);
  EXPECT_EQ(a.store, b.store);
  EXPECT_EQ(std::memcmp(&a.temperature, &b.temperature, sizeof(double)), 0);
  EXPECT_EQ(std::memcmp(&a.top_p, &b.top_p, sizeof(double)), 0);
  EXPECT_EQ(a.parallel_tool_calls, b.parallel_tool_calls);
  EXPECT_EQ(a.tool_choice.mode, b.tool_choice.mode);
  EXPECT_EQ(a.tool_choice.function_name, b.tool_choice.function_name);
  EXPECT_EQ(a.tool_choice.raw_json, b.tool_choice.raw_json);
  ASSERT_EQ(a.tools.size(), b.tools.size());
  for (size_t i = 0; i < a.tools.size(); ++i) {
    EXPECT_EQ(a.tools[i].name, b.tools[i].name);
    EXPECT_EQ(a.tools[i].description, b.tools[i].description);
    EXPECT_EQ(a.tools[i].parameters_json, b.tools[i].parameters_json);
    EXPECT_EQ(a.tools[i].strict, b.tools[i].strict);
  }
  EXPECT_EQ(a.tool_entries, b.tool_entries);
  EXPECT_EQ(a.text_format.type, b.text_format.type);
  EXPECT_EQ(a.text_format.name, b.text_format.name);
  EXPECT_EQ(a.text_format.schema_json, b.text_format.schema_json);
  EXPECT_EQ(a.text_format.strict, b.text_format.strict);
  EXPECT_EQ(a.text_format.raw_json, b.text_format.raw_json);
  EXPECT_EQ(a.text_verbosity, b.text_verbosity);
  EXPECT_EQ(a.reasoning_effort, b.reasoning_effort);
  EXPECT_EQ(a.reasoning_summary, b.reasoning_summary);
  EXPECT_EQ(a.service_tier, b.service_tier);
  EXPECT_EQ(a.prompt_cache_key, b.prompt_cache_key);
  EXPECT_EQ(a.safety_identifier, b.safety_identifier);
  EXPECT_EQ(a.truncation, b.truncation);
  EXPECT_EQ(a.user, b.user);
  EXPECT_EQ(a.metadata, b.metadata);
}

void expect_same(const stored_response& a, const stored_response& b) {
  ASSERT_EQ(a.conversation.size(), b.conversation.size());
  for (size_t i = 0; i < a.conversation.size(); ++i) {
    EXPECT_EQ(a.conversation[i].role, b.conversation[i].role);
    EXPECT_EQ(a.conversation[i].text, b.conversation[i].text);
  }
  const response_object &x = a.response, &y = b.response;
  EXPECT_EQ(x.id, y.id);
  EXPECT_EQ(x.created_at, y.created_at);
  EXPECT_EQ(x.completed_at, y.completed_at);
  EXPECT_EQ(x.status, y.status);
  expect_same_settings(x.settings, y.settings);
  ASSERT_EQ(x.output.size(), y.output.size());
  for (size_t i = 0; i < x.output.size(); ++i) {
    EXPECT_EQ(x.output[i].type, y.output[i].type);
    EXPECT_EQ(x.output[i].id, y.output[i].id);
    EXPECT_EQ(x.output[i].status, y.output[i].status);
    EXPECT_EQ(x.output[i].text, y.output[i].text);
    EXPECT_EQ(x.output[i].call_id, y.output[i].call_id);
    EXPECT_EQ(x.output[i].name, y.output[i].name);
    EXPECT_EQ(x.output[i].arguments, y.output[i].arguments);
  }
  ASSERT_EQ(x.usage.has_value(), y.usage.has_value());
  if (x.usage) {
    EXPECT_EQ(x.usage->input_tokens, y.usage->input_tokens);
    EXPECT_EQ(x.usage->output_tokens, y.usage->output_tokens);
    EXPECT_EQ(x.usage->cached_tokens, y.usage->cached_tokens);
    EXPECT_EQ(x.usage->reasoning_tokens, y.usage->reasoning_tokens);
  }
  EXPECT_EQ(x.error_code, y.error_code);
  EXPECT_EQ(x.error_message, y.error_message);
  EXPECT_EQ(x.incomplete_reason, y.incomplete_reason);
  ASSERT_EQ(a.input.size(), b.input.size());
  for (size_t i = 0; i < a.input.size(); ++i) {
    const input_item &p = a.input[i], &q = b.input[i];
    EXPECT_EQ(p.type, q.type);
    EXPECT_EQ(p.id, q.id);
    EXPECT_EQ(p.role, q.role);
    EXPECT_EQ(p.text, q.text);
    EXPECT_EQ(p.media_parts, q.media_parts);
    EXPECT_EQ(p.call_id, q.call_id);
    EXPECT_EQ(p.name, q.name);
    EXPECT_EQ(p.arguments, q.arguments);
    EXPECT_EQ(p.output, q.output);
    EXPECT_EQ(p.tool_namespace, q.tool_namespace);
    EXPECT_EQ(p.type_name, q.type_name);
    EXPECT_EQ(p.raw_json, q.raw_json);
  }
}

std::string encode(const stored_response& s) {
  std::string out;
  encode_response_record(s.conversation, s.response, s.input, out);
  return out;
}

constexpr size_t big = 1 << 20;

TEST(ResponsesRecord, RoundTripsEveryMember) {
  stored_response in = full();
  std::string bytes = encode(in);
  stored_response out;
  ASSERT_EQ(decode_response_record(bytes, big, out), record_error::none);
  expect_same(in, out);
  EXPECT_EQ(encode(out), bytes);
}

TEST(ResponsesRecord, RoundTripsDefaults) {
  stored_response in;  // every optional absent, every list empty
  std::string bytes = encode(in);
  stored_response out = full();  // overwritten entirely
  ASSERT_EQ(decode_response_record(bytes, big, out), record_error::none);
  expect_same(in, out);
}

TEST(ResponsesRecord, RoundTripsNonFiniteDoubles) {
  stored_response in;
  in.response.settings.temperature = std::numeric_limits<double>::infinity();
  in.response.settings.top_p = std::numeric_limits<double>::quiet_NaN();
  stored_response out;
  ASSERT_EQ(decode_response_record(encode(in), big, out), record_error::none);
  EXPECT_TRUE(std::isinf(out.response.settings.temperature));
  EXPECT_TRUE(std::isnan(out.response.settings.top_p));
}

TEST(ResponsesRecord, EveryTruncationIsRefused) {
  std::string bytes = encode(full());
  for (size_t n = 0; n < bytes.size(); ++n) {
    stored_response out;
    record_error e = decode_response_record(std::string_view(bytes).substr(0, n), big, out);
    EXPECT_NE(e, record_error::none) << "prefix of " << n << " bytes";
    // A prefix ends inside a field; counts may also look too large for what is left.
    EXPECT_TRUE(e == record_error::truncated || e == record_error::bad_value)
        << n << ": " << to_string(e);
  }
}

TEST(ResponsesRecord, TrailingBytesAreRefused) {
  std::string bytes = encode(full()) + "x";
  stored_response out;
  EXPECT_EQ(decode_response_record(bytes, big, out), record_error::trailing);
}

TEST(ResponsesRecord, OversizedValuesAreRefusedBeforeDecoding) {
  std::string bytes = encode(full());
  stored_response out;
  EXPECT_EQ(decode_response_record(bytes, bytes.size() - 1, out), record_error::too_large);
  EXPECT_EQ(decode_response_record(bytes, bytes.size(), out), record_error::none);
}

TEST(ResponsesRecord, ForeignValuesAreRefused) {
  stored_response out;
  EXPECT_EQ(decode_response_record("", big, out), record_error::truncated);
  EXPECT_EQ(decode_response_record("{\"id\":\"resp_1\"}", big, out), record_error::bad_magic);
  std::string bytes = encode(full());
  bytes[3] = 2;
  EXPECT_EQ(decode_response_record(bytes, big, out), record_error::bad_version);
}

TEST(ResponsesRecord, EnumsOutOfRangeAreRefused) {
  stored_response one;
  one.conversation = {{message_role::user, "x"}};
  std::string bytes = encode(one);
  // "RCR" 1, count 1, then the turn's role.
  ASSERT_EQ(bytes[5], static_cast<char>(message_role::user));
  bytes[5] = 9;
  stored_response out;
  EXPECT_EQ(decode_response_record(bytes, big, out), record_error::bad_value);
}

TEST(ResponsesRecord, HugeCountsAreRefusedWithoutAllocating) {
  std::string bytes = "RCR\x01";
  for (int i = 0; i < 9; ++i) bytes.push_back('\xff');  // a count near 2^63
  bytes.push_back('\x7f');
  stored_response out;
  EXPECT_EQ(decode_response_record(bytes, big, out), record_error::bad_value);
  bytes = "RCR\x01";
  bytes += "\x64";  // 100 turns, in 2 bytes
  bytes += "\x02\x00";
  EXPECT_EQ(decode_response_record(bytes, big, out), record_error::bad_value);
}

TEST(ResponsesRecord, OverlongVarintsAreRefused) {
  std::string bytes = "RCR\x01";
  for (int i = 0; i < 11; ++i) bytes.push_back('\x80');
  bytes.push_back('\x00');
  stored_response out;
  EXPECT_EQ(decode_response_record(bytes, big, out), record_error::bad_value);
}

TEST(ResponsesRecord, BadPresenceBytesAreRefused) {
  stored_response in;
  std::string bytes = encode(in);
  // "RCR" 1, conversation count 0, id "" (0), created_at 0, completed_at presence.
  ASSERT_EQ(bytes[7], 0);
  bytes[7] = 2;
  stored_response out;
  EXPECT_EQ(decode_response_record(bytes, big, out), record_error::bad_value);
}

// Arbitrary corruptions never crash and never decode to something with trailing garbage.
TEST(ResponsesRecord, FlippedBytesDecodeOrFailCleanly) {
  std::string bytes = encode(full());
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (uint8_t x : {0x01, 0x80, 0xff}) {
      std::string b = bytes;
      b[i] = static_cast<char>(static_cast<uint8_t>(b[i]) ^ x);
      stored_response out;
      (void)decode_response_record(b, big, out);
    }
  }
}

}  // namespace
}  // namespace rc::server
