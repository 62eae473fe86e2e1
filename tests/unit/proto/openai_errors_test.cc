// The canned error envelopes the server raises itself (auth, routing, limits, overload).
#include "proto/openai_errors.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "openai_test_util.h"

namespace rc::openai {
namespace {

TEST(OpenaiErrors, CannedErrorsHaveOpenAIsStatusTypeAndCode) {
  struct expected {
    api_error e;
    int status;
    const char* type;
    std::optional<std::string> code;
  } cases[] = {
      {missing_api_key(), 401, "invalid_request_error", std::nullopt},
      {invalid_api_key("sk-1234567890abcd"), 401, "invalid_request_error", "invalid_api_key"},
      {unknown_route("POST", "/v1/nope"), 404, "invalid_request_error", std::nullopt},
      {model_not_found("gpt-9"), 404, "invalid_request_error", "model_not_found"},
      {method_not_allowed("GET", "/v1/chat/completions"), 405, "invalid_request_error",
       std::nullopt},
      {previous_response_not_found("resp_1"), 400, "invalid_request_error",
       "previous_response_not_found"},
      {conversation_busy("resp_1"), 409, "invalid_request_error", "conflict"},
      {body_too_large(1024), 413, "invalid_request_error", "request_too_large"},
      {rate_limited("10 requests per minute"), 429, "requests", "rate_limit_exceeded"},
      {overloaded(), 503, "server_error", "server_overloaded"},
      {upstream_timeout(), 504, "server_error", "upstream_timeout"},
      {internal_error(""), 500, "server_error", std::nullopt},
      {cancelled(), 400, "invalid_request_error", "cancelled"},
  };
  for (const expected& c : cases) {
    EXPECT_EQ(c.e.status, c.status) << c.e.message;
    EXPECT_EQ(c.e.type, c.type) << c.e.message;
    EXPECT_EQ(c.e.code, c.code) << c.e.message;
    EXPECT_FALSE(c.e.message.empty());
    test::expect_valid_json(test::envelope(c.e));
  }
  EXPECT_EQ(test::envelope(unknown_route("POST", "/v1/nope")),
            R"j({"error":{"message":"Invalid URL (POST /v1/nope)","type":"invalid_request_error",)j"
            R"j("param":null,"code":null}})j");
  EXPECT_EQ(test::envelope(model_not_found("gpt-9")),
            R"({"error":{"message":"The model 'gpt-9' does not exist or you do not have access )"
            R"(to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}})");
  EXPECT_EQ(invalid_api_key("sk-1234567890abcd").message,
            "Incorrect API key provided: sk-***abcd.");
  EXPECT_EQ(invalid_api_key("short").message, "Incorrect API key provided: ***.");
}

TEST(OpenaiErrors, WriteErrorAlwaysHasFourMembers) {
  api_error e = invalid_request(std::string("m"));
  EXPECT_EQ(test::envelope(e),
            R"({"error":{"message":"m","type":"invalid_request_error","param":null,"code":null}})");
  e = invalid_request(std::string("m"), std::string("messages[1].role"),
                      std::string("invalid_value"));
  e.type = std::string("server_error");
  EXPECT_EQ(test::envelope(e),
            R"({"error":{"message":"m","type":"server_error","param":"messages[1].role",)"
            R"("code":"invalid_value"}})");
}

}  // namespace
}  // namespace rc::openai
