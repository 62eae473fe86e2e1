// POST /api/v1/message, GET /api/v1/stream and the WebSocket broker's message.stream.
#include <charconv>

#include "proto/json_reader.h"
#include "proto/json_writer.h"
#include "proto/openai_errors.h"
#include "server/authentication.h"
#include "server/broker.h"
#include "server/cluster.h"
#include "server/connection.h"
#include "server/handlers.h"
#include "server/openai_api.h"
#include "server/query.h"
#include "server/shard.h"
#include "server/ws_broker.h"

namespace rc::server {
namespace {

constexpr size_t user_id_bytes_max = 256;

}  // namespace

std::optional<openai::api_error> parse_broker_request(shard_server& shard, const json::value& root,
                                                      broker_request& out) {
  if (!root.is_object()) return openai::invalid_request("The body must be a JSON object");
  json::value user = root.find("user_id");
  if (!user || !user.is_string() || user.get_string().empty() ||
      user.get_string().size() > user_id_bytes_max) {
    return openai::invalid_request("'user_id' is required: a string of 1 to 256 bytes", "user_id");
  }
  json::value text = root.find("message");
  if (!text || !text.is_string() || text.get_string().empty())
    return openai::invalid_request("'message' is required: a non-empty string", "message");
  out.user_id = std::string(user.get_string());
  out.text = std::string(text.get_string());
  generation_request& g = out.generation;
  g.model = std::string(shard.default_model());
  if (json::value model = root.find("model"); model && !model.is_null()) {
    if (!model.is_string()) return openai::invalid_request("'model' must be a string", "model");
    g.model = std::string(model.get_string());
  }
  if (g.model.empty())  // only upstreams, routed by "*": there is no default model
    return openai::invalid_request("'model' is required (no default model is configured)", "model");
  engine* e = shard.engine_for(g.model);
  if (!e) return openai::model_not_found(g.model);
  if (json::value mt = root.find("max_tokens"); mt && !mt.is_null()) {
    if (mt.kind() != json::kind::int64 && mt.kind() != json::kind::uint64)
      return openai::invalid_request("'max_tokens' must be an integer", "max_tokens");
    int64_t n = mt.get_int64();
    if (n < 1 || static_cast<uint64_t>(n) > e->completion_tokens_max(g.model)) {
      return openai::invalid_request("'max_tokens' must be between 1 and " +
                                         std::to_string(e->completion_tokens_max(g.model)),
                                     "max_tokens");
    }
    g.max_tokens = static_cast<uint64_t>(n);
  }
  if (json::value seed = root.find("seed"); seed && !seed.is_null()) {
    if (seed.kind() != json::kind::int64 && seed.kind() != json::kind::uint64)
      return openai::invalid_request("'seed' must be an integer", "seed");
    g.seed = seed.get_int64();
  }
  for (const char* name : {"temperature", "top_p"}) {
    json::value v = root.find(name);
    if (!v || v.is_null()) continue;
    double max = std::string_view(name) == "temperature" ? 2.0 : 1.0;
    if (!v.is_number() || v.get_double() < 0 || v.get_double() > max) {
      return openai::invalid_request(std::string("'") + name + "' must be a number between 0 and " +
                                         (max == 2.0 ? "2" : "1"),
                                     std::string(name));
    }
    (std::string_view(name) == "temperature" ? g.temperature : g.top_p) = v.get_double();
  }
  if (json::value sys = root.find("system"); sys && !sys.is_null()) {
    if (!sys.is_string()) return openai::invalid_request("'system' must be a string", "system");
    g.conversation.push_back({openai::message_role::system, std::string(sys.get_string())});
  }
  g.conversation.push_back({openai::message_role::user, out.text});
  // For engines that forward requests: the message as a streamed chat request.
  byte_buffer body;
  json::writer w(body);
  w.begin_object();
  w.string_member("model", g.model);
  w.key("messages");
  w.begin_array();
  for (const turn& t : g.conversation) {
    w.begin_object();
    w.string_member("role", openai::to_string(t.role));
    w.string_member("content", t.text);
    w.end_object();
  }
  w.end_array();
  if (g.max_tokens) w.uint64_member("max_tokens", *g.max_tokens);
  if (g.seed) w.int64_member("seed", *g.seed);
  if (root.find("temperature") && !root.find("temperature").is_null())
    w.float64_member("temperature", g.temperature);
  if (root.find("top_p") && !root.find("top_p").is_null()) w.float64_member("top_p", g.top_p);
  w.boolean_member("stream", true);
  w.end_object();
  g.original.api = api_kind::chat;
  g.original.body = std::make_shared<const std::string>(body.view());
  g.original.stream = true;
  return std::nullopt;
}

namespace {

// Broker errors always carry a machine-readable code (OpenAI's validation errors have none).
void respond_broker_error(connection& c, openai::api_error err, std::string_view code) {
  if (!err.code) err.code = std::string(code);
  respond_api_error(c, err);
}

uint64_t parse_last_event_id(std::string_view v) {
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  return ec == std::errc() && p == v.data() + v.size() ? n : 0;
}

// Cluster mode: the partition's owner (or NATS) could not be asked.
openai::api_error broker_unavailable() {
  openai::api_error e;
  e.status = 503;
  e.type = "server_error";
  e.code = "broker_unavailable";
  e.message = "The broker cannot reach the node working this user's messages; retry later";
  return e;
}

uint64_t broker_retry_after_ms(shard_server& shard) {
  cluster* c = shard.cluster_link();
  return c ? std::max<uint64_t>(1000, c->retry_after_ms()) : 1000;
}

}  // namespace

handler_result handle_broker_message(request_context& ctx) {
  if (!check_timeout_header(ctx.conn, ctx.req)) return handler_result::done;
  json::value root;
  if (auto err = openai::parse_json_body(ctx.shard.json_parser(), ctx.body.data(),
                                         ctx.body.size(), ctx.body_capacity, root)) {
    respond_broker_error(ctx.conn, *err, "invalid_json");
    return handler_result::done;
  }
  broker_request req;
  if (auto err = parse_broker_request(ctx.shard, root, req)) {
    respond_broker_error(ctx.conn, *err, "invalid_request");
    return handler_result::done;
  }
  req.deadline_ms = generation_deadline_ms(ctx.shard, ctx.req.find("x-ringcast-timeout-ms"));
  // Cluster mode stores the request as the client sent it.
  if (ctx.shard.cluster_link()) req.body.assign(ctx.body.data(), ctx.body.size());
  uint64_t conn_id = ctx.conn.id();
  ctx.shard.broker_queue().enqueue(std::move(req), [conn_id](broker::enqueue_result&& res) {
    connection* c = shard_server::current()->live_connection(conn_id);
    if (!c) return;
    if (res.error) {
      respond_api_error(*c, *res.error, res.retry_after_ms);
      return;
    }
    byte_buffer body;
    json::writer w(body);
    w.begin_object();
    w.string_member("message_id", res.message_id);
    w.string_member("status", "queued");
    w.uint64_member("queue_position", res.position);
    w.end_object();
    c->respond(202, "application/json", body.view());
  });
  return handler_result::async;
}

handler_result handle_broker_stream(request_context& ctx) {
  auto user = query_value(ctx.req.query, "user_id");
  auto message = query_value(ctx.req.query, "message_id");
  if (!user || user->empty()) {
    respond_broker_error(ctx.conn, openai::invalid_request("'user_id' is required", "user_id"),
                         "invalid_request");
    return handler_result::done;
  }
  if (!message || message->empty()) {
    respond_broker_error(ctx.conn,
                         openai::invalid_request("'message_id' is required", "message_id"),
                         "invalid_request");
    return handler_result::done;
  }
  if (auto refused = user_refusal(ctx.conn, *user)) {
    ++ctx.shard.metrics().rejected[static_cast<size_t>(reject_reason::permission)];
    respond_api_error(ctx.conn, *refused);
    return handler_result::done;
  }
  uint64_t after = parse_last_event_id(ctx.req.find("last-event-id"));
  uint64_t conn_id = ctx.conn.id();
  std::string id = *message;
  ctx.shard.broker_queue().watch(
      ctx.conn, std::move(*user), std::move(*message), subscriber_kind::sse, after, {},
      [conn_id, id](broker::watch_answer answer) {
        shard_server& shard = *shard_server::current();
        connection* c = shard.live_connection(conn_id);
        if (!c) return;
        if (answer == broker::watch_answer::found) {
          c->begin_sse();
        } else if (answer == broker::watch_answer::unavailable) {
          respond_api_error(*c, broker_unavailable(), broker_retry_after_ms(shard));
        } else {
          c->respond_error(404, "No message '" + id + "' for this user (it may have expired)",
                           "invalid_request_error", "message_id", "message_not_found");
        }
      });
  return handler_result::async;
}

uint64_t start_message_stream_ws(ws_endpoint& ws, std::string_view request_id,
                                 const json::value& payload) {
  json::value user = payload ? payload.find("user_id") : json::value();
  json::value message = payload ? payload.find("message_id") : json::value();
  if (!user || !user.is_string() || !message || !message.is_string()) {
    broker_ws_handler::send_error(ws, request_id, "invalid_request",
                                  "'payload.user_id' and 'payload.message_id' are required strings");
    return 0;
  }
  if (auto refused = user_refusal(ws.conn(), user.get_string())) {
    ++ws.shard().metrics().rejected[static_cast<size_t>(reject_reason::permission)];
    broker_ws_handler::send_error(ws, request_id, refused->code.value_or("permission_denied"),
                                  refused->message);
    return 0;
  }
  uint64_t after = 0;
  if (json::value last = payload.find("last_event_id"); last && !last.is_null()) {
    // The `event_id` of a lifecycle event: its decimal string, or the number.
    bool ok = false;
    if (last.is_string()) {
      std::string_view v = last.get_string();
      ok = !v.empty() && v.find('-') == std::string_view::npos && event_id_syntax_ok(v);
      if (ok) after = parse_last_event_id(v);
    } else if (last.kind() == json::kind::uint64 ||
               (last.kind() == json::kind::int64 && last.get_int64() >= 0)) {
      ok = true;
      after = last.get_uint64();
    }
    if (!ok) {
      broker_ws_handler::send_error(ws, request_id, "invalid_request",
                                    "'payload.last_event_id' must be the event_id of a lifecycle "
                                    "event (a non-negative integer)");
      return 0;
    }
  }
  uint64_t conn_id = ws.connection_id();
  std::string id(request_id), mid(message.get_string());
  return ws.shard().broker_queue().watch(
      ws.conn(), std::string(user.get_string()), mid, subscriber_kind::ws, after, id,
      [conn_id, id, mid](broker::watch_answer answer) {
        connection* c = shard_server::current()->live_connection(conn_id);
        if (!c || !c->websocket()) return;
        if (answer == broker::watch_answer::not_found) {
          broker_ws_handler::send_error(*c->websocket(), id, "message_not_found",
                                        "No message '" + mid + "' for this user");
        } else if (answer == broker::watch_answer::unavailable) {
          broker_ws_handler::send_error(*c->websocket(), id, "broker_unavailable",
                                        broker_unavailable().message);
        }
      });
}

handler_result handle_broker_message_cancel(request_context& ctx) {
  auto user = query_value(ctx.req.query, "user_id");
  if (!user || user->empty()) {
    respond_broker_error(ctx.conn, openai::invalid_request("'user_id' is required", "user_id"),
                         "invalid_request");
    return handler_result::done;
  }
  std::string id = path_segment_decode(ctx.route.params[0]).value_or("");
  uint64_t conn_id = ctx.conn.id();
  ctx.shard.broker_queue().cancel(
      std::move(*user), id, [conn_id, id](broker::cancel_outcome outcome) {
        connection* c = shard_server::current()->live_connection(conn_id);
        if (!c) return;
        using outcome_t = broker::cancel_outcome;
        if (outcome == outcome_t::unavailable) {
          respond_api_error(*c, broker_unavailable(),
                            broker_retry_after_ms(*shard_server::current()));
          return;
        }
        if (outcome == outcome_t::not_found) {
          c->respond_error(404, "No message '" + id + "' for this user (it may have expired)",
                           "invalid_request_error", "message_id", "message_not_found");
          return;
        }
        if (outcome == outcome_t::finished) {
          c->respond_error(409, "Message '" + id + "' has already finished",
                           "invalid_request_error", "message_id", "message_finished");
          return;
        }
        byte_buffer body;
        json::writer w(body);
        w.begin_object();
        w.string_member("message_id", id);
        w.string_member("status", "cancelled");
        w.string_member("previous_status",
                        outcome == outcome_t::cancelled_queued ? "queued" : "processing");
        w.end_object();
        c->respond(200, "application/json", body.view());
      });
  return handler_result::async;
}

}  // namespace rc::server
