// How the openai engine reports an upstream's failure to the client: the error mapping,
// as pure functions over what the upstream said (so they are unit-tested without sockets).
//
//   upstream 4xx with an OpenAI envelope   the same status, the envelope unchanged
//   upstream 401 / 403                     502 upstream_auth_failed (the key is ringcast's
//                                          business, not the client's)
//   upstream 429                           429, its envelope, Retry-After (the upstream's, or 1 s)
//   upstream 5xx (after retries)           502 upstream_error, with the upstream's message
//   4xx without an envelope                502 upstream_error
//   connect failed / no endpoint usable    503 upstream_unavailable + Retry-After
//   any timeout                            504 upstream_timeout
//   reset, malformed response, TLS         502 upstream_disconnected / upstream_protocol_error /
//                                          upstream_tls_error
//
// Which failures are worth another attempt is retry_policy's business (retry_policy.h).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "server/http_client.h"

namespace rc::server {

struct upstream_failure {
  uint16_t http_status = 502;
  std::string code;     // e.g. "upstream_auth_failed"
  std::string type;     // the envelope's type
  std::string message;
  std::string param;
  uint32_t retry_after_ms = 0;
  std::string envelope;  // the upstream's {"error":{…}} to answer unchanged ("" none)
};

// The failure for an upstream answer with a non-2xx status and this body.
upstream_failure failure_from_status(int status, std::string_view body,
                                     std::optional<uint32_t> retry_after_ms);
// The failure for a transport error of the upstream configured as `upstream`: the message names
// only that and the kind of failure; `detail` (the client's own text) is never sent on.
upstream_failure failure_from_transport(client_error kind, std::string_view upstream,
                                        std::string_view detail);
// 502 upstream_protocol_error: a malformed answer (not JSON, broken SSE, an oversized line).
upstream_failure protocol_failure(std::string message);

}  // namespace rc::server
