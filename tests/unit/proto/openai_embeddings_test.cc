// Embeddings: request validation and the response in both encodings.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "openai_test_util.h"
#include "proto/base64.h"
#include "proto/openai_embeddings.h"

namespace rc::openai {
namespace {

using test::expect_error;

std::optional<api_error> parse(std::string_view body, embeddings_request& out) {
  return test::run(parse_embeddings_request, body, out);
}
std::optional<api_error> parse(std::string_view body) {
  embeddings_request r;
  return parse(body, r);
}
std::string with_input(std::string_view input, std::string_view extra = "") {
  std::string s = R"({"model":"e","input":)" + std::string(input);
  if (!extra.empty()) {
    s += ',';
    s.append(extra);
  }
  return s + "}";
}

TEST(OpenaiEmbeddings, InputShapes) {
  embeddings_request r;
  ASSERT_FALSE(parse(with_input(R"("one")"), r));
  EXPECT_EQ(r.input_kind, embedding_input_kind::text);
  EXPECT_EQ(r.texts, std::vector<std::string>{"one"});
  EXPECT_EQ(r.encoding, embedding_encoding::float_array);

  ASSERT_FALSE(parse(
      with_input(R"(["a","b"])", R"("encoding_format":"base64","dimensions":8,"user":"u")"), r));
  EXPECT_EQ(r.input_count(), 2u);
  EXPECT_EQ(r.encoding, embedding_encoding::base64);
  EXPECT_EQ(r.dimensions, 8u);
  EXPECT_EQ(r.user, "u");

  ASSERT_FALSE(parse(with_input("[1,2,4294967295]"), r));
  EXPECT_EQ(r.input_kind, embedding_input_kind::tokens);
  ASSERT_EQ(r.token_lists.size(), 1u);
  EXPECT_EQ(r.token_lists[0], (std::vector<uint32_t>{1, 2, 4294967295u}));

  ASSERT_FALSE(parse(with_input("[[1],[2,3]]"), r));
  EXPECT_EQ(r.input_count(), 2u);
  EXPECT_EQ(r.token_lists[1], (std::vector<uint32_t>{2, 3}));
}

TEST(OpenaiEmbeddings, Errors) {
  expect_error(parse(R"({"input":"x"})"), "Missing required parameter: 'model'.", "model",
               "missing_required_parameter");
  expect_error(parse(R"({"model":"e"})"), "Missing required parameter: 'input'.", "input",
               "missing_required_parameter");
  expect_error(parse(with_input(R"("")")),
               "Invalid 'input': empty string. Expected a string with minimum length 1, but got an "
               "empty string instead.",
               "input", "empty_string");
  expect_error(parse(with_input("[]")),
               "Invalid 'input': empty array. Expected an array with minimum length 1, but got an "
               "empty array instead.",
               "input", "empty_array");
  expect_error(parse(with_input(R"(["a",""])")),
               "Invalid 'input[1]': empty string. Expected a string with minimum length 1, but got "
               "an empty string instead.",
               "input[1]", "empty_string");
  expect_error(parse(with_input(R"(["a",1])")),
               "Invalid type for 'input[1]': expected a string, but got an integer instead.",
               "input[1]", "invalid_type");
  expect_error(parse(with_input("[1,-1]")),
               "Invalid 'input[1]': integer below minimum value. Expected a value >= 0, but got -1 "
               "instead.",
               "input[1]", "integer_below_min_value");
  expect_error(parse(with_input("[1,\"a\"]")),
               "Invalid type for 'input[1]': expected an integer, but got a string instead.",
               "input[1]", "invalid_type");
  expect_error(parse(with_input("[[1],[]]")),
               "Invalid 'input[1]': empty array. Expected an array with minimum length 1, but got "
               "an empty array instead.",
               "input[1]", "empty_array");
  expect_error(parse(with_input("[{}]")),
               "Invalid type for 'input[0]': expected one of a string, integer or array of "
               "integers, but got an object instead.",
               "input[0]", "invalid_type");
  expect_error(parse(with_input("true")),
               "Invalid type for 'input': expected one of a string or array, but got a boolean "
               "instead.",
               "input", "invalid_type");
  std::string many = "[";
  for (int i = 0; i < 2049; ++i) many += i ? ",\"x\"" : "\"x\"";
  many += "]";
  expect_error(parse(with_input(many)),
               "Invalid 'input': array too long. Expected an array with maximum length 2048, but "
               "got an array with length 2049 instead.",
               "input", "array_above_max_length");
  expect_error(parse(with_input(R"("x")", R"("encoding_format":"hex")")),
               "Invalid value: 'hex'. Supported values are: 'float' and 'base64'.",
               "encoding_format", "invalid_value");
  expect_error(
      parse(with_input(R"("x")", R"("dimensions":0)")),
      "Invalid 'dimensions': integer below minimum value. Expected a value >= 1, but got 0 "
      "instead.",
      "dimensions", "integer_below_min_value");
  std::string tokens = "[0";
  for (size_t i = 1; i <= embedding_tokens_per_input_max; ++i) tokens += ",1";
  tokens += "]";
  expect_error(parse(with_input("[" + tokens + "]")),
               "Invalid 'input[0]': array too long. Expected an array with maximum length 8192, "
               "but got an array with length 8193 instead.",
               "input[0]", "array_above_max_length");
  expect_error(parse(with_input(tokens)),
               "Invalid 'input': array too long. Expected an array with maximum length 8192, but "
               "got an array with length 8193 instead.",
               "input", "array_above_max_length");
}

TEST(OpenaiEmbeddings, DimensionsAreBoundedByTheModel) {
  embeddings_request r;
  ASSERT_FALSE(parse(with_input(R"("x")", R"("dimensions":256)"), r));
  EXPECT_FALSE(check_embedding_dimensions(r, 256));
  ASSERT_FALSE(parse(with_input(R"("x")"), r));
  EXPECT_FALSE(check_embedding_dimensions(r, 256));  // no dimensions: the model's own
  ASSERT_FALSE(parse(with_input(R"("x")", R"("dimensions":10000000)"), r));
  expect_error(check_embedding_dimensions(r, 256),
               "Invalid 'dimensions': integer above maximum value. Expected a value <= 256, but "
               "got 10000000 instead.",
               "dimensions", "integer_above_max_value");
}

TEST(OpenaiEmbeddings, FloatResponseIsExact) {
  const float v[] = {0.5f, -1.0f, 0.1f, 0.0023064255f, 3.0f, 0.0f};
  byte_buffer b;
  write_embeddings(b, "e", v, 3, embedding_encoding::float_array, 7);
  EXPECT_EQ(
      b.view(),
      R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,-1.0,0.1]},)"
      R"({"object":"embedding","index":1,"embedding":[0.0023064255,3.0,0.0]}],"model":"e",)"
      R"("usage":{"prompt_tokens":7,"total_tokens":7}})");
  test::expect_valid_json(b.view());
}

TEST(OpenaiEmbeddings, Base64IsLittleEndianFloat32) {
  const float v[] = {1.0f, -2.5f};
  byte_buffer b;
  write_embeddings(b, "e", v, 1, embedding_encoding::base64, 1);
  // 1.0f = 00 00 80 3f, -2.5f = 00 00 20 c0.
  EXPECT_EQ(b.view(),
            R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":"AACAPw=="},)"
            R"({"object":"embedding","index":1,"embedding":"AAAgwA=="}],"model":"e",)"
            R"("usage":{"prompt_tokens":1,"total_tokens":1}})");

  std::vector<float> big(1536);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i) * 0.001f - 0.7f;
  b.clear();
  write_embeddings(b, "e", big, big.size(), embedding_encoding::base64, 1);
  json::parser p;
  json::parse_result r = p.parse(b.view());
  ASSERT_TRUE(r.ok());
  std::string_view text = (*r.root.find("data").elements().begin()).find("embedding").get_string();
  byte_buffer raw;
  ASSERT_TRUE(base64::decode(text, raw));
  ASSERT_EQ(raw.size(), big.size() * 4);
  EXPECT_EQ(std::memcmp(raw.data(), big.data(), raw.size()), 0);
}

}  // namespace
}  // namespace rc::openai
