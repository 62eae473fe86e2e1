// The openai engine's error mapping (see openai_failure.h).
#include "openai_failure.h"

#include "proto/json_reader.h"

namespace rc::server {
namespace {

constexpr uint32_t default_retry_after_ms = 1000;

std::string_view string_member(const json::value& v, std::string_view key) {
  if (!v || !v.is_object()) return {};
  json::value m = v.find(key);
  return m && m.is_string() ? m.get_string() : std::string_view();
}

upstream_failure make(uint16_t status, std::string code, std::string type, std::string message) {
  upstream_failure f;
  f.http_status = status;
  f.code = std::move(code);
  f.type = std::move(type);
  f.message = std::move(message);
  return f;
}

}  // namespace

upstream_failure failure_from_status(int status, std::string_view body,
                                     std::optional<uint32_t> retry_after_ms) {
  // The upstream's envelope, if the body is one: {"error":{"message":…}} (OpenAI, vLLM) or
  // {"error":"…"} (some servers).
  json::parser p;
  json::parse_result r = p.parse(body);
  json::value err = r.ok() && r.root.is_object() ? r.root.find("error") : json::value();
  bool envelope = err && (err.is_object() || err.is_string());
  std::string message(err && err.is_string() ? err.get_string() : string_member(err, "message"));
  std::string code_text = "HTTP " + std::to_string(status);

  if (status == 401 || status == 403) {
    return make(502, "upstream_auth_failed", "server_error",
                "The upstream refused ringcast's credentials (" + code_text +
                    "). Check the upstream's api_key_env.");
  }
  if (status == 429) {
    upstream_failure f = make(429, "rate_limit_exceeded", "requests",
                              message.empty() ? "The upstream is rate limiting requests." : message);
    if (envelope && err.is_object()) f.envelope = std::string(body);
    f.retry_after_ms = retry_after_ms.value_or(default_retry_after_ms);
    return f;
  }
  if (status >= 400 && status < 500 && envelope && err.is_object()) {
    upstream_failure f = make(static_cast<uint16_t>(status), std::string(string_member(err, "code")),
                              std::string(string_member(err, "type")), message);
    f.param = std::string(string_member(err, "param"));
    f.envelope = std::string(body);
    if (f.message.empty()) f.message = "The upstream refused the request (" + code_text + ").";
    return f;
  }
  std::string why = status >= 500 ? "The upstream failed (" + code_text + ")"
                                  : "The upstream answered " + code_text + " without an error envelope";
  if (!message.empty()) why += ": " + message;
  why += ".";
  upstream_failure f = make(502, "upstream_error", "server_error", std::move(why));
  if (status == 503 && retry_after_ms) f.retry_after_ms = *retry_after_ms;
  return f;
}

upstream_failure protocol_failure(std::string message) {
  return make(502, "upstream_protocol_error", "server_error", std::move(message));
}

upstream_failure failure_from_transport(client_error kind, std::string_view message) {
  std::string detail = message.empty() ? std::string() : " (" + std::string(message) + ")";
  switch (kind) {
    case client_error::connect_failed: {
      upstream_failure f = make(503, "upstream_unavailable", "server_error",
                                "The upstream cannot be reached" + detail + ". Try again later.");
      f.retry_after_ms = default_retry_after_ms;
      return f;
    }
    case client_error::timeout_connect:
    case client_error::timeout_first_byte:
    case client_error::timeout_idle:
    case client_error::timeout_total:
      return make(504, "upstream_timeout", "server_error",
                  "The upstream did not answer in time" + detail + ".");
    case client_error::reset:
      return make(502, "upstream_disconnected", "server_error",
                  "The upstream closed the connection" + detail + ".");
    case client_error::tls:
      return make(502, "upstream_tls_error", "server_error",
                  "The upstream's TLS failed" + detail + ".");
    case client_error::pool_exhausted: {
      upstream_failure f = make(503, "upstream_busy", "server_error",
                                "Every connection to the upstream is in use" + detail +
                                    ". Try again later.");
      f.retry_after_ms = default_retry_after_ms;
      return f;
    }
    case client_error::protocol:
    case client_error::none:
      break;
  }
  return make(502, "upstream_protocol_error", "server_error",
              "The upstream sent a malformed response" + detail + ".");
}

}  // namespace rc::server
