#include "server/metrics.h"

#include <charconv>
#include <string>

#include "proto/http1_parser.h"
#include "proto/json_writer.h"
#include "server/prom_text.h"
#include "server/router.h"

namespace rc::server {

std::string_view reject_reason_label(reject_reason r) {
  static constexpr std::string_view labels[] = {"auth", "rate",     "streams", "queue_full",
                                                "shed", "deadline", "origin",  "permission"};
  static_assert(std::size(labels) == static_cast<size_t>(reject_reason::count));
  return labels[static_cast<size_t>(r)];
}

size_t status_slot(int status) {
  for (size_t i = 0; i < tracked_statuses.size(); ++i)
    if (tracked_statuses[i] == status) return i;
  if (status == 505) return tracked_statuses.size();
  return tracked_statuses.size() + 1;
}

std::string_view status_slot_label(size_t slot) {
  static const auto labels = [] {
    std::array<std::string, status_slot_count> l;
    for (size_t i = 0; i < tracked_statuses.size(); ++i) l[i] = std::to_string(tracked_statuses[i]);
    l[tracked_statuses.size()] = "505";
    l[tracked_statuses.size() + 1] = "other";
    return l;
  }();
  return labels[slot];
}

void shard_metrics::merge(const shard_metrics& o) {
  connections_accepted += o.connections_accepted;
  connections_closed += o.connections_closed;
  connections_refused += o.connections_refused;
  responses_kv.merge(o.responses_kv);
  for (size_t i = 0; i < connections_open.size(); ++i) connections_open[i] += o.connections_open[i];
  for (size_t r = 0; r < requests.size(); ++r)
    for (size_t s = 0; s < requests[r].size(); ++s) requests[r][s] += o.requests[r][s];
  bytes_in += o.bytes_in;
  bytes_out += o.bytes_out;
  for (size_t i = 0; i < parse_errors.size(); ++i) parse_errors[i] += o.parse_errors[i];
  for (size_t i = 0; i < timeouts.size(); ++i) timeouts[i] += o.timeouts[i];
  request_latency.merge(o.request_latency);
  backpressure_pauses += o.backpressure_pauses;
  slow_consumers += o.slow_consumers;
  ws_messages_in += o.ws_messages_in;
  ws_messages_out += o.ws_messages_out;
  ws_protocol_errors += o.ws_protocol_errors;
  ws_sessions += o.ws_sessions;
  rings_in_use += o.rings_in_use;
  inbound_held_bytes += o.inbound_held_bytes;
  inbound_budget_refusals += o.inbound_budget_refusals;
  memory_collections += o.memory_collections;
  subscribers += o.subscribers;
  topics_homed += o.topics_homed;
  publications += o.publications;
  deliveries += o.deliveries;
  topic_resets += o.topic_resets;
  topic_replays += o.topic_replays;
  queue_depth += o.queue_depth;
  engine_streams_active += o.engine_streams_active;
  engine_streams_started += o.engine_streams_started;
  engine_streams_completed += o.engine_streams_completed;
  engine_streams_failed += o.engine_streams_failed;
  engine_streams_cancelled += o.engine_streams_cancelled;
  engine_events += o.engine_events;
  first_event_latency.merge(o.first_event_latency);
  upstream_sessions_idle += o.upstream_sessions_idle;
  upstream_sessions.retained += o.upstream_sessions.retained;
  upstream_sessions.reused += o.upstream_sessions.reused;
  upstream_sessions.evicted_lru += o.upstream_sessions.evicted_lru;
  upstream_sessions.expired += o.upstream_sessions.expired;
  upstream_sessions.dropped += o.upstream_sessions.dropped;
  upstream_sessions.conflicts += o.upstream_sessions.conflicts;
  upstream_sessions.not_found += o.upstream_sessions.not_found;
  upstream_sessions.no_capacity += o.upstream_sessions.no_capacity;
  admitted += o.admitted;
  for (size_t i = 0; i < rejected.size(); ++i) rejected[i] += o.rejected[i];
  queue_wait.merge(o.queue_wait);
  engine_running += o.engine_running;
  engine_waiting += o.engine_waiting;
  broker_processing += o.broker_processing;
  broker_partitions += o.broker_partitions;
  active_users += o.active_users;
  broker_enqueued += o.broker_enqueued;
  broker_wait.merge(o.broker_wait);
  for (const upstream_metrics& u : o.upstreams) upstreams[upstream_metrics_index(upstreams, u.name)].merge(u);
  for (const worker_metrics& w : o.workers)
    workers[worker_metrics_index(workers, w.upstream, w.worker)].merge(w);
  reactor.loop_turns += o.reactor.loop_turns;
  access_log.lines += o.access_log.lines;
  access_log.dropped += o.access_log.dropped;
  access_log.write_errors += o.access_log.write_errors;
  access_log.reopens += o.access_log.reopens;
  resolver.lookups += o.resolver.lookups;
  resolver.cache_hits += o.resolver.cache_hits;
  resolver.queries_sent += o.resolver.queries_sent;
  resolver.query_timeouts += o.resolver.query_timeouts;
  resolver.failures += o.resolver.failures;
  ws_deflate.merge(o.ws_deflate);
  reactor.completions += o.reactor.completions;
  reactor.messages_sent += o.reactor.messages_sent;
  reactor.messages_received += o.reactor.messages_received;
  reactor.doorbells_sent += o.reactor.doorbells_sent;
  reactor.mailbox_full += o.reactor.mailbox_full;
  reactor.mailbox_dropped += o.reactor.mailbox_dropped;
  reactor.mailbox_backlog += o.reactor.mailbox_backlog;
  reactor.recv_buffer_waits += o.reactor.recv_buffer_waits;
  if (o.uptime_s > uptime_s) uptime_s = o.uptime_s;
}

namespace {

// Appends Prometheus text one family at a time: a HELP and TYPE line, then one sample per shard.
// No pre-summed total series (a sum() over the family would count it twice); the total is kept
// only to leave out label combinations that never happened on any shard.
class prom_writer {
 public:
  prom_writer(byte_buffer& out, const std::vector<shard_metrics>& shards)
      : out_(out), shards_(shards) {
    total_ = shards.empty() ? shard_metrics{} : shards[0];
    for (size_t i = 1; i < shards.size(); ++i) total_.merge(shards[i]);
  }

  void family(std::string_view name, std::string_view type, std::string_view help) {
    prom::family(out_, name, type, help);
  }

  // One sample per shard; `get` reads the value from a shard_metrics.
  template <class Get>
  void per_shard(std::string_view name, std::string_view labels, Get get) {
    for (size_t i = 0; i < shards_.size(); ++i) sample(name, labels, std::to_string(i), get(shards_[i]));
  }

  template <class Get>
  void counter(std::string_view name, std::string_view help, Get get) {
    family(name, "counter", help);
    per_shard(name, {}, get);
  }
  template <class Get>
  void gauge(std::string_view name, std::string_view help, Get get) {
    family(name, "gauge", help);
    per_shard(name, {}, get);
  }

  void sample(std::string_view name, std::string_view labels, std::string_view shard,
              double value) {
    out_.append(name);
    out_.push_back('{');
    out_.append(labels);
    if (!labels.empty()) out_.push_back(',');
    out_.append("shard=\"");
    out_.append(shard);
    out_.append("\"} ");
    prom::value(out_, value);
  }

  void unlabelled(std::string_view name, double value) {
    out_.append(name);
    out_.push_back(' ');
    prom::value(out_, value);
  }

  const shard_metrics& total() const { return total_; }

 private:
  byte_buffer& out_;
  const std::vector<shard_metrics>& shards_;
  shard_metrics total_;
};

std::string label(std::string_view name, std::string_view value) {
  return std::string(name) + "=\"" + std::string(value) + "\"";
}

void render_requests(prom_writer& w) {
  w.family("ringcast_requests_total", "counter", "HTTP requests answered, by route and status.");
  for (size_t r = 0; r < static_cast<size_t>(route_id::count); ++r) {
    for (size_t s = 0; s < status_slot_count; ++s) {
      if (w.total().requests[r][s] == 0) continue;  // keep series to what happened
      std::string labels = label("route", route_label(static_cast<route_id>(r))) + "," +
                           label("status", status_slot_label(s));
      w.per_shard("ringcast_requests_total", labels,
                  [r, s](const shard_metrics& m) { return double(m.requests[r][s]); });
    }
  }
}

void render_histogram(prom_writer& w, const std::vector<shard_metrics>& shards,
                      std::string_view name, std::string_view help,
                      latency_histogram shard_metrics::*field) {
  w.family(name, "histogram", help);
  std::string bucket = std::string(name) + "_bucket", sum = std::string(name) + "_sum",
              count = std::string(name) + "_count";
  auto emit = [&](const latency_histogram& h, std::string_view shard) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < latency_histogram::bounds_us.size(); ++i) {
      cumulative += h.buckets[i];
      char le[32];
      auto [end, ec] = std::to_chars(le, le + sizeof le, latency_histogram::bounds_us[i] / 1e6);
      std::string labels = "le=\"" + std::string(le, end) + "\"";
      w.sample(bucket, labels, shard, double(cumulative));
    }
    w.sample(bucket, "le=\"+Inf\"", shard, double(h.count));
    w.sample(sum, {}, shard, h.sum_us / 1e6);
    w.sample(count, {}, shard, double(h.count));
  };
  for (size_t i = 0; i < shards.size(); ++i) emit(shards[i].*field, std::to_string(i));
}

// Retained upstream sessions of stateful responses-ws upstreams (session_store.h).
void render_upstream_sessions(prom_writer& w) {
  w.gauge("ringcast_upstream_sessions_idle", "Retained upstream sessions waiting for a follow-up.",
          [](const shard_metrics& m) { return double(m.upstream_sessions_idle); });
  struct counted {
    std::string_view name, label_name, label;
    uint64_t session_store_stats::*field;
  };
  static constexpr counted counts[] = {
      {"ringcast_upstream_session_evictions_total", "reason", "lru", &session_store_stats::evicted_lru},
      {"ringcast_upstream_session_evictions_total", "reason", "expired", &session_store_stats::expired},
      {"ringcast_upstream_session_evictions_total", "reason", "failed", &session_store_stats::dropped},
      {"ringcast_upstream_session_followups_total", "outcome", "reused", &session_store_stats::reused},
      {"ringcast_upstream_session_followups_total", "outcome", "conflict", &session_store_stats::conflicts},
      {"ringcast_upstream_session_followups_total", "outcome", "not_found", &session_store_stats::not_found},
      {"ringcast_upstream_session_refusals_total", "reason", "no_capacity", &session_store_stats::no_capacity},
  };
  w.family("ringcast_upstream_session_evictions_total", "counter",
           "Retained upstream sessions closed, by reason (lru, expired, failed).");
  for (const auto& c : counts) {
    if (c.name == "ringcast_upstream_session_followups_total" && c.label == "reused")
      w.family(c.name, "counter", "Follow-ups (previous_response_id) on retained sessions, by outcome.");
    if (c.name == "ringcast_upstream_session_refusals_total")
      w.family(c.name, "counter", "New sessions refused: every retained session busy.");
    w.per_shard(c.name, label(c.label_name, c.label),
                [f = c.field](const shard_metrics& m) { return double(m.upstream_sessions.*f); });
  }
}

void render_engines(prom_writer& w, const std::vector<shard_metrics>& shards) {
  w.gauge("ringcast_engine_streams", "Generations in progress.",
          [](const shard_metrics& m) { return double(m.engine_streams_active); });
  w.family("ringcast_engine_streams_total", "counter", "Generations, by outcome.");
  struct outcome {
    std::string_view label;
    uint64_t shard_metrics::*field;
  };
  static constexpr outcome outcomes[] = {
      {"started", &shard_metrics::engine_streams_started},
      {"completed", &shard_metrics::engine_streams_completed},
      {"failed", &shard_metrics::engine_streams_failed},
      {"cancelled", &shard_metrics::engine_streams_cancelled}};
  for (const auto& o : outcomes)
    w.per_shard("ringcast_engine_streams_total", label("outcome", o.label),
                [f = o.field](const shard_metrics& m) { return double(m.*f); });
  w.counter("ringcast_engine_events_total", "Deltas and tool-call fragments delivered.",
            [](const shard_metrics& m) { return double(m.engine_events); });
  render_histogram(w, shards, "ringcast_first_token_seconds",
                   "Time from a generation's start to its first engine event.",
                   &shard_metrics::first_event_latency);
  render_upstream_sessions(w);
}

void render_connections(prom_writer& w) {
  w.counter("ringcast_connections_accepted_total", "Connections accepted.",
            [](const shard_metrics& m) { return double(m.connections_accepted); });
  w.counter("ringcast_connections_closed_total", "Connections closed.",
            [](const shard_metrics& m) { return double(m.connections_closed); });
  w.counter("ringcast_connections_refused_total",
            "Connections refused because max_connections was reached.",
            [](const shard_metrics& m) { return double(m.connections_refused); });
  w.family("ringcast_connections_open", "gauge", "Open connections, by protocol.");
  static constexpr std::string_view protocols[] = {"http", "sse", "ws"};
  for (size_t p = 0; p < std::size(protocols); ++p)
    w.per_shard("ringcast_connections_open", label("protocol", protocols[p]),
                [p](const shard_metrics& m) { return double(m.connections_open[p]); });
  w.counter("ringcast_received_bytes_total", "Bytes received from clients.",
            [](const shard_metrics& m) { return double(m.bytes_in); });
  w.counter("ringcast_sent_bytes_total", "Bytes sent to clients.",
            [](const shard_metrics& m) { return double(m.bytes_out); });
}

void render_errors(prom_writer& w) {
  w.family("ringcast_http_parse_errors_total", "counter",
           "Requests rejected by the HTTP parser, by kind.");
  static_assert(http1::error_count <= parse_error_slots);
  for (size_t e = 1; e < http1::error_count; ++e) {
    std::string_view kind = http1::name_of(static_cast<http1::error>(e));
    w.per_shard("ringcast_http_parse_errors_total", label("kind", kind),
                [e](const shard_metrics& m) { return double(m.parse_errors[e]); });
  }
  w.family("ringcast_timeouts_total", "counter", "Connections timed out, by kind.");
  static constexpr std::string_view kinds[] = {"header", "idle", "write"};
  for (size_t k = 0; k < std::size(kinds); ++k)
    w.per_shard("ringcast_timeouts_total", label("kind", kinds[k]),
                [k](const shard_metrics& m) { return double(m.timeouts[k]); });
}

void render_streams(prom_writer& w) {
  w.counter("ringcast_backpressure_pauses_total",
            "Times a connection's outbound backlog reached the high watermark (producers paused).",
            [](const shard_metrics& m) { return double(m.backpressure_pauses); });
  w.counter("ringcast_slow_consumers_total", "Connections dropped for not reading their stream.",
            [](const shard_metrics& m) { return double(m.slow_consumers); });
  w.gauge("ringcast_outbound_rings", "Outbound rings held by connections with a backlog.",
          [](const shard_metrics& m) { return double(m.rings_in_use); });
  w.counter("ringcast_ws_messages_received_total", "WebSocket messages received.",
            [](const shard_metrics& m) { return double(m.ws_messages_in); });
  w.counter("ringcast_ws_messages_sent_total", "WebSocket data messages sent.",
            [](const shard_metrics& m) { return double(m.ws_messages_out); });
  w.gauge("ringcast_ws_sessions",
          "WebSocket sessions held (only inside a message, or while closing).",
          [](const shard_metrics& m) { return double(m.ws_sessions); });
  w.counter("ringcast_ws_protocol_errors_total",
            "WebSocket sessions closed for protocol errors (1002, 1007, 1008 fragments, 1009).",
            [](const shard_metrics& m) { return double(m.ws_protocol_errors); });
  w.gauge("ringcast_inbound_held_bytes",
          "Bytes of clients' partial input held (WebSocket messages, HTTP requests in transit).",
          [](const shard_metrics& m) { return double(m.inbound_held_bytes); });
  w.counter("ringcast_inbound_budget_refusals_total",
            "Connections refused (WebSocket 1009, HTTP 503) because the shard's inbound buffer "
            "budget was spent.",
            [](const shard_metrics& m) { return double(m.inbound_budget_refusals); });
  w.counter("ringcast_memory_collections_total",
            "Times the shard gave free memory back to the system after held input fell sharply.",
            [](const shard_metrics& m) { return double(m.memory_collections); });
  w.gauge("ringcast_topic_subscribers", "Live topic subscriptions.",
          [](const shard_metrics& m) { return double(m.subscribers); });
  w.gauge("ringcast_topics", "Topics whose home is the shard.",
          [](const shard_metrics& m) { return double(m.topics_homed); });
  w.counter("ringcast_topic_publications_total", "Publications sequenced (on the home shard).",
            [](const shard_metrics& m) { return double(m.publications); });
  w.counter("ringcast_topic_deliveries_total", "Topic events queued to subscribers.",
            [](const shard_metrics& m) { return double(m.deliveries); });
  w.counter("ringcast_topic_resets_total",
            "Resumptions whose gap was older than the history (event: reset sent).",
            [](const shard_metrics& m) { return double(m.topic_resets); });
  w.counter("ringcast_topic_replayed_events_total", "Events replayed from topic history.",
            [](const shard_metrics& m) { return double(m.topic_replays); });
}

void render_admission(prom_writer& w, const std::vector<shard_metrics>& shards) {
  w.counter("ringcast_admission_admitted_total",
            "API requests and WebSocket actions that passed admission.",
            [](const shard_metrics& m) { return double(m.admitted); });
  w.family("ringcast_admission_rejected_total", "counter", "Refused by admission, by reason.");
  for (size_t r = 0; r < static_cast<size_t>(reject_reason::count); ++r)
    w.per_shard("ringcast_admission_rejected_total",
                label("reason", reject_reason_label(static_cast<reject_reason>(r))),
                [r](const shard_metrics& m) { return double(m.rejected[r]); });
  w.gauge("ringcast_engine_running", "Generations holding an engine slot.",
          [](const shard_metrics& m) { return double(m.engine_running); });
  w.gauge("ringcast_engine_queue_depth", "Generations waiting for an engine slot.",
          [](const shard_metrics& m) { return double(m.engine_waiting); });
  render_histogram(w, shards, "ringcast_engine_queue_wait_seconds",
                   "Time generations waited for an engine slot.", &shard_metrics::queue_wait);
  w.gauge("ringcast_broker_queue_depth", "Broker messages waiting to be processed.",
          [](const shard_metrics& m) { return double(m.queue_depth); });
  w.gauge("ringcast_broker_processing", "Broker messages being processed.",
          [](const shard_metrics& m) { return double(m.broker_processing); });
  w.gauge("ringcast_broker_partitions", "Broker partitions this node works (cluster mode).",
          [](const shard_metrics& m) { return double(m.broker_partitions); });
  w.gauge("ringcast_broker_active_users", "Users with messages waiting or processing.",
          [](const shard_metrics& m) { return double(m.active_users); });
  w.counter("ringcast_broker_enqueued_total", "Broker messages accepted.",
            [](const shard_metrics& m) { return double(m.broker_enqueued); });
  render_histogram(w, shards, "ringcast_broker_queue_wait_seconds",
                   "Time from a broker message's enqueue to the start of its processing.",
                   &shard_metrics::broker_wait);
}

void render_reactor(prom_writer& w) {
  w.counter("ringcast_loop_turns_total", "Event loop turns.",
            [](const shard_metrics& m) { return double(m.reactor.loop_turns); });
  w.counter("ringcast_io_completions_total", "io_uring completions handled.",
            [](const shard_metrics& m) { return double(m.reactor.completions); });
  w.counter("ringcast_cross_shard_messages_sent_total", "Messages sent to other shards.",
            [](const shard_metrics& m) { return double(m.reactor.messages_sent); });
  w.counter("ringcast_cross_shard_messages_received_total", "Messages received from other shards.",
            [](const shard_metrics& m) { return double(m.reactor.messages_received); });
  w.counter("ringcast_mailbox_doorbells_total", "MSG_RING wake-ups sent to sleeping shards.",
            [](const shard_metrics& m) { return double(m.reactor.doorbells_sent); });
  w.counter("ringcast_mailbox_full_total", "Messages that found their mailbox full (backlogged).",
            [](const shard_metrics& m) { return double(m.reactor.mailbox_full); });
  w.counter("ringcast_mailbox_dropped_total", "Messages refused: mailbox and backlog full.",
            [](const shard_metrics& m) { return double(m.reactor.mailbox_dropped); });
  w.gauge("ringcast_mailbox_backlog", "Messages waiting for room in a full mailbox.",
          [](const shard_metrics& m) { return double(m.reactor.mailbox_backlog); });
  w.counter("ringcast_recv_buffer_exhausted_total",
            "Receives that found no free receive buffer and were re-armed.",
            [](const shard_metrics& m) { return double(m.reactor.recv_buffer_waits); });
  w.counter("ringcast_access_log_lines_total", "Access log lines buffered for writing.",
            [](const shard_metrics& m) { return double(m.access_log.lines); });
  w.counter("ringcast_access_log_dropped_total",
            "Access log lines dropped: the file fell behind or a write failed.",
            [](const shard_metrics& m) { return double(m.access_log.dropped); });
  w.counter("ringcast_access_log_write_errors_total", "Failed access log writes.",
            [](const shard_metrics& m) { return double(m.access_log.write_errors); });
  w.counter("ringcast_access_log_reopens_total", "Access log reopens (SIGUSR1).",
            [](const shard_metrics& m) { return double(m.access_log.reopens); });
  w.counter("ringcast_resolver_lookups_total", "Upstream host name lookups.",
            [](const shard_metrics& m) { return double(m.resolver.lookups); });
  w.counter("ringcast_resolver_cache_hits_total",
            "Lookups answered from the resolver's cache (answers and cached failures).",
            [](const shard_metrics& m) { return double(m.resolver.cache_hits); });
  w.counter("ringcast_resolver_queries_total", "DNS queries sent.",
            [](const shard_metrics& m) { return double(m.resolver.queries_sent); });
  w.counter("ringcast_resolver_query_timeouts_total",
            "DNS tries that ended without all their answers.",
            [](const shard_metrics& m) { return double(m.resolver.query_timeouts); });
  w.counter("ringcast_resolver_failures_total", "Lookups that failed.",
            [](const shard_metrics& m) { return double(m.resolver.failures); });
}

}  // namespace

void write_health(byte_buffer& out, const std::vector<shard_metrics>& shards, bool draining) {
  int64_t connections = 0, queue_depth = 0;
  uint64_t uptime_s = 0;
  for (const auto& m : shards) {
    for (int64_t n : m.connections_open) connections += n;
    queue_depth += m.queue_depth;
    if (m.uptime_s > uptime_s) uptime_s = m.uptime_s;
  }
  json::writer w(out);
  w.begin_object();
  w.string_member("status", draining ? "draining" : "ok");
  w.uint64_member("shards", shards.size());
  w.int64_member("connections", connections);
  w.int64_member("queue_depth", queue_depth);
  w.uint64_member("uptime_s", uptime_s);
  w.end_object();
}

void render_prometheus(const std::vector<shard_metrics>& shards, byte_buffer& out) {
  prom_writer w(out, shards);
  // Process-wide figures: one sample each, no shard label.
  w.family("ringcast_shards", "gauge", "Shard threads.");
  w.unlabelled("ringcast_shards", double(shards.size()));
  w.family("ringcast_uptime_seconds", "gauge", "Seconds since ringcast started.");
  w.unlabelled("ringcast_uptime_seconds", double(w.total().uptime_s));
  render_connections(w);
  render_requests(w);
  render_histogram(w, shards, "ringcast_request_duration_seconds",
                   "Time from a complete request to its answer (for streams: to their start).",
                   &shard_metrics::request_latency);
  render_engines(w, shards);
  render_admission(w, shards);
  render_errors(w);
  render_streams(w);
  render_reactor(w);
  render_upstream_metrics(shards, out);
  render_worker_metrics(shards, out);
  render_cluster_metrics(shards, out);
  render_responses_kv_metrics(shards, out);
  render_ws_compression_metrics(shards, out);
}

}  // namespace rc::server
