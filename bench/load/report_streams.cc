#include "load/report_streams.h"

#include <cstdio>

namespace rc::load {
namespace {

bool is_chat(const load_options& o) {
  return o.mode == "sse-chat" || o.mode == "ws-chat";
}

void print_quantiles(const char* label, const histogram& h) {
  if (h.count() == 0) {
    std::printf("  %-13s no samples\n", label);
    return;
  }
  std::printf("  %-13s p50 %s  p99 %s  p99.9 %s  max %s  (%llu samples)\n", label,
              format_duration_ns(static_cast<double>(h.percentile(50))).c_str(),
              format_duration_ns(static_cast<double>(h.percentile(99))).c_str(),
              format_duration_ns(static_cast<double>(h.percentile(99.9))).c_str(),
              format_duration_ns(static_cast<double>(h.max())).c_str(),
              static_cast<unsigned long long>(h.count()));
}

void write_quantiles(json::writer& w, std::string_view name, const histogram& h) {
  w.key(name);
  w.begin_object();
  w.uint64_member("count", h.count());
  w.uint64_member("p50", h.percentile(50));
  w.uint64_member("p99", h.percentile(99));
  w.uint64_member("p999", h.percentile(99.9));
  w.uint64_member("max", h.max());
  w.end_object();
}

double per_second(uint64_t n, double window_s) {
  return window_s > 0 ? static_cast<double>(n) / window_s : 0;
}

}  // namespace

bool has_stream_measures(const report_input& in) {
  return is_chat(in.opts) || in.opts.mode == "broker";
}

uint64_t active_streams(const load_options& o) {
  return uint64_t{o.connections} * (o.mode == "ws-chat" ? o.streams_per_conn : 1);
}

std::string format_duration_ns(double ns) {
  char buf[32];
  if (ns < 1e3) {
    std::snprintf(buf, sizeof buf, "%.0f ns", ns);
  } else if (ns < 1e6) {
    std::snprintf(buf, sizeof buf, "%.1f µs", ns / 1e3);
  } else if (ns < 1e9) {
    std::snprintf(buf, sizeof buf, "%.2f ms", ns / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f s", ns / 1e9);
  }
  return buf;
}

void print_stream_measures(const report_input& in, const stream_measures& m,
                           const stream_figures& f) {
  const load_options& o = in.opts;
  if (is_chat(o)) {
    std::printf("  tokens      %llu in window = %.0f/s (whole run %llu); %llu streams active\n",
                static_cast<unsigned long long>(m.tokens), per_second(m.tokens, f.window_s),
                static_cast<unsigned long long>(m.tokens_total),
                static_cast<unsigned long long>(active_streams(o)));
    print_quantiles("ttft overhead", m.ttft_overhead);
    if (m.ttft_early > 0)
      std::printf(
          "                %llu first tokens came sooner than --first-token-ms %.1f, by up to %s\n",
          static_cast<unsigned long long>(m.ttft_early), o.first_token_ms,
          format_duration_ns(static_cast<double>(m.ttft_early_max_ns)).c_str());
    print_quantiles("token gap", m.token_gap);
    if (o.tokens_per_s > 0) print_quantiles("|jitter|", m.token_jitter);
    if (m.flow_pauses > 0)
      std::printf("  flow        %llu flow.pause events\n",
                  static_cast<unsigned long long>(m.flow_pauses));
    if (f.server_bytes_per_stream >= 0)
      std::printf("  memory      server bytes per active stream: %.0f\n",
                  f.server_bytes_per_stream);
    return;
  }
  uint64_t rejected = m.rejected_429 + m.rejected_503;
  std::printf(
      "  enqueue     offered %.0f/s; in window: admitted %llu (%.0f/s), rejected %llu "
      "(429: %llu, 503: %llu); largest burst %llu\n",
      o.rate, static_cast<unsigned long long>(m.admitted), per_second(m.admitted, f.window_s),
      static_cast<unsigned long long>(rejected), static_cast<unsigned long long>(m.rejected_429),
      static_cast<unsigned long long>(m.rejected_503),
      static_cast<unsigned long long>(m.burst_max));
  if (m.unsent > 0)
    std::printf("              %llu due but not sent: every connection closed or %s\n",
                static_cast<unsigned long long>(m.unsent),
                "holding the most unanswered requests allowed");
  print_quantiles("admitted", m.enqueue_admitted);
  print_quantiles("rejected", m.enqueue_rejected);
  std::printf(
      "  streams     %llu opened (fraction %.3g), %llu refused (429/503), %llu skipped (stream "
      "connections busy)\n",
      static_cast<unsigned long long>(m.streams_opened), o.stream_fraction,
      static_cast<unsigned long long>(m.streams_refused),
      static_cast<unsigned long long>(m.streams_skipped));
  print_quantiles("to processing", m.to_processing);
  print_quantiles("to done", m.to_done);
}

void write_stream_measures(json::writer& w, const report_input& in, const stream_measures& m,
                           const stream_figures& f) {
  const load_options& o = in.opts;
  w.key("streams");
  w.begin_object();
  if (is_chat(o)) {
    w.uint64_member("max_tokens", o.max_tokens);
    w.uint64_member("streams_per_conn", o.mode == "ws-chat" ? o.streams_per_conn : 1);
    w.uint64_member("active_streams", active_streams(o));
    w.float64_member("first_token_ms", o.first_token_ms);
    w.float64_member("tokens_per_s_nominal", o.tokens_per_s);
    w.uint64_member("tokens", m.tokens);
    w.uint64_member("tokens_whole_run", m.tokens_total);
    w.float64_member("tokens_per_second", per_second(m.tokens, f.window_s));
    w.uint64_member("ttft_early", m.ttft_early);
    w.uint64_member("ttft_early_max_ns", m.ttft_early_max_ns);
    w.uint64_member("flow_pauses", m.flow_pauses);
    write_quantiles(w, "ttft_overhead_ns", m.ttft_overhead);
    write_quantiles(w, "token_gap_ns", m.token_gap);
    write_quantiles(w, "token_jitter_ns", m.token_jitter);
    if (f.server_bytes_per_stream >= 0) {
      w.float64_member("server_bytes_per_active_stream", f.server_bytes_per_stream);
    } else {
      w.key("server_bytes_per_active_stream");
      w.null();
    }
  } else {
    w.float64_member("rate_offered", o.rate);
    w.uint64_member("users", o.users);
    w.float64_member("stream_fraction", o.stream_fraction);
    w.uint64_member("admitted", m.admitted);
    w.uint64_member("rejected_429", m.rejected_429);
    w.uint64_member("rejected_503", m.rejected_503);
    w.uint64_member("rejected", m.rejected_429 + m.rejected_503);
    w.uint64_member("burst_max", m.burst_max);
    w.uint64_member("pace_us", o.pace_us);
    w.uint64_member("unsent", m.unsent);
    w.uint64_member("streams_opened", m.streams_opened);
    w.uint64_member("streams_skipped", m.streams_skipped);
    w.uint64_member("streams_refused", m.streams_refused);
    write_quantiles(w, "enqueue_admitted_ns", m.enqueue_admitted);
    write_quantiles(w, "enqueue_rejected_ns", m.enqueue_rejected);
    write_quantiles(w, "to_processing_ns", m.to_processing);
    write_quantiles(w, "to_done_ns", m.to_done);
  }
  w.end_object();
}

}  // namespace rc::load
