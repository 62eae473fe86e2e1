// The dashboard (--dashboard; docs/operations.md, "Dashboard"): GET /dashboard serves the page
// embedded in the binary (dashboard_page.h), GET /dashboard/ops streams ops snapshots
// (ops_snapshot.h) over SSE:
//
//   event: snapshot\nid: <n>\ndata: <json>\n\n    right away, then every interval_ms
//   event: draining\ndata: {"retry_after_ms":N}\n\n    when the server starts draining (the end)
//
// Who may open them: anyone when no key of any kind is configured; otherwise an admin key
// (--admin-key, admin=yes), presented like any API key (Bearer, X-API-Key, ?api_key=) or as the
// password of HTTP Basic credentials, which is what the browser's login prompt sends after the
// 401's WWW-Authenticate. A valid key that is not an admin key gets 403 permission_denied.
//
// Each stream asks every shard for its metrics (shard_server::collect_metrics) once per interval,
// on its own timer; a collection still outstanding when the next is due makes that one skip, and
// a client that does not keep up (its backlog above the high watermark) misses snapshots rather
// than queueing them. The streams of a shard are found by id in a shard-local table, so an answer
// arriving after the client left finds nothing.
//
// At most --dashboard-streams-max streams are open in the whole process (an atomic count): each
// one costs every shard a metrics collection per interval. Beyond it, 503 server_overloaded.
//
// Thread-safety: everything runs on the shard that owns the connection, except the process-wide
// stream count (atomic).
#include <atomic>
#include <charconv>
#include <string>
#include <unordered_map>

#include "core/clock.h"
#include "core/timer_wheel.h"
#include "proto/json_writer.h"
#include "proto/openai_errors.h"
#include "proto/sse.h"
#include "server/admission.h"
#include "server/authentication.h"
#include "server/cluster.h"
#include "server/connection.h"
#include "server/dashboard_page.h"
#include "server/handlers.h"
#include "server/metrics.h"
#include "server/openai_api.h"
#include "server/ops_snapshot.h"
#include "server/query.h"
#include "server/shard.h"
#include "server/stream.h"

#ifndef RINGCAST_VERSION_STRING
#define RINGCAST_VERSION_STRING ""
#endif

namespace rc::server {
namespace {

constexpr uint32_t interval_min_ms = 250, interval_max_ms = 10000, interval_default_ms = 1000;
// What the draining event suggests: reconnect (to another node) after this.
constexpr uint64_t draining_retry_after_ms = 1000;

class ops_stream;

// This shard's open ops streams, by id.
thread_local std::unordered_map<uint64_t, ops_stream*> t_streams;
thread_local uint64_t t_next_stream = 1;
// Open ops streams, all shards together (--dashboard-streams-max).
std::atomic<uint32_t> g_open_streams{0};

class ops_stream final : public stream_producer {
 public:
  ops_stream(connection& c, uint32_t interval_ms)
      : conn_(c), id_(t_next_stream++), interval_ms_(interval_ms) {
    t_streams.emplace(id_, this);
    timer_.bind<ops_stream, &ops_stream::tick>(this);
  }

  // Sends the first snapshot as soon as the shards have answered, then one per interval.
  void start() { tick(); }

  void on_stream_closed() override { finish(); }

  void on_cut(std::string_view, std::string_view) override {
    // The only cut is the drain (connection_drain.cc): say so, and end the stream.
    connection& c = conn_;
    finish();  // deletes this
    if (c.current_mode() != connection::mode::sse) return;
    byte_buffer json, frame;
    json::writer w(json);
    w.begin_object();
    w.uint64_member("retry_after_ms", draining_retry_after_ms);
    w.end_object();
    sse::write_event(frame, sse::event{.type = "draining", .data = json.view()});
    c.stream_push_sse(frame.view());
    c.end_sse_and_close();
  }

  // An endless stream: a drain cuts it at once.
  bool ends_by_itself() const override { return false; }

 private:
  ~ops_stream() = default;

  void finish() {
    t_streams.erase(id_);
    g_open_streams.fetch_sub(1, std::memory_order_relaxed);
    delete this;
  }

  void tick() {
    shard_server& shard = *shard_server::current();
    shard.loop().arm_after_ms(timer_, interval_ms_);
    if (collecting_) return;  // the shards have not answered the previous one yet: skip
    if (conn_.stream_above_high()) return;  // the client does not keep up: skip (see send)
    collecting_ = true;
    uint64_t id = id_;
    shard.collect_metrics([id](std::vector<shard_metrics>&& shards) {
      auto it = t_streams.find(id);
      if (it != t_streams.end()) it->second->send(shards);  // else: the client left
    });
  }

  void send(const std::vector<shard_metrics>& shards) {
    collecting_ = false;
    // A client that does not keep up misses snapshots. The baseline stays where the last snapshot
    // sent left it, so the next one sent covers the whole time since then (rates, first tokens).
    if (conn_.stream_above_high()) return;
    shard_server& shard = *shard_server::current();
    ops_header h;
    h.time_ms = static_cast<int64_t>(wall_time_ms());
    h.uptime_s = double(shard.loop().now_ms() - shard.started_ms()) / 1000.0;
    h.interval_ms = interval_ms_;
    h.node = shard.node_id();
    h.version = RINGCAST_VERSION_STRING;
    h.draining = shard.draining();
    if (cluster* cl = shard.cluster_link()) {
      h.cluster = true;
      h.cluster_available = cl->available();
      h.cluster_connected = cl->connected();
      if (!h.cluster_available) h.cluster_reason = cl->unavailable_reason();
    }
    byte_buffer json;
    write_ops_snapshot(json, shards, h, shard.loop().now_us(), baseline_);
    std::string id = std::to_string(++seq_);
    byte_buffer frame;
    sse::write_event(frame, sse::event{.id = id, .type = "snapshot", .data = json.view()});
    conn_.stream_push_sse(frame.view());  // last: a push that overflows closes (deletes) this
  }

  static uint64_t wall_time_ms() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1'000'000;
  }

  connection& conn_;
  uint64_t id_;
  uint32_t interval_ms_;
  uint64_t seq_ = 0;
  bool collecting_ = false;
  timer timer_;
  ops_baseline baseline_;
};

// 404 like any unknown path unless --dashboard.
bool dashboard_enabled(request_context& ctx) {
  if (ctx.shard.config().dashboard) return true;
  respond_api_error(ctx.conn, openai::unknown_route(ctx.req.method_name, ctx.req.path));
  return false;
}

// Whether the request may open the dashboard; otherwise answers 401 (with the Basic challenge, so
// a browser asks for the key) or 403, counts the refusal, and returns false.
bool dashboard_admitted(request_context& ctx) {
  if (!authentication_required(ctx.shard)) return true;
  auth_result a = authenticate(ctx.shard, ctx.req, ctx.route.route);
  std::optional<openai::api_error> refusal = std::move(a.refusal);
  if (!refusal && a.key && a.key->admin) return true;
  if (!refusal) {
    refusal = openai::invalid_request(
        "This API key may not open the dashboard: it needs an admin key (--admin-key, or "
        "admin=yes in the keys file)",
        std::nullopt, std::string("permission_denied"));
    refusal->status = 403;
  } else if (refusal->status == 401 && !refusal->code) {
    refusal->message =
        "The dashboard needs an admin key: sign in with any user name and the key as the password "
        "(HTTP Basic), or send Authorization: Bearer <key>";
    refusal->code = "missing_api_key";
  }
  reject_reason why = refusal->status == 403 ? reject_reason::permission : reject_reason::auth;
  if (refusal->code == "origin_not_allowed") why = reject_reason::origin;  // Basic, cross-site
  ++ctx.shard.metrics().rejected[static_cast<size_t>(why)];
  byte_buffer body;
  openai::write_error(body, *refusal);
  if (refusal->status == 401) {
    ctx.conn.respond(401, "application/json", body.view(),
                     {{"WWW-Authenticate", R"(Basic realm="ringcast dashboard", charset="UTF-8")"}});
  } else {
    ctx.conn.respond(refusal->status, "application/json", body.view());
  }
  return false;
}

// ?interval_ms=: 250..10000, default 1000. nullopt after answering 400.
std::optional<uint32_t> interval_of(request_context& ctx) {
  std::optional<std::string> v = query_value(ctx.req.query, "interval_ms");
  if (!v) return interval_default_ms;
  uint32_t ms = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), ms);
  if (ec == std::errc() && end == v->data() + v->size() && ms >= interval_min_ms &&
      ms <= interval_max_ms) {
    return ms;
  }
  ctx.conn.respond_error(400,
                         "Invalid 'interval_ms': expected milliseconds between " +
                             std::to_string(interval_min_ms) + " and " +
                             std::to_string(interval_max_ms),
                         "invalid_request_error", "interval_ms", "invalid_interval");
  return std::nullopt;
}

}  // namespace

handler_result handle_dashboard(request_context& ctx) {
  if (!dashboard_enabled(ctx) || !dashboard_admitted(ctx)) return handler_result::done;
  // Everything the page needs is inline; it talks only to this origin.
  ctx.conn.respond(200, "text/html; charset=utf-8", dashboard_page(),
                   {{"Cache-Control", "no-store"},
                    {"Content-Security-Policy",
                     "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                     "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                     "form-action 'none'; frame-ancestors 'none'"},
                    {"X-Content-Type-Options", "nosniff"},
                    {"Referrer-Policy", "no-referrer"}});
  return handler_result::done;
}

handler_result handle_dashboard_ops(request_context& ctx) {
  if (!dashboard_enabled(ctx) || !dashboard_admitted(ctx)) return handler_result::done;
  std::optional<uint32_t> interval = interval_of(ctx);
  if (!interval) return handler_result::done;
  if (ctx.shard.draining()) {
    respond_api_error(ctx.conn,
                      abort_error("draining", "the server is shutting down; retry on a new "
                                              "connection"),
                      draining_retry_after_ms);
    return handler_result::done;
  }
  uint32_t max = ctx.shard.config().dashboard_streams_max;
  if (g_open_streams.fetch_add(1, std::memory_order_relaxed) >= max) {
    g_open_streams.fetch_sub(1, std::memory_order_relaxed);
    ++ctx.shard.metrics().rejected[static_cast<size_t>(reject_reason::streams)];
    openai::api_error e = openai::overloaded();
    e.message = "Too many open dashboard streams (--dashboard-streams-max " +
                std::to_string(max) + "); close one or retry later";
    respond_api_error(ctx.conn, e, draining_retry_after_ms);
    return handler_result::done;
  }
  ctx.conn.begin_sse();
  auto* s = new ops_stream(ctx.conn, *interval);  // counted in g_open_streams until finish()
  ctx.conn.attach(*s);
  s->start();
  return handler_result::async;
}

}  // namespace rc::server
