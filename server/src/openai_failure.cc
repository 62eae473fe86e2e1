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

namespace {

// What a client may learn of a TLS failure: its kind, never names, addresses or certificates.
std::string_view tls_reason(std::string_view detail) {
  if (detail.find("hostname mismatch") != std::string_view::npos) return "hostname mismatch";
  if (detail.find("expired") != std::string_view::npos) return "certificate expired";
  if (detail.find("verify failed") != std::string_view::npos) return "certificate verify failed";
  return "handshake failed";
}

}  // namespace

upstream_failure failure_from_transport(client_error kind, std::string_view upstream,
                                        std::string_view detail) {
  // The detail (URLs, addresses, resolver and certificate text) is the operator's, for the log.
  std::string who = "The upstream '" + std::string(upstream) + "'";
  switch (kind) {
    case client_error::connect_failed: {
      upstream_failure f = make(503, "upstream_unavailable", "server_error",
                                who + " cannot be reached. Try again later.");
      f.retry_after_ms = default_retry_after_ms;
      return f;
    }
    case client_error::timeout_connect:
    case client_error::timeout_first_byte:
    case client_error::timeout_idle:
    case client_error::timeout_total:
      return make(504, "upstream_timeout", "server_error", who + " did not answer in time.");
    case client_error::reset:
      return make(502, "upstream_disconnected", "server_error", who + " closed the connection.");
    case client_error::tls:
      return make(502, "upstream_tls_error", "server_error",
                  "TLS with the upstream '" + std::string(upstream) + "' failed (" +
                      std::string(tls_reason(detail)) + ").");
    case client_error::pool_exhausted: {
      upstream_failure f = make(503, "upstream_busy", "server_error",
                                "All connections to the upstream '" + std::string(upstream) +
                                    "' are in use. Try again later.");
      f.retry_after_ms = default_retry_after_ms;
      return f;
    }
    case client_error::protocol:
    case client_error::none:
      break;
  }
  return make(502, "upstream_protocol_error", "server_error", who + " sent a malformed response.");
}

}  // namespace rc::server
