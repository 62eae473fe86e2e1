// What the OpenAI fronts share: error answers (client-facing and an engine's), the original
// request for engines, admission of a generation, deadlines, and the topic mirror of chat streams.
#include <algorithm>
#include <charconv>
#include <optional>

#include "proto/json_writer.h"
#include "proto/openai_chat.h"
#include "server/connection.h"
#include "server/openai_api.h"
#include "server/shard.h"
#include "server/ws_endpoint.h"

namespace rc::server {

void respond_api_error(connection& c, const openai::api_error& e, uint64_t retry_after_ms) {
  byte_buffer body;
  openai::write_error(body, e);
  if (e.status != 429 && e.status != 503) {
    c.respond(e.status, "application/json", body.view());
    return;
  }
  if (retry_after_ms == 0) retry_after_ms = 1000;
  std::string seconds = std::to_string((retry_after_ms + 999) / 1000);
  std::string ms = std::to_string(retry_after_ms);
  c.respond(e.status, "application/json", body.view(),
            {{"Retry-After", seconds}, {"retry-after-ms", ms}});
}

openai::api_error abort_error(std::string_view code, std::string_view message) {
  openai::api_error err;
  if (code == "shed" || code == "queue_full" || code == "draining") {
    err = openai::overloaded();
    err.message = std::string(message);
  } else if (code == "deadline_exceeded") {
    err = openai::upstream_timeout();
    err.message = std::string(message);
  } else if (code == "cancelled") {
    err = openai::cancelled();
  } else if (code == "too_many_streams") {
    err = openai::rate_limited(std::string(message));
  } else if (code == "nats_unavailable") {  // the cluster's NATS is unreachable (cluster.h)
    err = openai::overloaded();
    err.message = std::string(message);
  } else {
    err = openai::internal_error(message);
  }
  err.code = std::string(code);
  return err;
}

openai::api_error engine_error(const engine_event& e) {
  openai::api_error err = abort_error(e.error_code, e.error_message);
  if (e.http_status != 0) {  // an upstream's answer: its words, not a generic 500's
    err.status = e.http_status;
    err.message = std::string(e.error_message);
    err.type = e.http_status < 500 ? "invalid_request_error" : "server_error";
    if (e.error_code.empty()) err.code.reset();  // its envelope's "code": null, as the mock's
  }
  if (!e.error_type.empty()) err.type = std::string(e.error_type);
  if (!e.error_param.empty()) err.param = std::string(e.error_param);
  return err;
}

void respond_engine_error(connection& c, const engine_event& e, uint64_t default_retry_ms) {
  openai::api_error err = engine_error(e);
  uint64_t retry_ms = e.retry_after_ms;
  if (retry_ms == 0 && (err.status == 429 || err.status == 503)) retry_ms = default_retry_ms;
  if (e.raw.empty() && (retry_ms == 0 || err.status == 429 || err.status == 503)) {
    respond_api_error(c, err, retry_ms);
    return;
  }
  byte_buffer built;
  std::string_view body = e.raw;
  if (body.empty()) {
    openai::write_error(built, err);
    body = built.view();
  }
  if (retry_ms == 0) {
    c.respond(err.status, "application/json", body);
    return;
  }
  std::string seconds = std::to_string((retry_ms + 999) / 1000);
  std::string ms = std::to_string(retry_ms);
  c.respond(err.status, "application/json", body, {{"Retry-After", seconds}, {"retry-after-ms", ms}});
}

original_request original_of(connection& conn, api_kind api, std::string body, bool stream,
                             bool passthrough) {
  original_request o;
  o.api = api;
  o.body = std::make_shared<const std::string>(std::move(body));
  o.stream = stream;
  o.passthrough = passthrough;
  o.request_id = std::string(conn.request_id());
  return o;
}

namespace {

// On the budget's home shard the stream cap is checked now (429 at once); elsewhere the slot is
// asked of the home when the task starts (generation_task::count_stream) and a refusal ends the
// task with too_many_streams.
bool stream_cap_reached(shard_server& shard, const connection& conn) {
  const limit_rule& r = conn.budget_rule();
  if (r.streams_max == 0) return false;
  shard_limits& limits = shard.budgets();
  return limits.is_home(conn.budget()) && limits.streams_open(conn.budget()) >= r.streams_max;
}

openai::api_error too_many_streams() {
  openai::api_error e = openai::rate_limited("Too many concurrent streams for this API key");
  e.code = "too_many_streams";
  return e;
}

}  // namespace

bool admit_generation(connection& conn) {
  shard_server& shard = *shard_server::current();
  auto& m = shard.metrics();
  if (!shard.scheduler().has_room()) {
    ++m.rejected[static_cast<size_t>(reject_reason::queue_full)];
    openai::api_error e = openai::overloaded();
    e.code = "queue_full";
    respond_api_error(conn, e, shard.scheduler().retry_after_ms());
    return false;
  }
  if (stream_cap_reached(shard, conn)) {
    ++m.rejected[static_cast<size_t>(reject_reason::streams)];
    respond_api_error(conn, too_many_streams(), 1000);
    return false;
  }
  return true;
}

std::optional<openai::api_error> admit_ws_generation(ws_endpoint& ws, uint64_t& retry_after_ms) {
  shard_server& shard = ws.shard();
  auto& m = shard.metrics();
  if (!shard.scheduler().has_room()) {
    ++m.rejected[static_cast<size_t>(reject_reason::queue_full)];
    retry_after_ms = shard.scheduler().retry_after_ms();
    openai::api_error e = openai::overloaded();
    e.code = "queue_full";
    return e;
  }
  if (stream_cap_reached(shard, ws.conn())) {
    ++m.rejected[static_cast<size_t>(reject_reason::streams)];
    retry_after_ms = 1000;
    return too_many_streams();
  }
  return std::nullopt;
}

uint64_t generation_deadline_ms(const shard_server& shard, std::string_view header) {
  const auto& cfg = shard.config();
  uint64_t ms = cfg.request_timeout_ms;
  if (!header.empty()) {
    uint64_t asked = 0;
    auto [p, ec] = std::from_chars(header.data(), header.data() + header.size(), asked);
    if (ec == std::errc() && p == header.data() + header.size() && asked > 0) ms = asked;
  }
  return std::min<uint64_t>(ms, cfg.request_timeout_max_ms);
}

// ---- topic mirroring ----

void topic_mirror::publish(std::string json) {
  shard_.topics().publish(topic_, std::move(json), [](topic_registry::publish_result&&) {});
}

void topic_mirror::delta(uint32_t choice, std::string_view text) {
  byte_buffer out;
  json::writer w(out);
  w.begin_object();
  w.string_member("type", "delta");
  w.string_member("id", id_);
  w.uint64_member("choice", choice);
  w.string_member("delta", text);
  w.end_object();
  publish(std::string(out.view()));
}

void topic_mirror::done(const openai::usage_counts& usage) {
  byte_buffer out;
  json::writer w(out);
  w.begin_object();
  w.string_member("type", "done");
  w.string_member("id", id_);
  w.key("usage");
  openai::write_chat_usage(w, usage);
  w.end_object();
  publish(std::string(out.view()));
}

void topic_mirror::error(std::string_view code, std::string_view message) {
  byte_buffer out;
  json::writer w(out);
  w.begin_object();
  w.string_member("type", "error");
  w.string_member("id", id_);
  w.string_member("code", code);
  w.string_member("message", message);
  w.end_object();
  publish(std::string(out.view()));
}

}  // namespace rc::server
