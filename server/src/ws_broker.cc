#include "server/ws_broker.h"

#include "proto/json_reader.h"
#include "proto/json_writer.h"
#include "server/authentication.h"
#include "server/broker.h"
#include "server/connection.h"
#include "server/generation.h"
#include "server/openai_api.h"
#include "server/query.h"
#include "server/responses_api.h"
#include "server/shard.h"

namespace rc::server {
namespace {

void write_id(json::writer& w, std::string_view id) {
  w.key("id");
  if (id.empty()) {
    w.null();
  } else {
    w.string(id);
  }
}

}  // namespace

void broker_ws_handler::send_event(ws_endpoint& ws, std::string_view id, std::string_view event,
                                   std::string_view data_json) {
  byte_buffer msg;
  json::writer w(msg);
  w.begin_object();
  write_id(w, id);
  w.string_member("event", event);
  if (!data_json.empty()) w.raw_member("data", data_json);
  w.end_object();
  ws.send_text(msg.view());
}

void broker_ws_handler::send_error(ws_endpoint& ws, std::string_view id, std::string_view code,
                                   std::string_view message) {
  byte_buffer msg;
  json::writer w(msg);
  w.begin_object();
  write_id(w, id);
  w.string_member("event", "error");
  w.key("error");
  w.begin_object();
  w.string_member("code", code);
  w.string_member("message", message);
  w.end_object();
  w.end_object();
  ws.send_text(msg.view());
}

void broker_ws_handler::send_refusal(ws_endpoint& ws, std::string_view id,
                                     const openai::api_error& e, uint64_t retry_after_ms) {
  byte_buffer msg;
  json::writer w(msg);
  w.begin_object();
  write_id(w, id);
  w.string_member("event", "error");
  w.key("error");
  w.begin_object();
  w.string_member("code", e.code.value_or(e.type));
  w.string_member("message", e.message);
  w.uint64_member("status", static_cast<uint64_t>(e.status));
  w.uint64_member("retry_after_ms", retry_after_ms);
  w.end_object();
  w.end_object();
  ws.send_text(msg.view());
  if (e.code == "queue_full") ws.pause_flow_for(retry_after_ms);
}

void broker_ws_handler::on_message(ws_endpoint& ws, ws::message_kind kind,
                                   std::string_view payload) {
  if (closed_) return;
  if (kind != ws::message_kind::text) {
    send_error(ws, {}, "unsupported_data", "the /ws protocol takes JSON in text frames");
    return;
  }
  json::parse_result r = ws.shard().json_parser().parse(payload);
  if (!r.ok()) {
    send_error(ws, {}, "invalid_json",
               "could not parse the message as JSON: " + std::string(r.message));
    return;
  }
  const json::value& root = r.root;
  if (!root.is_object()) {
    send_error(ws, {}, "invalid_request", "a message must be a JSON object");
    return;
  }
  json::value id = root.find("id");
  if (!id || !id.is_string() || id.get_string().empty()) {
    send_error(ws, {}, "invalid_request", "'id' is required and must be a non-empty string");
    return;
  }
  json::value action = root.find("action");
  if (!action || !action.is_string()) {
    send_error(ws, id.get_string(), "invalid_request",
               "'action' is required and must be a string");
    return;
  }
  json::value body = root.find("payload");
  if (body && !body.is_object()) {
    send_error(ws, id.get_string(), "invalid_request", "'payload' must be a JSON object");
    return;
  }
  dispatch(ws, id.get_string(), action.get_string(), body);
}

void broker_ws_handler::dispatch(ws_endpoint& ws, std::string_view id, std::string_view action,
                                 const json::value& payload) {
  uint64_t retry_ms = 0;
  if (!ws.conn().admit_ws_action(retry_ms)) {
    openai::api_error e = openai::rate_limited("Rate limit reached for requests");
    e.code = "rate_limited";
    send_refusal(ws, id, e, retry_ms);
    return;
  }
  // Draining: what is in progress may finish, but nothing new starts on this connection.
  if (ws.shard().draining() && action != "unsubscribe" && action != "cancel") {
    send_error(ws, id, "draining", "the server is shutting down; retry on a new connection");
    return;
  }
  if (action == "subscribe") return subscribe(ws, id, payload);
  if (action == "unsubscribe") return unsubscribe(ws, id, payload);
  if (action == "cancel") return cancel(ws, id, payload);
  if (action == "message.stream") return message_stream(ws, id, payload);
  if (ws.conn().request_token()) {
    ++ws.shard().metrics().rejected[static_cast<size_t>(reject_reason::permission)];
    return send_error(ws, id, "permission_denied",
                      "a subscription token does not allow '" + std::string(action) +
                          "' (only subscribe, unsubscribe, message.stream and cancel)");
  }
  bool async = action == "publish" || action == "system.health" || action == "chat.completion" ||
               action == "responses.create" || action == "embedding.query" ||
               action == "tool.invoke";
  if (!async) {
    send_error(ws, id, "unknown_action", "unknown action '" + std::string(action) + "'");
    return;
  }
  uint32_t max = ws.shard().config().ws_inflight_max;
  if (inflight_ >= max) {
    send_error(ws, id, "flow_paused",
               "too many requests in progress on this connection (" + std::to_string(max) +
                   "); wait for flow.resume");
    return;
  }
  if (action == "publish") return publish(ws, id, payload);
  if (action == "system.health") return system_health(ws, id);
  start_stream(ws, id, action, payload);
}

// ---- topics ----

namespace {

// The topic named in a payload, or an error message.
std::string_view payload_topic(ws_endpoint& ws, const json::value& payload,
                               std::string_view& error) {
  json::value topic = payload ? payload.find("topic") : json::value();
  if (!topic || !topic.is_string()) {
    error = "'payload.topic' is required and must be a string";
    return {};
  }
  error = ws.shard().topics().check_name(topic.get_string());
  return topic.get_string();
}

// Topic permissions of the connection's key or token (authentication.h): false when refused, after
// sending an error event with the refusal's code (permission_denied, token_expired).
bool topic_permitted(ws_endpoint& ws, std::string_view id, topic_action action,
                     std::string_view topic) {
  std::optional<openai::api_error> refused = topic_refusal(ws.conn(), action, topic);
  if (!refused) return true;
  ++ws.shard().metrics().rejected[static_cast<size_t>(reject_reason::permission)];
  broker_ws_handler::send_error(ws, id, refused->code.value_or("permission_denied"),
                                refused->message);
  return false;
}

}  // namespace

void broker_ws_handler::subscribe(ws_endpoint& ws, std::string_view id,
                                  const json::value& payload) {
  std::string_view error;
  std::string_view topic = payload_topic(ws, payload, error);
  if (!error.empty()) return send_error(ws, id, "invalid_topic", error);
  if (!topic_permitted(ws, id, topic_action::subscribe, topic)) return;
  std::string key(topic);
  id_map& subs = made(subscriptions_);
  if (auto it = subs.find(key); it != subs.end()) {
    // A subscription the server ended (an error event was sent) no longer counts.
    if (ws.shard().topics().subscribed(it->second))
      return send_error(ws, id, "already_subscribed", "already subscribed to '" + key + "'");
    subs.erase(it);
  }
  uint32_t max = ws.shard().config().topics_per_connection_max;
  if (subs.size() >= max) {
    return send_error(ws, id, "too_many_topics",
                      "a connection may subscribe to at most " + std::to_string(max) + " topics");
  }
  std::string since;
  if (json::value v = payload.find("since"); v && !v.is_null()) {
    if (v.is_string() && event_id_syntax_ok(v.get_string())) {
      since = std::string(v.get_string());
    } else if (v.kind() == json::kind::uint64 ||
               (v.kind() == json::kind::int64 && v.get_int64() >= 0)) {
      since = std::to_string(v.get_uint64());
    } else {
      return send_error(ws, id, "invalid_since",
                        "'payload.since' must be an event id (\"<epoch>-<seq>\" or \"<seq>\") or "
                        "a non-negative integer");
    }
  }
  if (std::string_view why = ws.shard().topics().unavailable_reason(); !why.empty()) {
    return send_refusal(ws, id,
                        abort_error("nats_unavailable", "Topics are unavailable (" +
                                                            std::string(why) + "); retry later"),
                        ws.shard().topics().retry_after_ms());
  }
  topic_subscription* s =
      ws.shard().topics().subscribe(ws.conn(), topic, subscriber_kind::ws, since, id);
  made(subscriptions_).emplace(std::move(key), s->id());  // (subscribe may have closed the socket)
}

void broker_ws_handler::unsubscribe(ws_endpoint& ws, std::string_view id,
                                    const json::value& payload) {
  std::string_view error;
  std::string_view topic = payload_topic(ws, payload, error);
  if (!error.empty()) return send_error(ws, id, "invalid_topic", error);
  id_map* subs = subscriptions_.get();
  auto it = subs ? subs->find(std::string(topic)) : id_map::iterator();
  if (!subs || it == subs->end()) {
    return send_error(ws, id, "not_subscribed", "not subscribed to '" + std::string(topic) + "'");
  }
  ws.shard().topics().unsubscribe(it->second);
  subs->erase(it);
  byte_buffer data;
  json::writer w(data);
  w.begin_object();
  w.string_member("topic", topic);
  w.end_object();
  send_event(ws, id, "unsubscribed", data.view());
}

void broker_ws_handler::publish(ws_endpoint& ws, std::string_view id,
                                const json::value& payload) {
  std::string_view error;
  std::string_view topic = payload_topic(ws, payload, error);
  if (!error.empty()) return send_error(ws, id, "invalid_topic", error);
  if (!topic_permitted(ws, id, topic_action::publish, topic)) return;
  json::value data = payload.find("data");
  if (!data) return send_error(ws, id, "invalid_request", "'payload.data' is required");
  byte_buffer compact;
  data.write_to(compact);
  if (compact.size() > ws.shard().config().publish_bytes_max) {
    return send_error(ws, id, "too_large",
                      "'payload.data' is larger than " +
                          std::to_string(ws.shard().config().publish_bytes_max) +
                          " bytes (raise --publish-bytes-max)");
  }
  if (std::string_view why = ws.shard().topics().unavailable_reason(); !why.empty()) {
    return send_refusal(ws, id,
                        abort_error("nats_unavailable", "The publication was not stored (" +
                                                            std::string(why) + "); retry later"),
                        ws.shard().topics().retry_after_ms());
  }
  begin_async(ws);
  uint64_t conn_id = ws.connection_id();
  ws.shard().topics().publish(
      std::string(topic), std::string(compact.view()),
      [conn_id, req = std::string(id)](topic_registry::publish_result&& res) {
        connection* c = shard_server::current()->find_connection(conn_id);
        if (!c || !c->websocket()) return;
        if (!res.ok()) {
          send_refusal(*c->websocket(), req, abort_error(res.error_code, res.error_message),
                       res.retry_after_ms);
          end_async(conn_id);
          return;
        }
        byte_buffer out;
        res.write_json(out);
        send_event(*c->websocket(), req, "published", out.view());
        end_async(conn_id);
      });
}

// ---- system ----

void broker_ws_handler::system_health(ws_endpoint& ws, std::string_view id) {
  begin_async(ws);
  uint64_t conn_id = ws.connection_id();
  ws.shard().collect_metrics([conn_id, req = std::string(id)](std::vector<shard_metrics>&& snaps) {
    shard_server* s = shard_server::current();
    connection* c = s->find_connection(conn_id);
    if (!c || !c->websocket()) return;
    byte_buffer data;
    write_health(data, snaps, s->draining());
    send_event(*c->websocket(), req, "system.health", data.view());
    end_async(conn_id);
  });
}

// ---- engines ----

generation_task* const* broker_ws_handler::find_stream(std::string_view id) const {
  for (const auto& [key, task] : streams_) {
    if (key == id) return &task;
  }
  return nullptr;
}

void broker_ws_handler::forget_stream(std::string_view id) {
  for (auto it = streams_.begin(); it != streams_.end(); ++it) {
    if (it->first == id) {
      streams_.erase(it);
      break;
    }
  }
  if (streams_.empty()) streams_.shrink_to_fit();
}

unique_function<void()> broker_ws_handler::finisher(uint64_t connection_id, std::string request_id) {
  return [connection_id, request_id = std::move(request_id)] {
    connection* c = shard_server::current()->live_connection(connection_id);
    if (!c || !c->websocket()) return;
    auto& self = static_cast<broker_ws_handler&>(c->websocket()->handler());
    if (self.closed_) return;
    self.forget_stream(request_id);
    end_async(connection_id);
  };
}

void broker_ws_handler::start_stream(ws_endpoint& ws, std::string_view id, std::string_view action,
                                     const json::value& payload) {
  std::string key(id);
  if (find_stream(key)) {
    send_error(ws, id, "duplicate_id", "a stream with id '" + key + "' is still running");
    return;
  }
  uint64_t conn_id = ws.connection_id();
  if (action == "chat.completion") {
    generation_task* t = start_chat_ws(ws, id, payload);
    if (!t) return;
    begin_async(ws);
    streams_.emplace_back(key, t);
    t->set_on_finished(finisher(conn_id, key));
    return;
  }
  if (action == "responses.create") {
    if (!payload) {
      send_error(ws, id, "invalid_request_error", "'payload' is required");
      return;
    }
    openai::responses_request req;
    if (auto err = openai::parse_responses_request(payload, req)) {
      send_error(ws, id, err->code.value_or(err->type), err->message);
      return;
    }
    uint64_t retry_ms = 0;
    if (auto refused = admit_ws_generation(ws, retry_ms)) {
      send_refusal(ws, id, *refused, retry_ms);
      return;
    }
    begin_async(ws);
    // The task exists only once a previous response was fetched (if any): it is not cancellable
    // before that, and finisher() runs either way.
    start_response(ws.conn(), responses_mode::ws_broker, std::move(req), key,
                   finisher(conn_id, key), generation_deadline_ms(ws.shard(), {}),
                   original_of(ws.conn(), api_kind::responses, payload.to_json(), true, false));
    return;
  }
  bool started = action == "embedding.query"
                     ? start_embedding_ws(ws, id, payload, finisher(conn_id, key))
                     : start_tool_ws(ws, id, payload, finisher(conn_id, key));
  if (started) begin_async(ws);
}

void broker_ws_handler::cancel(ws_endpoint& ws, std::string_view id, const json::value& payload) {
  json::value target = payload ? payload.find("target") : json::value();
  if (!target || !target.is_string()) {
    send_error(ws, id, "invalid_request", "'payload.target' must be the id of a running stream");
    return;
  }
  std::string key(target.get_string());
  byte_buffer data;
  json::writer w(data);
  w.begin_object();
  w.string_member("target", key);
  w.end_object();
  generation_task* const* running = find_stream(key);
  if (!running) {
    // A message.stream: stop watching (the message itself goes on; DELETE /api/v1/message/{id}
    // cancels it).
    id_map* watches = watches_.get();
    auto wit = watches ? watches->find(key) : id_map::iterator();
    bool found = watches && wit != watches->end();
    bool ended = found && ws.shard().broker_queue().cancel_watch(wit->second);
    if (found) watches->erase(wit);
    if (!ended) {
      send_error(ws, id, "not_found", "no running stream with id '" + key + "'");
      return;
    }
    send_error(ws, key, "cancelled", "the stream was cancelled by the client");
    send_event(ws, id, "cancelled", data.view());
    return;
  }
  generation_task* t = *running;
  // The target ends with error {code: "cancelled"}; its finisher forgets it.
  t->cancel("cancelled", "the stream was cancelled by the client");
  send_event(ws, id, "cancelled", data.view());
}

void broker_ws_handler::message_stream(ws_endpoint& ws, std::string_view id,
                                       const json::value& payload) {
  std::string key(id);
  broker& b = ws.shard().broker_queue();
  id_map& watches = made(watches_);
  auto it = watches.find(key);
  if ((it != watches.end() && b.watching(it->second)) || find_stream(key)) {
    send_error(ws, id, "duplicate_id", "a stream with id '" + key + "' is still running");
    return;
  }
  // Forget watches that ended on their own, so the map stays as small as what runs.
  if (watches.size() >= 64)
    std::erase_if(watches, [&](auto& e) { return !b.watching(e.second); });
  uint64_t wid = start_message_stream_ws(ws, id, payload);
  if (wid != 0) made(watches_)[key] = wid;  // (the stream's start may have closed the socket)
}

// ---- flow control ----

void broker_ws_handler::begin_async(ws_endpoint& ws) {
  ++inflight_;
  if (!paused_ && inflight_ >= ws.shard().config().ws_inflight_max) {
    paused_ = true;
    ws.send_control_text(R"({"event":"flow.pause"})");
  }
}

void broker_ws_handler::end_async(uint64_t connection_id) {
  connection* c = shard_server::current()->find_connection(connection_id);
  if (!c || !c->websocket()) return;
  ws_endpoint& ws = *c->websocket();
  // The handler of a live /ws connection is this class: the endpoint never changes handlers.
  auto& self = static_cast<broker_ws_handler&>(ws.handler());
  if (self.inflight_ > 0) --self.inflight_;
  if (self.paused_ && self.inflight_ <= ws.shard().config().ws_inflight_max / 2) {
    self.paused_ = false;
    ws.send_control_text(R"({"event":"flow.resume"})");
  }
}

void broker_ws_handler::on_close(ws_endpoint& ws) {
  closed_ = true;
  if (subscriptions_) {
    for (auto& [topic, sub_id] : *subscriptions_) ws.shard().topics().unsubscribe(sub_id);
  }
  subscriptions_.reset();
  watches_.reset();  // the watches end with the connection
  // Stop every generation now: nobody will read what they produce.
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [id, task] : streams) task->cancel("cancelled", "the connection is closing");
}

// ---- echo ----

void echo_ws_handler::on_message(ws_endpoint& ws, ws::message_kind kind,
                                 std::string_view payload) {
  if (kind == ws::message_kind::text) {
    ws.send_text(payload);
  } else {
    ws.send_binary(payload);
  }
}

}  // namespace rc::server
