#include "server/config.h"

#include <CLI/CLI.hpp>
#include <toml++/toml.h>

#include <iostream>
#include <sstream>
#include <unordered_map>

#include "config_cluster.h"
#include "config_ws.h"
#include "core/cpu.h"
#include "upstreams_toml.h"

namespace rc::server {
namespace {

// CLI11 config parser backed by toml++: file keys are the long flag names with '_' for '-'.
// Keys are checked here, where the line is known, so an unknown key is reported with its line.
// There are no sections: a table is an error, except the arrays of tables [[upstreams]] and
// [[models]] (upstreams_toml.h).
class toml_config final : public CLI::Config {
 public:
  explicit toml_config(const CLI::App& app) : app_(app) {}

  std::string to_config(const CLI::App*, bool, bool, std::string) const override {
    return {};  // writing configs is not offered
  }

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    std::stringstream buffer;
    buffer << input.rdbuf();
    toml::table table;
    try {
      table = toml::parse(buffer.str());
    } catch (const toml::parse_error& e) {
      fail(static_cast<int>(e.source().begin.line), std::string(e.description()));
    }
    std::vector<CLI::ConfigItem> parsed;
    add_table(table, {}, parsed);
    try {
      check_upstream_tables(upstreams, routes);
    } catch (const upstream_table_error& e) {
      fail(e.line, e.reason);
    }
    return parsed;
  }

 private:
  std::string scalar_text(const toml::node& n) const {
    std::ostringstream s;
    if (auto v = n.as_string()) return v->get();
    if (auto v = n.as_boolean()) return v->get() ? "true" : "false";
    if (auto v = n.as_integer()) return std::to_string(v->get());
    if (auto v = n.as_floating_point()) {
      s << v->get();
      return s.str();
    }
    fail(static_cast<int>(n.source().begin.line), "unsupported value type");
  }

  void add_table(const toml::table& t, const std::vector<std::string>& parents,
                 std::vector<CLI::ConfigItem>& out) const {
    for (const auto& entry : t) {
      const toml::node& node = entry.second;
      std::string name(entry.first.str());
      int line = static_cast<int>(node.source().begin.line);
      if (parents.empty() && (name == "upstreams" || name == "models")) {
        add_upstream_tables(name, node);
        continue;
      }
      if (node.is_table()) fail(line, "sections are not supported ('" + name + "')");
      std::string flag = name;
      for (char& ch : flag)
        if (ch == '_') ch = '-';
      if (name.find('-') != std::string::npos || name == "config" || name == "help" ||
          name == "version" || !app_.get_option_no_throw("--" + flag))
        fail(line, "unknown key '" + name + "' (see ringcast --help; keys use underscores)");
      key_lines[flag] = line;
      CLI::ConfigItem item;
      item.parents = parents;
      item.name = flag;
      if (const auto* arr = node.as_array()) {
        for (const auto& el : *arr) item.inputs.push_back(scalar_text(el));
      } else {
        item.inputs.push_back(scalar_text(node));
      }
      out.push_back(std::move(item));
    }
  }

  void add_upstream_tables(const std::string& name, const toml::node& node) const {
    std::string path;
    if (const CLI::Option* opt = app_.get_config_ptr(); opt && !opt->results().empty())
      path = opt->results().front();
    try {
      if (name == "upstreams") {
        read_upstream_tables(node, path, upstreams);
      } else {
        read_model_tables(node, path, routes);
      }
    } catch (const upstream_table_error& e) {
      fail(e.line, e.reason);
    }
  }

  [[noreturn]] void fail(int line, std::string reason) const {
    error_line = line;
    error_reason = std::move(reason);
    throw CLI::ParseError("config file, line " + std::to_string(line) + ": " + error_reason,
                          CLI::ExitCodes::ConversionError);
  }

 public:
  // Filled while parsing, for messages that name the file's line: the line of each key (by flag
  // name), and the line and reason of an error found in the file itself.
  mutable std::unordered_map<std::string, int> key_lines;
  mutable int error_line = 0;
  mutable std::string error_reason;
  // [[upstreams]] and [[models]], checked.
  mutable std::vector<upstream_config> upstreams;
  mutable std::vector<model_route> routes;

 private:
  const CLI::App& app_;
};

// "FILE:LINE: reason" for an error that came from the --config file (a syntax error, an unknown
// key, or a value CLI11 rejected for a key set there); otherwise CLI11's own message.
std::string describe_error(const CLI::App& app, const toml_config& file, const CLI::Error& e,
                           int argc, char** argv) {
  std::string path;
  if (const CLI::Option* opt = app.get_config_ptr(); opt && !opt->results().empty())
    path = opt->results().front();
  if (path.empty()) return e.what();
  if (file.error_line > 0)
    return path + ":" + std::to_string(file.error_line) + ": " + file.error_reason;
  std::string what = e.what();
  for (const auto& [flag, line] : file.key_lines) {
    std::string name = "--" + flag;
    bool on_command_line = false;
    for (int i = 1; i < argc; ++i) {
      std::string_view arg(argv[i]);
      if (arg == name || (arg.starts_with(name) && arg.size() > name.size() &&
                          arg[name.size()] == '='))
        on_command_line = true;
    }
    if (!on_command_line && what.find(name) != std::string::npos)
      return path + ":" + std::to_string(line) + ": " + what;
  }
  return what;
}

// `error`: where a reload wants the message (nothing is printed); null: print, as at start-up.
int parse(int argc, char** argv, server_config& c, std::string* error) {
  CLI::App app{
      "ringcast: a thread-per-core io_uring edge server for streaming traffic (HTTP/1.1, SSE, "
      "WebSocket).\nEvery flag may also be set in the --config file as `name_with_underscores = "
      "value`; flags win."};
  app.set_version_flag("--version", std::string("ringcast 0.1.0"));
  auto file = std::make_shared<toml_config>(app);
  app.config_formatter(file);
  app.set_config("--config", "", "TOML config file (read again on SIGHUP)");
  app.allow_config_extras(false);
  app.get_formatter()->column_width(40);

  auto* net = "Network and threads";
  app.add_option("--listen", c.listen, "Address to listen on: HOST:PORT, [IPv6]:PORT or :PORT")
      ->capture_default_str()->group(net);
  app.add_option("--shards", c.shards, "Shard threads (0: one per allowed CPU)")
      ->capture_default_str()->check(CLI::Range(0u, 1024u))->group(net);
  app.add_option("--cpus", c.cpus, "CPUs to pin shards to, in order, e.g. 2-5,8 "
                                   "(default: the CPUs this process may use)")->group(net);
  app.add_flag("!--no-pin", c.pin, "Don't pin shard threads to CPUs")->group(net);
  app.add_flag("!--no-registered-fds", c.registered_fds,
               "Don't put connections' sockets in io_uring's fixed-file table (by default each "
               "shard registers one on Linux 6.13 or newer, so receives and sends skip the kernel's "
               "fd lookup)")
      ->group(net);
  app.add_flag("--reuseport-cpu-steering", c.reuseport_cpu_steering,
               "Steer each connection to the shard on the CPU that received it "
               "(needs NIC queues aligned with shard CPUs, see tuning/)")->group(net);
  app.add_option("--listen-backlog", c.listen_backlog, "listen(2) backlog per shard")
      ->capture_default_str()->check(CLI::Range(1u, 1u << 20))->group(net);
  app.add_option("--max-connections", c.max_connections,
                 "Open connections allowed in the whole process (all shards together)")
      ->capture_default_str()->check(CLI::Range(1u, 10'000'000u))->group(net);

  app.add_option("--send-buffer-bytes", c.send_buffer_bytes,
                 "Kernel send buffer per connection (SO_SNDBUF); 0 leaves it to autotuning. A "
                 "small one bounds kernel memory per slow reader and makes backpressure visible "
                 "sooner")
      ->capture_default_str()->check(CLI::Range(0u, 1u << 30))->group(net);

  auto* tmo = "Timeouts (milliseconds)";
  app.add_option("--header-timeout-ms", c.header_timeout_ms,
                 "A request head must be complete within this (408 and close otherwise)")
      ->capture_default_str()->check(CLI::Range(1u, 3'600'000u))->group(tmo);
  app.add_option("--idle-timeout-ms", c.idle_timeout_ms, "Keep-alive idle time before close")
      ->capture_default_str()->check(CLI::Range(1u, 86'400'000u))->group(tmo);
  app.add_option("--write-timeout-ms", c.write_timeout_ms,
                 "Queued output must make progress within this, or the connection is dropped")
      ->capture_default_str()->check(CLI::Range(1u, 3'600'000u))->group(tmo);
  app.add_option("--drain-timeout-ms", c.drain_timeout_ms,
                 "On SIGTERM/SIGINT, in-flight requests and streams may finish within this "
                 "(from the signal); what is left then ends with a 'draining' error")
      ->capture_default_str()->check(CLI::Range(0u, 3'600'000u))->group(tmo);
  app.add_option("--drain-grace-ms", c.drain_grace_ms,
                 "On SIGTERM/SIGINT, keep accepting this long (with /readyz 503 and "
                 "Connection: close) so load balancers notice, then close the listeners")
      ->capture_default_str()->check(CLI::Range(0u, 3'600'000u))->group(tmo);
  app.add_option("--linger-ms", c.linger_ms,
                 "After a closing response, keep reading leftovers this long before closing")
      ->capture_default_str()->check(CLI::Range(0u, 60'000u))->group(tmo);

  auto* lim = "HTTP limits (bytes unless noted)";
  app.add_option("--request-line-bytes-max", c.request_line_bytes_max, "Request line (414 above)")
      ->capture_default_str()->check(CLI::Range(64u, 1u << 20))->group(lim);
  app.add_option("--header-bytes-max", c.header_bytes_max, "Request head (431 above)")
      ->capture_default_str()->check(CLI::Range(256u, 1u << 24))->group(lim);
  app.add_option("--headers-max", c.headers_max, "Header fields per request (431 above)")
      ->capture_default_str()->check(CLI::Range(1u, 128u))->group(lim);
  app.add_option("--body-bytes-max", c.body_bytes_max, "Request body (413 above)")
      ->capture_default_str()->check(CLI::Range(uint64_t{0}, uint64_t{1} << 32))->group(lim);
  app.add_option("--inbound-buffer-budget-bytes", c.inbound_buffer_budget_bytes,
                 "Partial client input a shard may hold in all (WebSocket messages being "
                 "reassembled, HTTP requests arriving); past it new partial data is refused "
                 "(WebSocket close 1009, HTTP 503)")
      ->capture_default_str()->check(CLI::Range(uint64_t{64} * 1024, uint64_t{1} << 40))->group(lim);
  app.add_option("--keepalive-requests-max", c.keepalive_requests_max,
                 "Requests per connection before it is closed (0: unlimited)")
      ->capture_default_str()->group(lim);
  app.add_option("--output-bytes-max", c.output_bytes_max,
                 "Queued response bytes per connection before reading pauses")
      ->capture_default_str()->check(CLI::Range(uint64_t{4096}, uint64_t{1} << 32))->group(lim);

  auto* str = "Streams (SSE and WebSocket)";
  app.add_option("--heartbeat-ms", c.heartbeat_ms,
                 "Send an SSE ': ping' comment / WebSocket ping after this much silence")
      ->capture_default_str()->check(CLI::Range(100u, 3'600'000u))->group(str);
  app.add_option("--sse-retry-ms", c.sse_retry_ms,
                 "Reconnection delay suggested to SSE clients at stream start (0: don't send)")
      ->capture_default_str()->check(CLI::Range(0u, 3'600'000u))->group(str);
  app.add_option("--ws-idle-timeout-ms", c.ws_idle_timeout_ms,
                 "Close a WebSocket that sends nothing (not even pongs) for this long")
      ->capture_default_str()->check(CLI::Range(100u, 86'400'000u))->group(str);
  app.add_option("--ws-message-bytes-max", c.ws_message_bytes_max,
                 "Largest WebSocket message accepted (close 1009 above)")
      ->capture_default_str()->check(CLI::Range(uint64_t{125}, uint64_t{1} << 30))->group(str);
  app.add_option("--ws-inflight-max", c.ws_inflight_max,
                 "Requests in progress per WebSocket before flow.pause")
      ->capture_default_str()->check(CLI::Range(1u, 65536u))->group(str);
  app.add_option("--stream-high-bytes", c.stream_high_bytes,
                 "Outbound backlog per connection at which producers pause")
      ->capture_default_str()->check(CLI::Range(uint64_t{1024}, uint64_t{1} << 32))->group(str);
  app.add_option("--stream-low-bytes", c.stream_low_bytes,
                 "Outbound backlog per connection at which producers resume")
      ->capture_default_str()->check(CLI::Range(uint64_t{0}, uint64_t{1} << 32))->group(str);
  app.add_option("--stream-max-bytes", c.stream_max_bytes,
                 "Outbound backlog per connection that makes it a slow consumer (dropped)")
      ->capture_default_str()->check(CLI::Range(uint64_t{4096}, uint64_t{1} << 34))->group(str);
  app.add_option("--slow-consumer-ms", c.slow_consumer_ms,
                 "A connection above the high watermark this long is dropped as a slow consumer")
      ->capture_default_str()->check(CLI::Range(1u, 3'600'000u))->group(str);
  app.add_flag("--echo", c.echo, "Enable GET /echo, a WebSocket echo endpoint (for tests and "
                                 "benchmarks)")->group(str);
  app.add_flag("--dashboard", c.dashboard,
               "Enable GET /dashboard (a live operations page) and GET /dashboard/ops (its SSE "
               "stream of snapshots); with keys configured, only admin keys (--admin-key, "
               "admin=yes) may open them")->group(str);
  app.add_option("--dashboard-streams-max", c.dashboard_streams_max,
                 "Open GET /dashboard/ops streams allowed in the whole process (each costs every "
                 "shard a metrics collection per interval); beyond it, 503 server_overloaded")
      ->capture_default_str()->check(CLI::Range(1u, 100'000u))->group(str);
  add_ws_deflate_options(app, c);

  auto* top = "Topics";
  app.add_option("--topic-history", c.topic_history, "Events kept per topic for resumption")
      ->capture_default_str()->check(CLI::Range(0u, 1u << 20))->group(top);
  app.add_option("--topic-history-bytes-max", c.topic_history_bytes_max,
                 "Bytes of history kept per topic")
      ->capture_default_str()->check(CLI::Range(uint64_t{0}, uint64_t{1} << 32))->group(top);
  app.add_option("--topic-name-bytes-max", c.topic_name_bytes_max, "Longest topic name")
      ->capture_default_str()->check(CLI::Range(1u, 4096u))->group(top);
  app.add_option("--topics-per-connection-max", c.topics_per_connection_max,
                 "Topics one WebSocket may subscribe to")
      ->capture_default_str()->check(CLI::Range(1u, 1u << 20))->group(top);
  app.add_option("--topics-max", c.topics_max,
                 "Topics kept per shard; the least recently used idle ones are forgotten beyond")
      ->capture_default_str()->check(CLI::Range(1u, 1u << 26))->group(top);
  app.add_option("--publish-bytes-max", c.publish_bytes_max, "Largest publication (JSON bytes)")
      ->capture_default_str()->check(CLI::Range(uint64_t{16}, uint64_t{1} << 30))->group(top);

  auto* eng = "Engines (the built-in mock)";
  app.add_option("--model", c.models,
                 "A model the built-in mock serves (repeatable); unknown models get 404 "
                 "model_not_found. With upstreams configured the mock serves only models given "
                 "explicitly")
      ->capture_default_str()->group(eng);
  app.add_option("--mock-first-token-ms", c.mock_first_token_ms,
                 "Mock engine: delay before the first token")
      ->capture_default_str()->check(CLI::Range(0u, 600'000u))->group(eng);
  app.add_option("--mock-tokens-per-s", c.mock_tokens_per_s,
                 "Mock engine: tokens per second per stream (0: as fast as the client reads)")
      ->capture_default_str()->check(CLI::Range(0.0, 1e6))->group(eng);
  app.add_option("--mock-tokens", c.mock_tokens,
                 "Mock engine: completion tokens per choice when max_tokens is absent")
      ->capture_default_str()->check(CLI::Range(1u, 1u << 20))->group(eng);
  app.add_option("--mock-max-tokens", c.mock_max_tokens,
                 "Mock engine: largest max_tokens / max_completion_tokens accepted")
      ->capture_default_str()->check(CLI::Range(uint64_t{1}, uint64_t{1} << 24))->group(eng);
  app.add_option("--mock-embedding-dim", c.mock_embedding_dim,
                 "Mock engine: the model's embedding dimensions (requests may ask for fewer)")
      ->capture_default_str()->check(CLI::Range(1u, 4096u))->group(eng);
  app.add_option("--responses-store-max", c.responses_store_max,
                 "Stored responses per shard, for previous_response_id and GET/DELETE "
                 "/v1/responses/{id} (least recently used are forgotten beyond)")
      ->capture_default_str()->check(CLI::Range(1u, 1u << 26))->group(eng);

  auto* ups = "Upstreams (more in the --config file: [[upstreams]] and [[models]])";
  app.add_option("--upstream", c.upstream.upstream_urls,
                 "Route every model the mock does not serve to this OpenAI-compatible base URL, "
                 "e.g. http://127.0.0.1:8000/v1 (an upstream named 'default' speaking chat "
                 "completions; ws:// or wss:// for Responses over WebSocket). Repeat for more "
                 "endpoints of the same upstream. /v1/models then lists the upstream's models. "
                 "Without --model, the mock serves nothing")
      ->group(ups);

  auto* adm =
      "Admission (per-key and per-address limits are exact across shards; engine and queue "
      "limits are split among shards)";
  app.add_option("--api-key", c.api_keys,
                 "An API key clients must present on /v1 and /api routes (repeatable); none: open")
      ->group(adm);
  app.add_option("--admin-key,--admin-keys", c.admin_keys,
                 "An admin key (repeatable; env RINGCAST_ADMIN_KEY, file admin_keys = [...]): an "
                 "API key without topic limits that may also open /dashboard")
      ->envname("RINGCAST_ADMIN_KEY")->group(adm);
  app.add_option("--api-keys-file", c.api_keys_file,
                 "File of API keys, one per line: <key> [name=N] [rps=R] [burst=B] [streams=S] "
                 "[subscribe=P,...] [publish=P,...] [admin=yes] (read again on SIGHUP)")
      ->group(adm);
  app.add_option("--jwt-hs256-secret-file", c.jwt_hs256_secret_file,
                 "Accept subscription tokens (JWT) signed with HS256 by this secret (the file's "
                 "bytes, at least 32, without a final newline)")
      ->group(adm);
  app.add_option("--jwt-es256-public-key-file", c.jwt_es256_public_key_file,
                 "Accept subscription tokens (JWT) signed with ES256 by the private half of this "
                 "PEM public key (EC P-256)")
      ->group(adm);
  app.add_option("--rate-limit-rps", c.rate_limit_rps,
                 "Requests per second per key (0: unlimited); per-key rps= overrides")
      ->capture_default_str()->check(CLI::Range(0.0, 1e9))->group(adm);
  app.add_option("--rate-limit-burst", c.rate_limit_burst,
                 "Burst per key (0: one second's worth); per-key burst= overrides")
      ->capture_default_str()->check(CLI::Range(0.0, 1e9))->group(adm);
  app.add_option("--key-streams-max", c.key_streams_max,
                 "Concurrent streams per key (0: unlimited); per-key streams= overrides")
      ->capture_default_str()->group(adm);
  app.add_option("--anon-rate-limit-rps", c.anon_rate_limit_rps,
                 "Without keys: requests per second per client address (IPv4 /32, IPv6 /64); "
                 "0: unlimited. This or --anon-streams-max gives each address its own budget (else "
                 "all anonymous clients share one, set by --rate-limit-*/--key-streams-max)")
      ->capture_default_str()->check(CLI::Range(0.0, 1e9))->group(adm);
  app.add_option("--anon-rate-limit-burst", c.anon_rate_limit_burst,
                 "Without keys: burst per client address (0: one second's worth)")
      ->capture_default_str()->check(CLI::Range(0.0, 1e9))->group(adm);
  app.add_option("--anon-streams-max", c.anon_streams_max,
                 "Without keys: concurrent streams per client address (0: unlimited)")
      ->capture_default_str()->group(adm);
  app.add_option("--cors-origin", c.cors_origins,
                 "An origin browsers may call from (repeatable; * for any, never with credentials)")
      ->group(adm);
  app.add_option("--request-timeout-ms", c.request_timeout_ms,
                 "Default deadline of a generation, queueing included (0: none)")
      ->capture_default_str()->group(adm);
  app.add_option("--request-timeout-max-ms", c.request_timeout_max_ms,
                 "Largest deadline a client may ask for with x-ringcast-timeout-ms")
      ->capture_default_str()->check(CLI::Range(1u, 86'400'000u))->group(adm);
  app.add_option("--engine-concurrency-max", c.engine_concurrency_max,
                 "Generations running at once")
      ->capture_default_str()->check(CLI::Range(1u, 10'000'000u))->group(adm);
  app.add_option("--engine-queue-max", c.engine_queue_max,
                 "Generations waiting for a slot; beyond, 503 at once")
      ->capture_default_str()->check(CLI::Range(0u, 10'000'000u))->group(adm);
  app.add_option("--shed-queue-delay-ms", c.shed_queue_delay_ms,
                 "Waiting work older than this is shed before it starts (0: never)")
      ->capture_default_str()->group(adm);

  auto* brk = "Broker queue (/api/v1/message)";
  app.add_option("--broker-queue-max", c.broker_queue_max, "Messages waiting; beyond, 503")
      ->capture_default_str()->check(CLI::Range(1u, 100'000'000u))->group(brk);
  app.add_option("--user-queue-max", c.user_queue_max, "Messages waiting per user; beyond, 503")
      ->capture_default_str()->check(CLI::Range(1u, 10'000'000u))->group(brk);
  app.add_option("--broker-concurrency-max", c.broker_concurrency_max,
                 "Messages processing at once (users in parallel, one message per user)")
      ->capture_default_str()->check(CLI::Range(1u, 10'000'000u))->group(brk);
  app.add_option("--broker-retention-ms", c.broker_retention_ms,
                 "How long a finished message's events stay available to late subscribers")
      ->capture_default_str()->check(CLI::Range(0u, 86'400'000u))->group(brk);
  app.add_option("--broker-log-events-max", c.broker_log_events_max,
                 "Events retained per message (the oldest progress events go first)")
      ->capture_default_str()->check(CLI::Range(16u, 100'000'000u))->group(brk);

  add_cluster_options(app, c);

  auto* buf = "Receive buffers (per shard)";
  app.add_option("--recv-buffers", c.recv_buffers, "Provided receive buffers (power of two)")
      ->capture_default_str()->check(CLI::Range(16u, 32768u))->group(buf);
  app.add_option("--recv-buffer-bytes", c.recv_buffer_bytes, "Size of one receive buffer")
      ->capture_default_str()->check(CLI::Range(1024u, 1u << 20))->group(buf);

  app.add_option("--log-level", c.log_level, "debug, info, warn or error")
      ->capture_default_str()->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--access-log", c.access_log,
                 "Write a JSON access log line per request, stream and WebSocket to this file "
                 "('-': stdout); reopened on SIGUSR1 (log rotation). Off by default");

  auto fail = [&](const std::string& what) {
    if (error) {
      *error = what;
    } else {
      std::cerr << what << "\n";
    }
    return 2;
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0 && !error) return app.exit(e);  // --help, --version
    std::string what = describe_error(app, *file, e, argc, argv);
    if (error) {
      *error = what;
      return e.get_exit_code() == 0 ? 2 : e.get_exit_code();
    }
    std::cerr << what << "\nRun with --help for more information.\n";
    return e.get_exit_code();
  }

  c.upstream.upstreams = std::move(file->upstreams);
  c.upstream.routes = std::move(file->routes);
  c.upstream.models_explicit = app.get_option("--model")->count() > 0;

  if (c.stream_low_bytes >= c.stream_high_bytes || c.stream_high_bytes > c.stream_max_bytes) {
    return fail("stream watermarks must satisfy --stream-low-bytes < --stream-high-bytes <= "
                "--stream-max-bytes");
  }
  if (c.models.empty()) {
    return fail("--model: at least one model must be served");
  }
  if (std::string err = finish_cluster_options(app, c); !err.empty()) return fail(err);
  if ((c.recv_buffers & (c.recv_buffers - 1)) != 0) {
    return fail("--recv-buffers must be a power of two (got " + std::to_string(c.recv_buffers) +
                ")");
  }
  std::vector<int> cpus;
  if (!c.cpus.empty()) {
    auto parsed = cpu::parse_list(c.cpus);
    if (!parsed) {
      return fail("--cpus: cannot parse '" + c.cpus + "' (expected a list such as 0-3,6)");
    }
    cpus = *parsed;
  } else {
    cpus = cpu::allowed();
    if (cpus.empty()) cpus.push_back(0);
  }
  if (c.shards == 0) c.shards = static_cast<unsigned>(cpus.size());
  // More shards than CPUs: shards share CPUs round-robin (useful for tests, not for speed).
  c.shard_cpus.clear();
  for (unsigned i = 0; i < c.shards; ++i) c.shard_cpus.push_back(cpus[i % cpus.size()]);
  return -1;
}

}  // namespace

int parse_command_line(int argc, char** argv, server_config& out) {
  return parse(argc, argv, out, nullptr);
}

std::string reparse_command_line(int argc, char** argv, server_config& out) {
  std::string error;
  if (parse(argc, argv, out, &error) >= 0 && error.empty())
    error = "unexpected --help or --version";
  return error;
}

}  // namespace rc::server
