// Topic routes (POST /v1/topics/{topic}, GET /v1/topics/{topic}/events), WebSocket upgrades
// (/ws, /echo) and GET /v1/system/health.
#include <optional>
#include <string>

#include "proto/json_reader.h"
#include "proto/json_writer.h"
#include "proto/ws.h"
#include "proto/ws_deflate.h"
#include "server/authentication.h"
#include "server/connection.h"
#include "server/handlers.h"
#include "server/openai_api.h"
#include "server/query.h"
#include "server/shard.h"
#include "server/ws_broker.h"
#include "server/ws_compression.h"

namespace rc::server {
namespace {

// Topics across nodes need the cluster: false after answering 503 nats_unavailable when it is
// not available (topics.h).
bool topics_available(request_context& ctx) {
  std::string_view why = ctx.shard.topics().unavailable_reason();
  if (why.empty()) return true;
  respond_api_error(ctx.conn,
                    abort_error("nats_unavailable",
                                "Topics are unavailable (" + std::string(why) + "); retry later"),
                    ctx.shard.topics().retry_after_ms());
  return false;
}

bool topic_name_ok(request_context& ctx, std::string_view topic) {
  std::string_view why = ctx.shard.topics().check_name(topic);
  if (why.empty()) return true;
  ctx.conn.respond_error(400, why, "invalid_request_error", "topic", "invalid_topic");
  return false;
}

// Topic permissions of the request's key or token (authentication.h): false when it answered 403.
bool topic_permitted(request_context& ctx, topic_action action, std::string_view topic) {
  std::optional<openai::api_error> refused = topic_refusal(ctx.conn, action, topic);
  if (!refused) return true;
  ++ctx.shard.metrics().rejected[static_cast<size_t>(reject_reason::permission)];
  respond_api_error(ctx.conn, *refused);
  return false;
}

}  // namespace

handler_result handle_topic_publish(request_context& ctx) {
  std::string_view topic = ctx.route.params[0];
  if (!topic_name_ok(ctx, topic)) return handler_result::done;
  if (!topic_permitted(ctx, topic_action::publish, topic)) return handler_result::done;
  if (ctx.body.size() > ctx.shard.config().publish_bytes_max) {
    ctx.conn.respond_error(413,
                           "The publication is larger than " +
                               std::to_string(ctx.shard.config().publish_bytes_max) +
                               " bytes (raise --publish-bytes-max)",
                           "invalid_request_error", {}, "body_too_large");
    return handler_result::done;
  }
  json::parse_result r =
      ctx.shard.json_parser().parse(ctx.body.data(), ctx.body.size(), ctx.body_capacity);
  if (!r.ok()) {
    ctx.conn.respond_error(400,
                           "We could not parse the JSON body of your request: " +
                               std::string(r.message),
                           "invalid_request_error", {}, "invalid_json");
    return handler_result::done;
  }
  if (!topics_available(ctx)) return handler_result::done;
  byte_buffer compact;
  r.root.write_to(compact);
  uint64_t conn_id = ctx.conn.id();
  // Answered from another shard: publications pipelined behind this one go on meanwhile, so a
  // run of them reaches the home (and the subscribers) together (connection.h, defer()).
  uint64_t ticket = ctx.shard.topics().answers_later(topic) ? ctx.conn.defer() : 0;
  ctx.shard.topics().publish(
      std::string(topic), std::string(compact.view()),
      [conn_id, ticket](topic_registry::publish_result&& res) {
        connection* c = shard_server::current()->find_connection(conn_id);
        if (!c) return;
        c->answer(ticket, [&] {
          if (!res.ok()) {
            respond_api_error(*c, abort_error(res.error_code, res.error_message),
                              res.retry_after_ms);
            return;
          }
          byte_buffer out;
          res.write_json(out);
          c->respond(200, "application/json", out.view());
        });
      });
  return handler_result::async;
}

handler_result handle_topic_events(request_context& ctx) {
  std::string_view topic = ctx.route.params[0];
  if (!topic_name_ok(ctx, topic)) return handler_result::done;
  if (!topic_permitted(ctx, topic_action::subscribe, topic)) return handler_result::done;
  // EventSource sends Last-Event-ID when it reconnects; ?since= serves clients that can't set
  // headers on the first connection.
  // A malformed ?since= is the client's mistake: 400. A Last-Event-ID the server cannot use (it
  // comes from an EventSource reconnecting) starts over with `event: reset` instead.
  auto since_query = query_value(ctx.req.query, "since");
  if (since_query && !event_id_syntax_ok(*since_query)) {
    ctx.conn.respond_error(400,
                           "Invalid 'since': expected an event id (\"<epoch>-<seq>\" or \"<seq>\", "
                           "seq a non-negative 64-bit integer)",
                           "invalid_request_error", "since", "invalid_since");
    return handler_result::done;
  }
  if (!topics_available(ctx)) return handler_result::done;
  std::string_view since = ctx.req.find("last-event-id");
  std::string since_copy(since);  // the request's bytes go away once the head is handled
  if (since_copy.empty() && since_query) since_copy = std::move(*since_query);
  ctx.conn.begin_sse();
  ctx.shard.topics().subscribe(ctx.conn, topic, subscriber_kind::sse, since_copy, {});
  return handler_result::async;
}

handler_result upgrade_websocket(request_context& ctx, std::unique_ptr<ws_handler> handler) {
  const http1::request& req = ctx.req;
  ws::handshake_request hr;
  hr.method = req.method_name;
  hr.version = req.version == http1::version::http_1_0 ? ws::http_version::http_1_0
                                                       : ws::http_version::http_1_1;
  hr.upgrade = req.find("upgrade");
  hr.connection = req.find("connection");
  hr.key = req.find("sec-websocket-key");
  hr.ws_version = req.find("sec-websocket-version");
  hr.protocol = req.find("sec-websocket-protocol");
  hr.origin = req.find("origin");
  if (!ctx.shard.cors().websocket_allowed(hr.origin)) {
    ++ctx.shard.metrics().rejected[static_cast<size_t>(reject_reason::origin)];
    ctx.conn.respond_error(403, "WebSocket connections from this origin are not allowed",
                           "invalid_request_error", {}, "origin_not_allowed");
    return handler_result::done;
  }
  ws::handshake_result res = ws::check_handshake(hr);
  if (!res.ok()) {
    if (!res.header_name.empty()) {
      ctx.conn.respond_error(res.status, res.message, "invalid_request_error", {},
                             "websocket_handshake", {{res.header_name, res.header_value}});
    } else {
      ctx.conn.respond_error(res.status, res.message, "invalid_request_error", {},
                             "websocket_handshake");
    }
    return handler_result::done;
  }
  std::optional<ws::deflate_agreement> deflate;
  if (ctx.shard.config().ws_deflate) {
    const server_config& cfg = ctx.shard.config();
    ws::deflate_policy policy{
        .window_bits = static_cast<uint8_t>(cfg.ws_deflate_window_bits),
        .context_takeover = ws_compression::local().contexts < cfg.ws_deflate_contexts_max};
    deflate = ws::negotiate_deflate(req.find("sec-websocket-extensions"), policy);
    if (deflate && !policy.context_takeover) {
      // At the cap: would the client have kept a context had there been room?
      policy.context_takeover = true;
      auto wanted = ws::negotiate_deflate(req.find("sec-websocket-extensions"), policy);
      if (wanted && !wanted->server_no_context_takeover)
        ++ws_compression::counters().contexts_refused;
    }
  }
  ctx.conn.upgrade_to_websocket(res.accept_key(), {}, std::move(handler),
                                deflate ? &*deflate : nullptr);
  return handler_result::done;
}

handler_result handle_ws(request_context& ctx) {
  return upgrade_websocket(ctx, std::make_unique<broker_ws_handler>());
}

handler_result handle_echo(request_context& ctx) {
  if (!ctx.shard.config().echo) {
    ctx.conn.respond_error(404, "Invalid URL (GET /echo); start ringcast with --echo to enable it");
    return handler_result::done;
  }
  return upgrade_websocket(ctx, std::make_unique<echo_ws_handler>());
}

handler_result handle_system_health(request_context& ctx) {
  uint64_t conn_id = ctx.conn.id();
  ctx.shard.collect_metrics([conn_id](std::vector<shard_metrics>&& snapshots) {
    shard_server* s = shard_server::current();
    connection* c = s->find_connection(conn_id);
    if (!c) return;
    byte_buffer body;
    write_health(body, snapshots, s->draining());
    c->respond(200, "application/json", body.view());
  });
  return handler_result::async;
}

}  // namespace rc::server
