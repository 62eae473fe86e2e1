// Worker failures: how every worker dialect and the supervisor turn what went wrong with a
// local worker (a JSON-RPC error answer, a crash, a timeout, no worker free) into the error a
// client sees: HTTP status, error code and type, message, Retry-After. The table is
// docs/workers.md's "Errors"; one place, so both dialects and the engine agree.
//
//   JSON-RPC -32602 invalid params        400 invalid_request (or data.code) invalid_request_error
//   -32004 model not found                404 model_not_found invalid_request_error -32001
//   overloaded                     503 worker_overloaded  server_error  Retry-After:
//   data.retry_after_ms or 1 s -32002 timeout / deadline passed      504 worker_timeout
//   server_error -32603 / any other code               502 worker_error       server_error -32700 /
//   -32600 / -32601, bad output  502 worker_protocol_error server_error worker exited / killed / no
//   ping      502 worker_crashed     server_error no worker ready in time, crash loop   503
//   worker_unavailable server_error  Retry-After: 1 s (or
//                                                                              the crash loop's)
//   all workers full, wait queue full     503 worker_busy        server_error  Retry-After: 1 s
//
// `data` of a JSON-RPC error (an object; anything else is ignored) may override: `status`
// (400–599), `type`, `code`, `param`, `retry_after_ms`, `retryable` (bool). Overloaded answers
// are retryable by default (the engine retries once on another worker before anything reached
// the client); the others only when data says so. The message is the worker's error.message
// (a default text when it is empty).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "server/owned_event.h"

namespace rc::server {

struct worker_failure {
  uint16_t http_status;
  std::string code, type, message, param;
  uint32_t retry_after_ms = 0;
  bool retryable = false;
};

// A JSON-RPC error answer (`data_json`: raw JSON of error.data, "" when absent).
worker_failure failure_from_rpc_error(int64_t code, std::string_view message,
                                      std::string_view data_json);
// One of ringcast's own worker error codes of the table above (worker_crashed, worker_timeout,
// worker_protocol_error, worker_unavailable, worker_busy, worker_overloaded, worker_error, ...);
// an unknown code maps like worker_error (502).
worker_failure worker_failure_of(std::string_view code, std::string message);
// event_type::error with every field set. A retryable failure carries raw_name "retryable"
// (error events have no raw name otherwise): the jsonrpc engine retries it once before anything
// reached the client, and clears the mark before the client sees the event.
owned_event to_error_event(const worker_failure& f);

}  // namespace rc::server
