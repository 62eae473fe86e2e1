// The openai engine's error mapping: statuses, envelopes, Retry-After, transport errors.
#include "../../../server/src/openai_failure.h"

#include <gtest/gtest.h>

namespace rc::server {
namespace {

TEST(OpenaiFailure, EnvelopeOf4xxPassesThroughWithItsStatus) {
  std::string body = R"({"error":{"message":"bad tool","type":"invalid_request_error","param":"tools[0]","code":"invalid_value"}})";
  upstream_failure f = failure_from_status(400, body, std::nullopt);
  EXPECT_EQ(f.http_status, 400);
  EXPECT_EQ(f.envelope, body);
  EXPECT_EQ(f.code, "invalid_value");
  EXPECT_EQ(f.param, "tools[0]");
  EXPECT_EQ(f.message, "bad tool");
  EXPECT_EQ(failure_from_status(404, R"({"error":{"message":"no model"}})", std::nullopt).http_status, 404);
}

TEST(OpenaiFailure, AuthFailuresAreTheGatewaysProblem) {
  for (int status : {401, 403}) {
    upstream_failure f = failure_from_status(status, R"({"error":{"message":"Incorrect API key sk-abc"}})", std::nullopt);
    EXPECT_EQ(f.http_status, 502);
    EXPECT_EQ(f.code, "upstream_auth_failed");
    EXPECT_TRUE(f.envelope.empty());  // the upstream's words about ringcast's key stay here
    EXPECT_EQ(f.message.find("sk-abc"), std::string::npos);
  }
}

TEST(OpenaiFailure, RateLimitsKeepStatusEnvelopeAndRetryAfter) {
  std::string body = R"({"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}})";
  upstream_failure f = failure_from_status(429, body, 7000);
  EXPECT_EQ(f.http_status, 429);
  EXPECT_EQ(f.envelope, body);
  EXPECT_EQ(f.retry_after_ms, 7000u);
  EXPECT_EQ(failure_from_status(429, "busy", std::nullopt).retry_after_ms, 1000u);
  EXPECT_TRUE(failure_from_status(429, "busy", std::nullopt).envelope.empty());
}

TEST(OpenaiFailure, ServerErrorsAndEnvelopeless4xxBecome502) {
  upstream_failure f = failure_from_status(500, R"({"error":{"message":"CUDA out of memory"}})", std::nullopt);
  EXPECT_EQ(f.http_status, 502);
  EXPECT_EQ(f.code, "upstream_error");
  EXPECT_NE(f.message.find("CUDA out of memory"), std::string::npos);
  EXPECT_TRUE(f.envelope.empty());
  EXPECT_EQ(failure_from_status(400, "<html>bad</html>", std::nullopt).http_status, 502);
  EXPECT_EQ(failure_from_status(418, R"({"error":"teapot"})", std::nullopt).http_status, 502);
}

TEST(OpenaiFailure, TransportErrors) {
  upstream_failure f = failure_from_transport(client_error::connect_failed, "u",
                                              "connect to https://10.0.0.5:8000: Connection refused");
  EXPECT_EQ(f.http_status, 503);
  EXPECT_EQ(f.code, "upstream_unavailable");
  EXPECT_GT(f.retry_after_ms, 0u);
  // Only the upstream's configured name reaches the client, never its addresses.
  EXPECT_EQ(f.message, "The upstream 'u' cannot be reached. Try again later.");
  upstream_failure t = failure_from_transport(client_error::tls, "u",
                                              "TLS handshake with 10.0.0.5: certificate verify failed (CN=internal.corp)");
  EXPECT_EQ(t.message, "TLS with the upstream 'u' failed (certificate verify failed).");
  for (client_error e : {client_error::timeout_connect, client_error::timeout_first_byte,
                         client_error::timeout_idle, client_error::timeout_total}) {
    EXPECT_EQ(failure_from_transport(e, "u", "").http_status, 504);
    EXPECT_EQ(failure_from_transport(e, "u", "").code, "upstream_timeout");
  }
  EXPECT_EQ(failure_from_transport(client_error::reset, "u", "").code, "upstream_disconnected");
  EXPECT_EQ(failure_from_transport(client_error::protocol, "u", "").code, "upstream_protocol_error");
  EXPECT_EQ(failure_from_transport(client_error::tls, "u", "").code, "upstream_tls_error");
}

TEST(OpenaiFailure, PoolExhaustedIs503WithRetryAfter) {
  upstream_failure f = failure_from_transport(client_error::pool_exhausted, "u",
                                              "no free connection to http://10.0.0.5:8000");
  EXPECT_EQ(f.http_status, 503);
  EXPECT_EQ(f.message.find("10.0.0.5"), std::string::npos) << f.message;
  EXPECT_EQ(f.code, "upstream_busy");
  EXPECT_GT(f.retry_after_ms, 0u);
}

}  // namespace
}  // namespace rc::server
