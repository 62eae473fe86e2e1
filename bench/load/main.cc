// ringcast-load: an io_uring load generator for ringcast (and any HTTP/WebSocket server):
// `ringcast-load MODE [options]`. See mode.h for the modes and docs/benchmarks-streaming.md for
// how the benchmarks use it.
#include <sys/resource.h>

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/shard_group.h"
#include "load/driver.h"
#include "load/fanout_dialect.h"
#include "load/mode.h"
#include "load/options.h"
#include "load/report.h"
#include "load/run_control.h"
#include "load/targets.h"
#include "load/timeline.h"

namespace rc::load {
namespace {

// Ports one source IP can use towards one destination (net.ipv4.ip_local_port_range is
// 32768-60999 by default, ~28k), with some room to spare.
constexpr uint32_t connections_per_source_ip = 25000;
// Descriptors beyond the connections: rings, signalfd, /proc reads, stdio.
constexpr uint64_t spare_fds = 64;

// What main resolves after parsing: the strings of enumerated options, and whether --ws-path
// was given (ws-echo's default differs).
struct parsed_strings {
  std::string sub = "ws";
  std::string pub = "http";
  std::string dialect = "ringcast";
  CLI::Option* ws_path = nullptr;
};

void add_options(CLI::App& app, load_options& o, parsed_strings& ps) {
  std::string& sub = ps.sub;
  std::string& pub = ps.pub;
  std::string modes;
  for (const mode_spec* m : all_modes())
    modes += "\n  " + std::string(m->name) + ": " + std::string(m->summary);
  app.add_option("mode", o.mode, "What to run:" + modes)->required();

  const char* run = "Target and load";
  app.add_option("--target", o.targets,
                 "Server address, HOST:PORT (default 127.0.0.1:8080); repeat it (or list them "
                 "comma-separated) to spread connections over several servers: connection n goes "
                 "to target n % K")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->group(run);
  app.add_option("--host", o.host_header, "Host header (default: the target)")->group(run);
  app.add_option("-c,--connections", o.connections, "Connections (subscribers in fanout)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 10'000'000u))
      ->group(run);
  app.add_option("-t,--threads", o.threads, "Client threads")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u))
      ->group(run);
  app.add_option("--cpus", o.cpus, "CPUs to pin client threads to, in order, e.g. 1 or 2-3")
      ->group(run);
  app.add_option("-d,--duration", o.duration_s, "Measured window, seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 86400.0))
      ->group(run);
  app.add_option("--warmup", o.warmup_s, "Load before the window opens, seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0))
      ->group(run);
  app.add_option("--drain-ms", o.drain_ms, "After the window, wait at most this long for answers")
      ->capture_default_str()
      ->group(run);

  const char* conn = "Connections";
  app.add_option("--source-ips", o.source_ips,
                 "Spread connections over this many source IPs 127.0.0.2... (0: only if needed)")
      ->capture_default_str()
      ->check(CLI::Range(0u, 65000u))
      ->group(conn);
  app.add_option("--connect-concurrency", o.connect_concurrency, "Connects in flight at once")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1'000'000u))
      ->group(conn);
  app.add_option("--connect-timeout-ms", o.connect_timeout_ms, "Deadline per connect")
      ->capture_default_str()
      ->group(conn);
  app.add_option("--ready-timeout-ms", o.ready_timeout_ms, "All connections ready within this")
      ->capture_default_str()
      ->group(conn);
  app.add_option("--recv-buffers", o.recv_buffers, "Receive buffers per thread (power of two)")
      ->capture_default_str()
      ->check(CLI::Range(16u, 32768u))
      ->group(conn);
  app.add_option("--recv-buffer-bytes", o.recv_buffer_bytes, "Bytes per receive buffer")
      ->capture_default_str()
      ->check(CLI::Range(512u, 1u << 20))
      ->group(conn);

  const char* rep = "Reporting";
  app.add_option("--json", o.json_path,
                 "Also write the report as JSON to this file: the text report's figures, every "
                 "latency histogram's buckets (\"histograms\") and the window interval by "
                 "interval (\"timeline\"); see docs/budgets.md")
      ->group(rep);
  app.add_option("--timeline-ms", o.timeline_ms,
                 "The JSON timeline's interval: completions, errors, server CPU and RSS, and "
                 "latency p50/p99/max per interval of this many ms")
      ->capture_default_str()
      ->check(CLI::Range(100u, 10000u))
      ->group(rep);
  app.add_option("--server-pid", o.server_pids,
                 "Measure this process's CPU time and RSS over the window (repeatable: the "
                 "processes are summed, e.g. the nodes of a cluster)")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->check(CLI::Range(1, 1 << 22))
      ->group(rep);
  app.add_option("--aux-pid", o.aux_pids,
                 "Also measure these processes' CPU time, reported apart as `aux` (repeatable; "
                 "e.g. the NATS servers behind the nodes)")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->check(CLI::Range(1, 1 << 22))
      ->group(rep);
  app.add_flag_callback(
         "--allow-loss", [&o] { o.loss = loss_policy::allow; },
         "fanout: gaps, missing deliveries and unanswered publications don't fail the run")
      ->group(rep);
  app.add_flag("-q,--quiet", o.quiet, "No text report (use with --json)")->group(rep);

  const char* http = "http mode";
  app.add_option("--path", o.path, "Request target")->capture_default_str()->group(http);
  app.add_option("--pipeline", o.pipeline, "Requests in flight per connection")
      ->capture_default_str()
      ->group(http);
  app.add_option("--header", o.headers, "Extra request field 'Name: value' (repeatable)")
      ->group(http);

  const char* echo = "ws-echo mode";
  app.add_option("--message-bytes", o.message_bytes, "Payload bytes per message")
      ->capture_default_str()
      ->group(echo);
  app.add_flag("--binary", o.binary, "Binary frames instead of text")->group(echo);
  app.add_flag("--deflate", o.deflate,
               "WebSocket connections (ws-echo, fanout --sub ws) offer permessage-deflate with "
               "no context takeover and inflate what they receive (sending uncompressed); a "
               "server that declines is a handshake error. The report adds wire and payload "
               "bytes received per message")
      ->group(echo);

  const char* fan = "fanout mode";
  app.add_option("--sub", sub, "Subscribers speak ws or sse")
      ->capture_default_str()
      ->check(CLI::IsMember({"ws", "sse"}))
      ->group(fan);
  app.add_option("--pub", pub, "The publisher speaks http (POST, keep-alive) or ws")
      ->capture_default_str()
      ->check(CLI::IsMember({"http", "ws"}))
      ->group(fan);
  app.add_option("--rate", o.rate,
                 "Publications per second (0: closed loop, see --window); broker: requests per "
                 "second offered")
      ->capture_default_str()
      ->group(fan);
  app.add_option("--window", o.window,
                 "Closed loop: publications not yet delivered to every subscriber")
      ->capture_default_str()
      ->group(fan);
  app.add_option("--pub-inflight", o.pub_inflight, "Publish requests awaiting an answer")
      ->capture_default_str()
      ->group(fan);
  app.add_option("--payload-bytes", o.payload_bytes, "Pad each publication's JSON to this size")
      ->capture_default_str()
      ->group(fan);
  app.add_option_function<std::string>(
         "--payload-fill", [&o](const std::string& v) { o.token_fill = v == "tokens"; },
         "What pads the publication: x (one repeated byte, default) or tokens (escaped "
         "chat.completion.chunk JSON with varied words: realistic for permessage-deflate)")
      ->check(CLI::IsMember({"x", "tokens"}))
      ->group(fan);
  app.add_option("--topic", o.topic, "Topic (default: a fresh one per run)")->group(fan);
  app.add_option("--pub-target", o.pub_target,
                 "The publisher's server, HOST:PORT (default: the first --target)")
      ->group(fan);
  app.add_option("--dialect", ps.dialect,
                 "The server's fanout protocol: ringcast; uws (the uWebSockets peer, ringcast's "
                 "protocol); nchan (POST /pub/T, subscribers /sub/T); pushpin (subscribers "
                 "/sub/T through a GRIP origin, POST /publish/ to --pub-target, pushpin's "
                 "control port). nchan and pushpin: the publication carries its own seq and ts, "
                 "--pub http only (see docs/benchmarks-streaming.md)")
      ->capture_default_str()
      ->check(CLI::IsMember({"ringcast", "nchan", "pushpin", "uws"}))
      ->group(fan);
  app.add_option("--subscribe-concurrency", o.subscribe_concurrency,
                 "Subscribers connecting or subscribing at once, all threads together (0: no "
                 "limit beyond --connect-concurrency); for servers that fail under a burst")
      ->capture_default_str()
      ->group(fan);
  app.add_option("--publish-after-ms", o.publish_after_ms,
                 "Publish the first publication this long after every subscriber is ready (for "
                 "servers whose subscription completes after the handshake; keep it below "
                 "--warmup)")
      ->capture_default_str()
      ->check(CLI::Range(0u, 600'000u))
      ->group(fan);
  app.add_flag("--sparse-seq", o.sparse_seq,
               "Sequence numbers come from a stream shared by topics (cluster mode): check that "
               "they increase and that every subscriber receives every publication, instead of "
               "expecting 1, 2, 3, ...")
      ->group(fan);

  ps.ws_path = app.add_option("--ws-path", o.ws_path,
                              "WebSocket endpoint (ws-idle, ws-chat; ws-echo: default /echo)")
                   ->capture_default_str()
                   ->group("ws-idle, ws-chat and ws-echo modes");

  const char* chat = "sse-chat and ws-chat modes";
  app.add_option("--model", o.model, "Model to ask for")->capture_default_str()->group(chat);
  app.add_option("--max-tokens", o.max_tokens, "max_tokens per request (also broker)")
      ->capture_default_str()
      ->group(chat);
  app.add_option("--streams-per-conn", o.streams_per_conn,
                 "ws-chat: chat.completion actions in flight per connection")
      ->capture_default_str()
      ->group(chat);
  app.add_option("--first-token-ms", o.first_token_ms,
                 "The server's --mock-first-token-ms: subtracted to give the TTFT overhead")
      ->capture_default_str()
      ->group(chat);
  app.add_option("--tokens-per-s", o.tokens_per_s,
                 "The server's --mock-tokens-per-s: nominal token gap for jitter (0: no jitter)")
      ->capture_default_str()
      ->group(chat);
  app.add_option("--stagger-ms", o.stagger_ms,
                 "Spread the connections' first requests over this long (0: all at once)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3'600'000.0))
      ->group(chat);

  const char* brk = "broker mode";
  app.add_option("--users", o.users, "Spread messages over this many user ids")
      ->capture_default_str()
      ->group(brk);
  app.add_option("--stream-fraction", o.stream_fraction,
                 "Fraction of admitted messages to stream (default: all up to 1,000/s offered, "
                 "then about 1,000 per second)")
      ->check(CLI::Range(0.0, 1.0))
      ->group(brk);
  app.add_option("--pace-us", o.pace_us,
                 "Send what the schedule owes this often (100..1000; requests leave in bursts of "
                 "rate x pace)")
      ->capture_default_str()
      ->group(brk);
  app.add_option("--stream-connections", o.stream_connections,
                 "Keep-alive connections that stream admitted messages")
      ->capture_default_str()
      ->group(brk);
}

// Resolves and checks the common settings; returns an error or empty.
std::string resolve(load_options& o) {
  if (std::string err = resolve_targets(o); !err.empty()) return err;
  if (self_numbered(o.dialect) && o.mode != "fanout")
    return "--dialect " + std::string(dialect_name(o.dialect)) + " applies to fanout only";
  if (!o.cpus.empty()) {
    auto list = cpu::parse_list(o.cpus);
    if (!list) return "--cpus: cannot parse '" + o.cpus + "'";
    if (list->size() < o.threads)
      return "--cpus lists " + std::to_string(list->size()) + " CPUs for " +
             std::to_string(o.threads) + " threads";
    o.cpu_list = *list;
  }
  if ((o.recv_buffers & (o.recv_buffers - 1)) != 0) return "--recv-buffers must be a power of two";
  if (o.duration_s * 1000.0 / o.timeline_ms > static_cast<double>(timeline::max_points))
    return "--duration / --timeline-ms gives more than " + std::to_string(timeline::max_points) +
           " timeline intervals: raise --timeline-ms";
  uint64_t sockets = uint64_t{o.connections} + 1;
  bool loopback = all_loopback(o);
  if (o.source_ips == 0 && sockets > connections_per_source_ip) {
    if (!loopback)
      return "more than " + std::to_string(connections_per_source_ip) +
             " connections to one address need several source IPs, which ringcast-load only "
             "picks on loopback (127.0.0.0/8)";
    o.source_ips = static_cast<uint32_t>((sockets + connections_per_source_ip - 1) /
                                         connections_per_source_ip);
  }
  if (o.source_ips > 0 && !loopback) return "--source-ips works with a 127.x.x.x target only";
  return {};
}

// Raises the descriptor limit to the hard limit; fails if even that is too low.
std::string raise_fd_limit(uint64_t needed) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return std::string("getrlimit: ") + strerror(errno);
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur < needed)
    return "need " + std::to_string(needed) + " file descriptors but RLIMIT_NOFILE allows " +
           std::to_string(rl.rlim_cur) +
           ": raise the hard limit (ulimit -Hn, LimitNOFILE=, or docker --ulimit nofile=) or "
           "open fewer connections";
  return {};
}

int run(int argc, char** argv) {
  load_options o;
  parsed_strings ps;
  CLI::App app{"ringcast-load: io_uring load generator for HTTP, WebSocket and SSE streaming",
               "ringcast-load"};
  add_options(app, o, ps);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  o.sub = ps.sub == "sse" ? sub_protocol::sse : sub_protocol::ws;
  o.pub = ps.pub == "ws" ? pub_protocol::ws : pub_protocol::http;
  o.dialect = parse_dialect(ps.dialect).value_or(fanout_dialect::ringcast);
  if (o.mode == "ws-echo" && ps.ws_path->count() == 0) o.ws_path = "/echo";
  const mode_spec* mode = find_mode(o.mode);
  if (!mode) {
    std::fprintf(stderr, "ringcast-load: unknown mode '%s' (see --help)\n", o.mode.c_str());
    return 2;
  }
  std::string err = resolve(o);
  if (err.empty()) err = mode->check(o);
  if (!err.empty()) {
    std::fprintf(stderr, "ringcast-load: %s\n", err.c_str());
    return 2;
  }
  if (err = raise_fd_limit(mode->ready_target(o) + 1 + spare_fds); !err.empty()) {
    std::fprintf(stderr, "ringcast-load: %s\n", err.c_str());
    return 2;
  }

  run_watch watch;
  for (int pid : o.server_pids) {
    uint64_t rss = process_rss_bytes(pid);
    if (rss == 0) {
      std::fprintf(stderr, "ringcast-load: cannot read /proc/%d/status (--server-pid)\n", pid);
      return 2;
    }
    watch.server_rss_before += rss;
  }
  for (int pid : o.aux_pids) {
    if (process_rss_bytes(pid) == 0) {
      std::fprintf(stderr, "ringcast-load: cannot read /proc/%d/status (--aux-pid)\n", pid);
      return 2;
    }
  }
  run_control control(o.threads, mode->ready_target(o), static_cast<uint64_t>(o.warmup_s * 1e9),
                      static_cast<uint64_t>(o.duration_s * 1e9),
                      uint64_t{o.ready_timeout_ms} * 1'000'000);
  std::vector<shard_results> results(o.threads);
  timeline intervals(o.threads, uint64_t{o.timeline_ms} * 1'000'000,
                     static_cast<uint64_t>(o.duration_s * 1e9));

  shard_group_options g;
  g.shards = o.threads;
  g.cpus = o.cpu_list;
  g.reactor.buffers.count = o.recv_buffers;
  g.reactor.buffers.buffer_bytes = o.recv_buffer_bytes;
  err = run_shards(g, [&](reactor& r) {
    run_client_thread(r, r.shard_id(), o.threads, *mode, o, control, results[r.shard_id()],
                      intervals, watch);
  });
  if (!err.empty()) {
    std::fprintf(stderr, "ringcast-load: %s\n", err.c_str());
    return 2;
  }
  intervals.finish();
  return report(report_input{*mode, o, control, results, intervals, watch});
}

}  // namespace
}  // namespace rc::load

int main(int argc, char** argv) {
  return rc::load::run(argc, argv);
}
