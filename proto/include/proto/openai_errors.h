// OpenAI error envelope: every error a client of an OpenAI-compatible route sees.
//
//   {"error":{"message":"…","type":"invalid_request_error","param":"messages","code":null}}
//
// All four keys are always present; `param` and `code` are JSON null when absent (never the
// string "None"). Request validation (openai_chat.h, openai_responses.h, openai_embeddings.h)
// produces these with OpenAI's wording and param paths ("messages[1].role", "temperature");
// the canned constructors below cover the errors the server itself raises (auth, routing,
// limits, overload) with the status and type OpenAI uses for each.
//
// Thread-safety: pure functions and plain values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/byte_buffer.h"
#include "proto/json_reader.h"
#include "proto/json_writer.h"

namespace rc::openai {

struct api_error {
  int status = 400;  // HTTP status
  std::string message;
  std::string type = "invalid_request_error";
  std::optional<std::string> param;
  std::optional<std::string> code;
};

// {"error":{"message","type","param","code"}}: the HTTP body, and the chat stream's
// mid-stream `data:` payload.
void write_error(byte_buffer& out, const api_error& e);
// The inner {"message","type","param","code"} object, for embedding in other envelopes.
void write_error_object(json::writer& w, const api_error& e);

api_error invalid_request(std::string message, std::optional<std::string> param = std::nullopt,
                          std::optional<std::string> code = std::nullopt);

// The body is not JSON (or not a JSON object): 400, param null.
api_error invalid_json(json::parse_status status, std::string_view detail);
// 400 when the request body is a JSON value other than an object.
api_error body_not_object(json::kind got);

// 401. A wrong key is never echoed in full: at most its first 3 and last 4 characters (OpenAI
// masks it too).
api_error missing_api_key();
api_error invalid_api_key(std::string_view key);
// 404 "Invalid URL (POST /v1/foo)".
api_error unknown_route(std::string_view method, std::string_view path);
// 404 code model_not_found.
api_error model_not_found(std::string_view model);
// 405.
api_error method_not_allowed(std::string_view method, std::string_view path);
// 400, param previous_response_id, code previous_response_not_found.
api_error previous_response_not_found(std::string_view id);
// 409: another request is already continuing the same previous_response_id.
api_error conversation_busy(std::string_view id);
// 413 with the limit in bytes.
api_error body_too_large(size_t limit_bytes);
// 429, type "requests", code rate_limit_exceeded. `detail` is the first sentence of the message
// (empty: "Rate limit reached"); ". Please try again later." follows.
api_error rate_limited(std::string_view detail);
// 503, type "server_error", code server_overloaded.
api_error overloaded();
// 504, type "server_error", code upstream_timeout.
api_error upstream_timeout();
// 500, type "server_error".
api_error internal_error(std::string_view detail);
// 400, code cancelled (streams ended by a client `cancel`).
api_error cancelled();

}  // namespace rc::openai
