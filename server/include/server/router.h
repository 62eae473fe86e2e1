// The route table: method + path -> handler.
//
// Routes are a static table (the API is fixed by API.md), matched segment by segment; a `{name}`
// segment captures one non-empty path segment. A path that matches a route's pattern but not its
// methods answers 405 with an Allow header; a path that matches nothing answers 404. Metrics label
// requests by route pattern, never by raw path, so label cardinality is bounded.
//
// Thread-safety: the table is immutable; match() is pure.
#pragma once

#include <cstdint>
#include <string_view>

#include "proto/http1_parser.h"
#include "server/metrics.h"

namespace rc::server {

class request_context;

enum class handler_result : uint8_t {
  done,   // the response has been written
  async,  // the handler will complete the response later (the connection waits)
};

using handler_fn = handler_result (*)(request_context&);

enum class route_id : uint8_t {
  healthz,
  readyz,
  metrics,
  system_health,
  topic_publish,
  topic_events,
  ws,
  echo,
  chat_completions,
  responses,
  responses_ws,
  embeddings,
  models,
  model,
  response,
  response_input_items,
  broker_message,
  broker_stream,
  broker_message_cancel,
  dashboard,
  dashboard_ops,
  unmatched,  // 404 and 405, and requests rejected before routing
  count,
};
static_assert(static_cast<size_t>(route_id::count) <= route_slots);

// Bit per method, for route definitions and Allow headers.
constexpr uint16_t method_bit(http1::method m) { return uint16_t(1) << static_cast<unsigned>(m); }

struct route_match {
  route_id route = route_id::unmatched;
  handler_fn handler = nullptr;
  int status = 0;                // 0: matched; 404 or 405
  std::string_view allow;        // for 405: the Allow header value
  std::string_view params[2];    // captured {name} segments, in order
};

route_match match_route(http1::method method, std::string_view path);

// Whether a route is one of the OpenAI-compatible ones (/v1/chat/completions, /v1/responses…,
// /v1/embeddings, /v1/models…), whose errors follow OpenAI's envelope to the letter (code may be
// null); ringcast's own routes always give errors a code.
bool openai_compatible(route_id r);

// The pattern of a route, for metric labels ("/healthz", "unmatched").
std::string_view route_label(route_id r);

}  // namespace rc::server
