// Helpers shared by the OpenAI codec tests: parse a body and run a request parser, compare
// error envelopes, and check that encoder output is valid JSON.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

#include "proto/json_reader.h"
#include "proto/openai_common.h"
#include "proto/openai_errors.h"

namespace rc::openai::test {

// Parses `body` (must be a JSON object) and runs `parse` (e.g. parse_chat_request) on it.
template <class Request, class Parse>
std::optional<api_error> run(Parse parse, std::string_view body, Request& out) {
  json::parser p;
  json::value root;
  if (auto e = parse_json_body(p, body.data(), body.size(), body.size(), root)) return e;
  return parse(root, out);
}

// The error envelope as JSON text, for exact comparisons.
inline std::string envelope(const api_error& e) {
  byte_buffer b;
  write_error(b, e);
  return std::string(b.view());
}

// Expects that `got` is an error with exactly this message, param and code (nullopt = null).
inline void expect_error(const std::optional<api_error>& got, std::string_view message,
                         std::optional<std::string> param, std::optional<std::string> code,
                         int status = 400) {
  ASSERT_TRUE(got.has_value()) << "expected error: " << message;
  EXPECT_EQ(got->message, message);
  EXPECT_EQ(got->param, param) << got->message;
  EXPECT_EQ(got->code, code) << got->message;
  EXPECT_EQ(got->type, "invalid_request_error");
  EXPECT_EQ(got->status, status);
}

// Re-parses `text` with simdjson; fails the test if it is not one valid JSON value.
inline void expect_valid_json(std::string_view text) {
  json::parser p;
  json::parse_result r = p.parse(text);
  EXPECT_TRUE(r.ok()) << json::to_string(r.status) << ": " << r.message << "\n" << text;
  EXPECT_EQ(text.find('\n'), std::string_view::npos) << text;
  EXPECT_EQ(text.find('\r'), std::string_view::npos) << text;
}

}  // namespace rc::openai::test
