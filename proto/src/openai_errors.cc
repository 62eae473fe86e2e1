#include "proto/openai_errors.h"

#include <string>

namespace rc::openai {

void write_error_object(json::writer& w, const api_error& e) {
  w.begin_object();
  w.string_member("message", e.message);
  w.string_member("type", e.type);
  if (e.param) {
    w.string_member("param", *e.param);
  } else {
    w.null_member("param");
  }
  if (e.code) {
    w.string_member("code", *e.code);
  } else {
    w.null_member("code");
  }
  w.end_object();
}

void write_error(byte_buffer& out, const api_error& e) {
  json::writer w(out);
  w.begin_object();
  w.key("error");
  write_error_object(w, e);
  w.end_object();
}

api_error invalid_request(std::string message, std::optional<std::string> param,
                          std::optional<std::string> code) {
  api_error e;
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

api_error invalid_json(json::parse_status status, std::string_view detail) {
  std::string m = "We could not parse the JSON body of your request: ";
  if (status == json::parse_status::empty) {
    m += "the body is empty. The OpenAI API expects a JSON object.";
  } else {
    m.append(detail);
    if (!m.empty() && m.back() != '.') m += '.';
  }
  return invalid_request(std::move(m));
}

api_error body_not_object(json::kind got) {
  std::string_view name = "a value";
  switch (got) {
    case json::kind::null:
      name = "null";
      break;
    case json::kind::boolean:
      name = "a boolean";
      break;
    case json::kind::int64:
    case json::kind::uint64:
      name = "an integer";
      break;
    case json::kind::number:
      name = "a decimal";
      break;
    case json::kind::string:
      name = "a string";
      break;
    case json::kind::array:
      name = "an array";
      break;
    case json::kind::object:
      name = "an object";
      break;
  }
  std::string m =
      "We could not parse the JSON body of your request: expected a JSON object, but got ";
  m.append(name);
  m += " instead.";
  return invalid_request(std::move(m));
}

api_error missing_api_key() {
  api_error e = invalid_request(
      "You didn't provide an API key. You need to provide your API key in an Authorization "
      "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).");
  e.status = 401;
  return e;
}

api_error invalid_api_key(std::string_view key) {
  std::string shown;
  if (key.size() > 8) {
    shown.append(key.substr(0, 3));
    shown += "***";
    shown.append(key.substr(key.size() - 4));
  } else {
    shown = "***";
  }
  api_error e = invalid_request("Incorrect API key provided: " + shown + ".", std::nullopt,
                                "invalid_api_key");
  e.status = 401;
  return e;
}

api_error unknown_route(std::string_view method, std::string_view path) {
  std::string m = "Invalid URL (";
  m.append(method);
  m += ' ';
  m.append(path);
  m += ')';
  api_error e = invalid_request(std::move(m));
  e.status = 404;
  return e;
}

api_error model_not_found(std::string_view model) {
  std::string m = "The model '";
  m.append(model);
  m += "' does not exist or you do not have access to it.";
  api_error e = invalid_request(std::move(m), std::nullopt, "model_not_found");
  e.status = 404;
  return e;
}

api_error method_not_allowed(std::string_view method, std::string_view path) {
  std::string m = "Method ";
  m.append(method);
  m += " is not allowed for ";
  m.append(path);
  m += '.';
  api_error e = invalid_request(std::move(m));
  e.status = 405;
  return e;
}

api_error previous_response_not_found(std::string_view id) {
  std::string m = "Previous response with id '";
  m.append(id);
  m += "' not found.";
  return invalid_request(std::move(m), "previous_response_id", "previous_response_not_found");
}

api_error conversation_busy(std::string_view id) {
  std::string m = "Another request is already continuing the response '";
  m.append(id);
  m += "'. Wait for it to finish and try again.";
  api_error e = invalid_request(std::move(m), "previous_response_id", "conflict");
  e.status = 409;
  return e;
}

api_error body_too_large(size_t limit_bytes) {
  api_error e = invalid_request("The request body is too large. The maximum size is " +
                                    std::to_string(limit_bytes) + " bytes.",
                                std::nullopt, "request_too_large");
  e.status = 413;
  return e;
}

api_error rate_limited(std::string_view detail) {
  // The detail is the whole first sentence ("Rate limit reached for requests"), said once.
  std::string m(detail.empty() ? std::string_view("Rate limit reached") : detail);
  m += ". Please try again later.";
  api_error e = invalid_request(std::move(m), std::nullopt, "rate_limit_exceeded");
  e.status = 429;
  e.type = "requests";
  return e;
}

api_error overloaded() {
  api_error e = invalid_request("The server is overloaded. Please retry your request later.",
                                std::nullopt, "server_overloaded");
  e.status = 503;
  e.type = "server_error";
  return e;
}

api_error upstream_timeout() {
  api_error e =
      invalid_request("The upstream model server timed out.", std::nullopt, "upstream_timeout");
  e.status = 504;
  e.type = "server_error";
  return e;
}

api_error internal_error(std::string_view detail) {
  std::string m = "The server had an error while processing your request";
  if (!detail.empty()) {
    m += ": ";
    m.append(detail);
  }
  m += '.';
  api_error e = invalid_request(std::move(m));
  e.status = 500;
  e.type = "server_error";
  return e;
}

api_error cancelled() {
  return invalid_request("The request was cancelled.", std::nullopt, "cancelled");
}

}  // namespace rc::openai
