// Upstreams and model routes: what the [[upstreams]] and [[models]] tables of the --config file
// and the --upstream flag say, checked and resolved.
//
//   upstream_config  one upstream: its kind (the engine that talks to it, see upstream_kinds.h),
//                    its endpoints, its key (resolved from api_key_env when the file is read;
//                    never logged, never sent to clients), TLS, timeouts, retries, breaker, pool
//                    and session settings. Engines receive it as shared_ptr<const>.
//   model_route      a model name clients ask for → an upstream and the name the upstream knows
//                    it by. The name "*" routes every model nothing else serves (--upstream).
//   routing_table    the whole set, as the reload snapshot (rules.h) holds it. Built once per
//                    start-up or SIGHUP; immutable afterwards.
//
// The file's keys, defaults and errors are documented in docs/operations.md ("Upstreams and
// models"). A bad table stops start-up (or a reload) with "FILE:LINE: reason".
//
// Thread-safety: plain values; a published routing_table is read-only and shared by every shard.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "proto/url.h"

namespace rc::server {

// Which OpenAI API an upstream speaks; ringcast translates the other one.
enum class upstream_api : uint8_t { chat, responses, both };

std::string_view to_string(upstream_api a);

struct upstream_config {
  std::string name;
  std::string kind;  // "openai", "responses-ws", ... (a registered kind, upstream_kinds.h)
  std::vector<url::endpoint> endpoints;  // http(s) or ws(s) as the kind wants; at least one,
                                         // none for kinds without endpoints (jsonrpc)
  std::string api_key_env;  // the variable the key came from ("" none)
  std::string api_key;      // its value, sent as "Authorization: Bearer"; never log it
  upstream_api api = upstream_api::chat;
  // TLS (https://, wss://): the system CA store unless ca_file; tls_verify = false only when set.
  std::string ca_file;
  // The file as loaded (size, mtime): a rotated CA under the same path is a changed setting.
  uint64_t ca_file_size = 0;
  int64_t ca_file_mtime_ns = 0;
  bool tls_verify = true;
  // Timeouts. first_byte: request sent → first response byte; idle: between two reads of a
  // response; total: the whole exchange (0: none; the client's deadline still applies).
  uint32_t connect_timeout_ms = 5000;
  uint32_t first_byte_timeout_ms = 60000;
  uint32_t idle_timeout_ms = 60000;
  uint32_t total_timeout_ms = 0;
  // Retries before the first byte reached the client (jittered exponential backoff from base
  // to cap; an upstream's Retry-After honoured up to retry_after_cap_ms).
  uint32_t retries_max = 2;
  uint32_t backoff_base_ms = 100;
  uint32_t backoff_cap_ms = 2000;
  uint32_t retry_after_cap_ms = 5000;
  // Circuit breaker per endpoint: opens after this many consecutive failures, probes again
  // after the cool-down.
  uint32_t breaker_failures = 5;
  uint32_t breaker_cooldown_ms = 10000;
  // Connection pool, per endpoint and per shard.
  uint32_t pool_idle_max = 64;       // idle keep-alive connections kept
  uint32_t connections_max = 1024;   // connections open at once (0: unlimited)
  // responses-ws: retained upstream sessions (per shard), for previous_response_id.
  bool stateful = false;
  uint32_t max_retained_sessions = 1000;
  uint32_t session_idle_ms = 300000;
  // Sent with every request (after ringcast's own fields; names lowercase).
  std::vector<std::pair<std::string, std::string>> headers;
  // kind = "jsonrpc": local worker processes (docs/workers.md).
  std::string protocol;                     // "ringcast" | "codex-app-server"
  std::vector<std::string> command;         // argv (command[0] found in PATH)
  std::vector<std::pair<std::string, std::string>> env;  // added to ringcast's environment
  std::string cwd;                          // "" ringcast's working directory
  std::string framing = "lines";            // "lines" | "content-length" (ringcast dialect)
  uint32_t workers = 1;                     // 1..256
  uint32_t max_concurrency_per_worker = 8;  // 1..10000
  uint32_t queue_max = 256;                 // requests waiting for a free worker slot, per shard
  uint32_t init_timeout_ms = 10000;
  uint32_t ping_interval_ms = 5000;         // 0: no pings
  uint32_t ping_timeout_ms = 5000;
  uint32_t max_line_bytes = 4194304;        // one message from a worker
  uint32_t stop_grace_ms = 3000;            // SIGTERM → SIGKILL
  uint32_t restart_backoff_base_ms = 200, restart_backoff_cap_ms = 10000;
  uint32_t crash_loop_restarts = 5;         // abnormal exits within crash_loop_window_ms that
  uint32_t crash_loop_window_ms = 60000;    // mark the upstream unavailable (until a backoff cap)
  uint32_t stderr_lines_per_s = 50;         // worker stderr lines logged per second per worker
  std::string thread_params;                // codex-app-server: JSON object merged into
                                            // thread/start params (TOML table → JSON text)
  bool retain_threads = false;              // codex-app-server: a thread per conversation

  // Where it was defined: "FILE:LINE" or "--upstream". Not part of the settings.
  std::string origin;

  // Same settings (origin aside): a reload keeps the engine (and its pools) of an upstream whose
  // settings did not change.
  bool same_settings(const upstream_config& o) const;
};

struct model_route {
  std::string name;            // what clients ask for; "*": any model nothing else serves
  std::string upstream;        // an upstream_config::name
  std::string upstream_model;  // the upstream's name for it ("" for "*": the client's name)
  std::optional<uint64_t> max_output_tokens;  // completion tokens allowed per choice
  std::string origin;          // "FILE:LINE" or "--upstream"
};

// What a model name resolves to (routing_table::find).
struct model_target {
  const upstream_config* upstream = nullptr;
  std::string_view upstream_model;  // the name to send upstream
  std::optional<uint64_t> max_output_tokens;
};

struct routing_table {
  std::vector<std::shared_ptr<const upstream_config>> upstreams;  // in file order
  std::vector<model_route> routes;  // explicit routes ("*" not included), in file order
  std::string fallback;             // the upstream of "*" ("" none)
  // Whether the built-in mock serves its --model list: when no upstream is configured, or when
  // --model was given explicitly (flag or file).
  bool mock_serves = true;
  // routes by name.
  struct name_hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, size_t, name_hash, std::equal_to<>> index;

  bool empty() const { return upstreams.empty(); }
  const upstream_config* upstream(std::string_view name) const;
  // The upstream and upstream model for `model`: an explicit route, else the fallback. Models the
  // mock serves are not in the table (the shard checks them first).
  std::optional<model_target> find(std::string_view model) const;
};

// Settings parsed from the file (config.cc) and the flags, before they become a routing_table.
struct upstream_settings {
  std::vector<upstream_config> upstreams;  // [[upstreams]]
  std::vector<model_route> routes;         // [[models]], "*" included
  std::vector<std::string> upstream_urls;  // --upstream (repeatable: endpoints of "default")
  bool models_explicit = false;            // --model given (flag or file)
};

// Checks what only the whole picture shows (--upstream against the file, a model the mock also
// serves, kinds without an engine in this build) and builds the table. Returns nullptr with
// `error` set ("FILE:LINE: reason" or "--upstream: reason").
// Logs the upstreams (name, kind, API, endpoints; never the key) and routes at info level, and
// a warning for each upstream with tls_verify = false. `prefix`: "" or "SIGHUP: ".
void log_routing(const routing_table& t, const char* prefix);

std::shared_ptr<const routing_table> make_routing_table(const upstream_settings& s,
                                                        const std::vector<std::string>& mock_models,
                                                        std::string& error);

}  // namespace rc::server
