// Route handlers. Each answers one route of router.cc; see API.md for their contracts.
//
// Thread-safety: called on the shard that owns the connection.
#pragma once

#include <memory>

#include "server/router.h"

namespace rc::server {

// Operations (ops_routes.cc).
handler_result handle_healthz(request_context& ctx);
handler_result handle_readyz(request_context& ctx);
handler_result handle_metrics(request_context& ctx);

// The dashboard (ops_dashboard.cc): GET /dashboard (the embedded page), GET /dashboard/ops (the
// SSE stream of snapshots). Both answer 404 without --dashboard.
handler_result handle_dashboard(request_context& ctx);
handler_result handle_dashboard_ops(request_context& ctx);

// Streams (stream_routes.cc).
handler_result handle_topic_publish(request_context& ctx);
handler_result handle_topic_events(request_context& ctx);
handler_result handle_ws(request_context& ctx);
handler_result handle_echo(request_context& ctx);
handler_result handle_system_health(request_context& ctx);

// Answers a WebSocket handshake (101, then `handler` gets the messages) or rejects it (400/405/426).
class ws_handler;
handler_result upgrade_websocket(request_context& ctx, std::unique_ptr<ws_handler> handler);

// OpenAI-compatible (chat_api.cc, responses_api.cc, openai_routes.cc, responses_routes.cc).
handler_result handle_chat_completions(request_context& ctx);
handler_result handle_responses(request_context& ctx);
handler_result handle_responses_ws(request_context& ctx);
handler_result handle_embeddings(request_context& ctx);
handler_result handle_models(request_context& ctx);
// Stored responses and single models (responses_routes.cc): GET/DELETE /v1/responses/{id},
// GET /v1/responses/{id}/input_items, GET /v1/models/{id}.
handler_result handle_response(request_context& ctx);
handler_result handle_response_input_items(request_context& ctx);
handler_result handle_model(request_context& ctx);

// Broker queue (broker_routes.cc).
handler_result handle_broker_message(request_context& ctx);
handler_result handle_broker_stream(request_context& ctx);
handler_result handle_broker_message_cancel(request_context& ctx);

}  // namespace rc::server
