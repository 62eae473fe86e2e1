#include "load/report.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "base/byte_buffer.h"
#include "load/fanout_dialect.h"
#include "load/report_streams.h"
#include "load/report_timeline.h"
#include "proto/json_writer.h"

namespace rc::load {
namespace {

constexpr double saturated_share = 0.95;
// More CPU than this going to other processes during the window disturbs the figures.
constexpr double other_work_cores_max = 0.15;

struct summary {
  shard_results merged;
  double window_s = 0;
  double rate = 0;
  // Client (this process) over the window.
  double client_cpu_s = 0;
  double client_busiest = 0;
  bool client_measured = false;
  // Server over the window.
  process_usage server;
  bool server_measured = false;
  std::vector<double> server_cpu_each;  // per --server-pid
  // The --aux-pid processes over the window (e.g. NATS servers), apart from the server.
  process_usage aux;
  bool aux_measured = false;
  std::vector<double> aux_cpu_each;
  uint64_t rss_after = 0;
  double rss_per_connection = 0;
  stream_figures streams;
  // The machine over the window, in cores.
  bool machine_measured = false;
  double machine_busy = 0;
  double machine_irq = 0;
  double other_work = 0;
  std::string status;  // "ok", or why not
  int exit_code = 0;
};

std::string format_ns(double ns) {
  return format_duration_ns(ns);
}

std::string format_bytes(double b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", b / (1024.0 * 1024.0));
  return buf;
}

summary summarise(const report_input& in) {
  summary s;
  for (const shard_results& t : in.threads) s.merged.merge(t);
  const run_watch& w = in.watch;
  bool window_done = w.wall_end_ns > w.wall_start_ns;
  s.window_s = window_done ? in.opts.duration_s : 0;
  s.rate = s.window_s > 0 ? static_cast<double>(s.merged.ops) / s.window_s : 0;
  if (window_done) {
    s.client_measured = true;
    s.client_cpu_s = static_cast<double>(w.process_cpu_end_ns - w.process_cpu_start_ns) / 1e9;
    for (const shard_results& t : in.threads) {
      if (!t.cpu.complete()) continue;
      double share = static_cast<double>(t.cpu.end_ns - t.cpu.start_ns) /
                     static_cast<double>(t.cpu.wall_end_ns - t.cpu.wall_start_ns);
      if (share > s.client_busiest) s.client_busiest = share;
    }
  }
  if (group_usage g = group_usage_between(w.server_start, w.server_end); g.ok) {
    s.server_measured = true;
    s.server = g.total;
    s.server_cpu_each = std::move(g.cpu_s);
    for (const process_sample& p : w.server_end) s.rss_after += p.rss_bytes;
    uint64_t ready = in.control.ready();
    if (ready > 0 && w.server_rss_before > 0)
      s.rss_per_connection =
          (static_cast<double>(s.rss_after) - static_cast<double>(w.server_rss_before)) /
          static_cast<double>(ready);
    if (has_stream_measures(in) && w.server_rss_before > 0 && s.rss_after > 0)
      s.streams.server_bytes_per_stream =
          (static_cast<double>(s.rss_after) - static_cast<double>(w.server_rss_before)) /
          static_cast<double>(active_streams(in.opts));
  }
  if (group_usage g = group_usage_between(w.aux_start, w.aux_end); g.ok) {
    s.aux_measured = true;
    s.aux = g.total;
    s.aux_cpu_each = std::move(g.cpu_s);
  }
  s.streams.window_s = s.window_s;

  if (window_done && w.machine_start.ok && w.machine_end.ok) {
    double wall_s = static_cast<double>(w.wall_end_ns - w.wall_start_ns) / 1e9;
    auto cores = [&](uint64_t ticks) {
      return static_cast<double>(ticks_to_ns(ticks)) / 1e9 / wall_s;
    };
    s.machine_measured = true;
    s.machine_busy = cores(w.machine_end.busy_ticks - w.machine_start.busy_ticks);
    s.machine_irq = cores(w.machine_end.irq_ticks - w.machine_start.irq_ticks);
    double ours = s.client_cpu_s / s.window_s;
    if (s.server_measured) ours += s.server.cpu_s / s.server.wall_s;
    if (s.aux_measured) ours += s.aux.cpu_s / s.aux.wall_s;
    s.other_work = std::max(0.0, s.machine_busy - s.machine_irq - ours);
  }

  const error_counts& e = s.merged.errors;
  if (in.control.current() == phase::aborted) {
    s.status = "aborted: " + in.control.abort_reason();
  } else if (!window_done) {
    s.status = "the measured window never completed";
  } else if (s.merged.ops == 0) {
    s.status = "nothing completed inside the window";
  } else if (e.hard() > 0) {
    s.status = "errors";
  } else if (e.loss() > 0 && in.opts.loss == loss_policy::fail) {
    s.status = "loss (sequence errors; --allow-loss tolerates them)";
  } else {
    s.status = "ok";
  }
  s.exit_code = s.status == "ok" ? 0 : 1;
  return s;
}

void print_errors(const summary& s) {
  const error_counts& e = s.merged.errors;
  struct item {
    const char* name;
    uint64_t value;
  } items[] = {
      {"connect", e.connect},
      {"not_ready", e.not_ready},
      {"handshake", e.handshake},
      {"closed_by_server", e.closed},
      {"protocol", e.protocol},
      {"http_status", e.status},
      {"echo_mismatch", e.mismatch},
      {"server_error_events", e.server_error},
      {"publish", e.publish},
      {"seq_gaps", e.seq_gap},
      {"seq_missing", e.seq_missing},
      {"seq_duplicates", e.seq_duplicate},
      {"incomplete_subscribers", e.incomplete},
      {"incomplete_missing", e.incomplete_missing},
      {"publish_unanswered", e.publish_unanswered},
  };
  std::string line;
  for (const item& i : items) {
    if (i.value == 0) continue;
    line += "  " + std::string(i.name) + "=" + std::to_string(i.value);
  }
  for (auto [err, n] : s.merged.connect_errnos)
    line += "  [connect: " + std::string(strerror(err)) + " x" + std::to_string(n) + "]";
  for (auto [code, n] : s.merged.ws_close_codes)
    line += "  [close frame " + std::to_string(code) + " x" + std::to_string(n) + "]";
  for (auto [err, n] : s.merged.closed_errnos)
    line += "  [closed: " + std::string(err ? strerror(err) : "by the server") + " x" +
            std::to_string(n) + "]";
  std::printf("  errors      %s\n", line.empty() ? "none" : line.c_str() + 2);
}

void print_text(const report_input& in, const summary& s) {
  const load_options& o = in.opts;
  const shard_results& m = s.merged;
  std::string to = o.target;
  if (o.targets.size() > 1) to += " (and " + std::to_string(o.targets.size() - 1) + " more)";
  std::printf(
      "ringcast-load %s -> %s: %u connections, %u thread%s, window %.1f s after %.1f s "
      "warm-up\n",
      o.mode.c_str(), to.c_str(), o.connections, o.threads, o.threads == 1 ? "" : "s", o.duration_s,
      o.warmup_s);
  std::printf("  ready       %llu of %llu (failed %llu, late %llu)\n",
              static_cast<unsigned long long>(in.control.ready()),
              static_cast<unsigned long long>(in.control.ready_target()),
              static_cast<unsigned long long>(in.control.failed()),
              static_cast<unsigned long long>(in.control.not_ready()));
  if (in.mode.kind == measure::holding) {
    std::printf("  %-11s %llu held open through the window\n", std::string(in.mode.unit).c_str(),
                static_cast<unsigned long long>(m.ops));
  } else {
    std::printf("  %-11s %llu in window = %.0f/s (whole run %llu)\n",
                std::string(in.mode.unit).c_str(), static_cast<unsigned long long>(m.ops), s.rate,
                static_cast<unsigned long long>(m.ops_total));
  }
  if (m.latency.count() > 0) {
    const histogram& h = m.latency;
    std::printf("  latency     min %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s\n",
                format_ns(static_cast<double>(h.min())).c_str(),
                format_ns(static_cast<double>(h.percentile(50))).c_str(),
                format_ns(static_cast<double>(h.percentile(90))).c_str(),
                format_ns(static_cast<double>(h.percentile(99))).c_str(),
                format_ns(static_cast<double>(h.percentile(99.9))).c_str(),
                format_ns(static_cast<double>(h.max())).c_str(), format_ns(h.mean()).c_str());
  }
  if (o.mode == "fanout" && o.dialect != fanout_dialect::ringcast)
    std::printf("  dialect     %s\n", std::string(dialect_name(o.dialect)).c_str());
  if (m.published > 0) {
    std::printf("  publisher   %llu published (%llu acknowledged), max lag behind schedule %s\n",
                static_cast<unsigned long long>(m.published),
                static_cast<unsigned long long>(m.publish_acked),
                format_ns(static_cast<double>(m.publish_lag_max_ns)).c_str());
  }
  if (has_stream_measures(in)) print_stream_measures(in, m.streams, s.streams);
  if (m.ws_messages_in > 0) {
    double n = static_cast<double>(m.ws_messages_in);
    std::printf("  ws in       %llu messages: %.1f wire bytes, %.1f payload bytes per message%s\n",
                static_cast<unsigned long long>(m.ws_messages_in),
                static_cast<double>(m.ws_wire_bytes_in) / n,
                static_cast<double>(m.ws_payload_bytes_in) / n,
                in.opts.deflate ? " (permessage-deflate)" : "");
  }
  if (s.client_measured) {
    std::printf("  client cpu  %.2f cores; busiest thread %.1f%%%s\n", s.client_cpu_s / s.window_s,
                s.client_busiest * 100, s.client_busiest >= saturated_share ? "  SATURATED" : "");
  }
  if (s.server_measured) {
    double per_op = m.ops > 0 ? s.server.cpu_s * 1e6 / static_cast<double>(m.ops) : 0;
    std::printf(
        "  server cpu  %.2f cores over %u busy thread%s; busiest %.1f%%%s; %.3f µs per %s\n",
        s.server.cpu_s / s.server.wall_s, s.server.busy_threads,
        s.server.busy_threads == 1 ? "" : "s", s.server.busiest_share * 100,
        s.server.busiest_share >= saturated_share ? "  SATURATED" : "", per_op,
        std::string(in.mode.unit_one).c_str());
    if (s.server_cpu_each.size() > 1)
      std::printf("  server cpu  summed over %zu processes\n", s.server_cpu_each.size());
    if (in.watch.server_rss_before > 0) {
      std::printf(
          "  server rss  %s before connecting, %s at the end of the window: %.0f bytes per "
          "connection\n",
          format_bytes(static_cast<double>(in.watch.server_rss_before)).c_str(),
          format_bytes(static_cast<double>(s.rss_after)).c_str(), s.rss_per_connection);
    }
  }
  if (s.aux_measured) {
    double per_op = m.ops > 0 ? s.aux.cpu_s * 1e6 / static_cast<double>(m.ops) : 0;
    std::printf(
        "  aux cpu     %.2f cores over %zu process%s; busiest thread %.1f%%; %.3f µs per %s\n",
        s.aux.cpu_s / s.aux.wall_s, s.aux_cpu_each.size(), s.aux_cpu_each.size() == 1 ? "" : "es",
        s.aux.busiest_share * 100, per_op, std::string(in.mode.unit_one).c_str());
  }
  if (s.machine_measured) {
    std::printf("  machine     %.2f cores busy: interrupts %.2f, other processes %.2f%s\n",
                s.machine_busy, s.machine_irq, s.other_work,
                s.other_work > other_work_cores_max ? "  DISTURBED" : "");
  }
  print_errors(s);
  bool client_sat = s.client_measured && s.client_busiest >= saturated_share;
  bool server_sat = s.server_measured && s.server.busiest_share >= saturated_share;
  bool disturbed = s.machine_measured && s.other_work > other_work_cores_max;
  const char* verdict =
      in.mode.kind == measure::holding ? "connections held; see the server's RSS per connection"
      : disturbed ? "other processes competed for the CPUs: figures are unreliable"
      : !s.server_measured && !client_sat
          ? "server CPU not measured (--server-pid): is the server saturated?"
      : client_sat && !server_sat
          ? "the client saturated first: throughput measures ringcast-load; "
            "compare server CPU per operation"
      : server_sat ? "the server is saturated: throughput measures the server"
                   : "neither side saturated: offered load limits throughput";
  std::printf("  verdict     %s\n", verdict);
  std::printf("  status      %s\n", s.status.c_str());
}

void write_latency(json::writer& w, const histogram& h) {
  w.key("latency_ns");
  w.begin_object();
  w.uint64_member("count", h.count());
  w.uint64_member("min", h.min());
  w.float64_member("mean", h.mean());
  w.uint64_member("p50", h.percentile(50));
  w.uint64_member("p90", h.percentile(90));
  w.uint64_member("p99", h.percentile(99));
  w.uint64_member("p999", h.percentile(99.9));
  w.uint64_member("max", h.max());
  w.end_object();
}

void write_errors(json::writer& w, const summary& s) {
  const error_counts& e = s.merged.errors;
  w.key("errors");
  w.begin_object();
  w.uint64_member("connect", e.connect);
  w.uint64_member("not_ready", e.not_ready);
  w.uint64_member("handshake", e.handshake);
  w.uint64_member("closed_by_server", e.closed);
  w.uint64_member("protocol", e.protocol);
  w.uint64_member("http_status", e.status);
  w.uint64_member("echo_mismatch", e.mismatch);
  w.uint64_member("server_error_events", e.server_error);
  w.uint64_member("publish", e.publish);
  w.uint64_member("seq_gaps", e.seq_gap);
  w.uint64_member("seq_missing", e.seq_missing);
  w.uint64_member("seq_duplicates", e.seq_duplicate);
  w.uint64_member("incomplete_subscribers", e.incomplete);
  w.uint64_member("incomplete_missing", e.incomplete_missing);
  w.uint64_member("publish_unanswered", e.publish_unanswered);
  w.uint64_member("total", e.hard() + e.loss());
  w.key("connect_errnos");
  w.begin_object();
  for (auto [err, n] : s.merged.connect_errnos) w.uint64_member(strerror(err), n);
  w.end_object();
  w.key("closed_errnos");
  w.begin_object();
  for (auto [err, n] : s.merged.closed_errnos) w.uint64_member(err ? strerror(err) : "fin", n);
  w.end_object();
  w.key("ws_close_codes");
  w.begin_object();
  for (auto [code, n] : s.merged.ws_close_codes) w.uint64_member(std::to_string(code), n);
  w.end_object();
  w.end_object();
}

// CPU figures of a group of processes (the servers, or the aux processes).
void write_usage(json::writer& w, const process_usage& u, const std::vector<int>& pids,
                 const std::vector<double>& each, uint64_t ops) {
  w.key("pids");
  w.begin_array();
  for (int pid : pids) w.int64(pid);
  w.end_array();
  w.key("cpu_s_each");
  w.begin_array();
  for (double c : each) w.float64(c);
  w.end_array();
  w.float64_member("cpu_s", u.cpu_s);
  w.float64_member("cores", u.wall_s > 0 ? u.cpu_s / u.wall_s : 0);
  w.float64_member("busiest_thread_share", u.busiest_share);
  w.uint64_member("busy_threads", u.busy_threads);
  w.boolean_member("saturated", u.busiest_share >= saturated_share);
  w.float64_member("cpu_us_per_op", ops > 0 ? u.cpu_s * 1e6 / static_cast<double>(ops) : 0);
  w.float64_member("ops_per_cpu_s", u.cpu_s > 0 ? static_cast<double>(ops) / u.cpu_s : 0);
}

void write_sides(json::writer& w, const report_input& in, const summary& s) {
  const shard_results& m = s.merged;
  w.key("client");
  w.begin_object();
  w.float64_member("cpu_s", s.client_cpu_s);
  w.float64_member("cores", s.window_s > 0 ? s.client_cpu_s / s.window_s : 0);
  w.float64_member("busiest_thread_share", s.client_busiest);
  w.boolean_member("saturated", s.client_measured && s.client_busiest >= saturated_share);
  w.uint64_member("loop_turns", m.loop_turns);
  w.uint64_member("recv_buffer_waits", m.recv_buffer_waits);
  w.boolean_member("ws_deflate", in.opts.deflate);
  w.uint64_member("ws_wire_bytes_in", m.ws_wire_bytes_in);
  w.uint64_member("ws_messages_in", m.ws_messages_in);
  w.uint64_member("ws_payload_bytes_in", m.ws_payload_bytes_in);
  w.end_object();
  w.key("machine");
  w.begin_object();
  w.float64_member("busy_cores", s.machine_busy);
  w.float64_member("interrupt_cores", s.machine_irq);
  w.float64_member("other_process_cores", s.other_work);
  w.boolean_member("disturbed", s.machine_measured && s.other_work > other_work_cores_max);
  w.end_object();
  w.key("aux");
  if (s.aux_measured) {
    w.begin_object();
    write_usage(w, s.aux, in.opts.aux_pids, s.aux_cpu_each, m.ops);
    w.end_object();
  } else {
    w.null();
  }
  w.key("server");
  if (!s.server_measured) {
    w.null();
    return;
  }
  w.begin_object();
  w.int64_member("pid", in.opts.server_pids.front());
  write_usage(w, s.server, in.opts.server_pids, s.server_cpu_each, m.ops);
  w.uint64_member("rss_before_bytes", in.watch.server_rss_before);
  w.uint64_member("rss_after_bytes", s.rss_after);
  w.float64_member("rss_per_connection_bytes", s.rss_per_connection);
  w.end_object();
}

bool write_json(const report_input& in, const summary& s) {
  const load_options& o = in.opts;
  const shard_results& m = s.merged;
  byte_buffer buf;
  json::writer w(buf);
  w.begin_object();
  w.string_member("mode", o.mode);
  w.string_member("unit", in.mode.unit);
  w.string_member("target", o.target);
  w.key("targets");
  w.begin_array();
  for (const std::string& t : o.targets) w.string(t);
  w.end_array();
  w.uint64_member("connections", o.connections);
  w.uint64_member("threads", o.threads);
  w.float64_member("duration_s", o.duration_s);
  w.float64_member("warmup_s", o.warmup_s);
  if (o.mode == "http") {
    w.string_member("path", o.path);
    w.uint64_member("pipeline", o.pipeline);
  } else if (o.mode == "ws-echo") {
    w.uint64_member("message_bytes", o.message_bytes);
  } else if (o.mode == "fanout") {
    w.string_member("sub", o.sub == sub_protocol::ws ? "ws" : "sse");
    w.string_member("pub", o.pub == pub_protocol::http ? "http" : "ws");
    w.float64_member("rate", o.rate);
    w.uint64_member("window", o.window);
    w.string_member("topic", o.topic);
    w.string_member("pub_target", o.pub_target_address.text);
    w.boolean_member("sparse_seq", o.sparse_seq);
    w.string_member("dialect", dialect_name(o.dialect));
    w.uint64_member("published", m.published);
    w.uint64_member("publish_acked", m.publish_acked);
    w.uint64_member("publish_lag_max_ns", m.publish_lag_max_ns);
  }
  w.uint64_member("ready", in.control.ready());
  w.uint64_member("failed", in.control.failed());
  w.uint64_member("count", m.ops);
  w.uint64_member("count_whole_run", m.ops_total);
  w.float64_member("per_second", s.rate);
  write_latency(w, m.latency);
  if (has_stream_measures(in)) write_stream_measures(w, in, m.streams, s.streams);
  write_errors(w, s);
  write_sides(w, in, s);
  write_histograms(w, m);
  write_timeline(w, in.intervals);
  w.string_member("status", s.status);
  w.end_object();
  buf.push_back('\n');
  FILE* f = std::fopen(o.json_path.c_str(), "w");
  if (!f) return false;
  bool ok = std::fwrite(buf.data(), 1, buf.size(), f) == buf.size();
  return std::fclose(f) == 0 && ok;
}

}  // namespace

int report(const report_input& in) {
  summary s = summarise(in);
  // Connections that never became ready by the deadline count as errors.
  s.merged.errors.not_ready = in.control.not_ready();
  if (s.merged.errors.not_ready > 0 && s.exit_code == 0) {
    s.status = "errors";
    s.exit_code = 1;
  }
  if (!in.opts.quiet) print_text(in, s);
  if (!in.opts.json_path.empty() && !write_json(in, s)) {
    std::fprintf(stderr, "ringcast-load: cannot write %s: %s\n", in.opts.json_path.c_str(),
                 strerror(errno));
    return 1;
  }
  std::fflush(stdout);
  return s.exit_code;
}

}  // namespace rc::load
