// GET /healthz, GET /readyz, GET /metrics.
#include "server/handlers.h"
#include "proto/json_writer.h"
#include "server/cluster.h"
#include "server/connection.h"
#include "server/shard.h"

namespace rc::server {

handler_result handle_healthz(request_context& ctx) {
  // Alive: the shard's loop ran this request. Deliberately constant and cheap; it is also what
  // the HTTP benchmarks measure.
  ctx.conn.respond(200, "application/json", R"({"status":"ok"})");
  return handler_result::done;
}

handler_result handle_readyz(request_context& ctx) {
  if (ctx.shard.draining()) {
    ctx.conn.respond(503, "application/json", R"({"status":"draining"})",
                     {{"Retry-After", "1"}, {"retry-after-ms", "1000"}});
  } else if (std::string_view u = ctx.shard.engines().unready_worker_upstream(); !u.empty()) {
    // A routed upstream of local workers has none ready (starting, restarting, crash loop).
    byte_buffer body;
    json::writer w(body);
    w.begin_object();
    w.string_member("status", "not_ready");
    w.string_member("reason", "upstream " + std::string(u) + ": no worker ready");
    w.end_object();
    ctx.conn.respond(503, "application/json", body.view(),
                     {{"Retry-After", "1"}, {"retry-after-ms", "1000"}});
  } else if (cluster* c = ctx.shard.cluster_link();
             c && (!c->available() || ctx.shard.cluster_shards_available().load(
                                          std::memory_order_relaxed) < ctx.shard.shard_count())) {
    // A shard cannot reach NATS (or the streams are not ready): publishes and enqueues would
    // fail there, and a client's connection may land on any shard, so the load balancer should
    // send clients elsewhere until every shard is back.
    byte_buffer body;
    json::writer w(body);
    w.begin_object();
    w.string_member("status", "not_ready");
    if (!c->available()) {
      w.string_member("reason", c->unavailable_reason());
    } else {
      unsigned up = ctx.shard.cluster_shards_available().load(std::memory_order_relaxed);
      w.string_member("reason", "nats: " + std::to_string(ctx.shard.shard_count() - up) + " of " +
                                    std::to_string(ctx.shard.shard_count()) +
                                    " shards cannot use NATS yet");
    }
    w.end_object();
    uint32_t ms = c->retry_after_ms();
    std::string seconds = std::to_string((ms + 999) / 1000), millis = std::to_string(ms);
    ctx.conn.respond(503, "application/json", body.view(),
                     {{"Retry-After", seconds}, {"retry-after-ms", millis}});
  } else {
    ctx.conn.respond(200, "application/json", R"({"status":"ready"})");
  }
  return handler_result::done;
}

handler_result handle_metrics(request_context& ctx) {
  uint64_t conn_id = ctx.conn.id();
  ctx.shard.collect_metrics([conn_id](std::vector<shard_metrics>&& snapshots) {
    connection* c = shard_server::current()->find_connection(conn_id);
    if (!c) return;  // the client left while shards were answering
    byte_buffer body;
    render_prometheus(snapshots, body);
    c->respond(200, "text/plain; version=0.0.4; charset=utf-8", body.view());
  });
  return handler_result::async;
}

}  // namespace rc::server
