// server_config: every setting of the server, from flags and an optional TOML file.
//
// Flags and file keys are one namespace: `--header-timeout-ms 5000` on the command line and
// `header_timeout_ms = 5000` in the file set the same field (flags win). The file is parsed by
// toml++ and handed to CLI11 as its config parser, so an unknown key, a type mismatch or a syntax
// error is reported with the file's line number. `ringcast --help` documents every setting.
//
// Limits carry their unit in the name. Timeouts are milliseconds; sizes are bytes.
//
// Thread-safety: built by main before the shards start (and again on SIGHUP, see rules.h);
// read-only once published.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/upstreams.h"

namespace rc::server {

// The retention of one topic class (--topic-retention; see cluster_config.h). Negative: no limit.
struct topic_retention {
  std::string pattern;               // topic pattern (proto/topic_pattern.h); empty: the default class
  int64_t max_age_ms = 24 * 3600 * 1000LL;  // 0: no age limit
  int64_t max_msgs = -1;
  int64_t max_bytes = -1;
  int64_t max_msgs_per_subject = -1;
  bool operator==(const topic_retention&) const = default;
};

struct server_config {
  // Network and threads.
  std::string listen = "127.0.0.1:8080";
  unsigned shards = 0;        // 0: one per CPU the process may run on
  std::string cpus;           // CPU list to pin shards to, e.g. "2-5"; empty: the allowed CPUs
  bool pin = true;            // pin each shard thread to its CPU
  bool registered_fds = true; // sockets also in the ring's fixed-file table (stream_socket.h)
  bool reuseport_cpu_steering = false;
  uint32_t listen_backlog = 4096;
  uint32_t max_connections = 100000;  // for the whole process, however shards share them
  uint32_t send_buffer_bytes = 0;     // SO_SNDBUF per connection; 0: the kernel's autotuning

  // Timeouts.
  uint32_t header_timeout_ms = 10000;  // a request head must arrive within this (408 otherwise)
  uint32_t idle_timeout_ms = 60000;    // a keep-alive connection may idle this long
  uint32_t write_timeout_ms = 30000;   // queued output must make progress within this
  uint32_t drain_timeout_ms = 30000;   // SIGTERM: in-flight work may finish within this
  uint32_t drain_grace_ms = 5000;      // SIGTERM: keep accepting (readyz 503) this long
  uint32_t linger_ms = 2000;           // after a closing response, read leftovers this long

  // HTTP limits.
  uint32_t request_line_bytes_max = 8 * 1024;   // 414 above
  uint32_t header_bytes_max = 16 * 1024;        // 431 above
  uint32_t headers_max = 100;                   // 431 above
  uint64_t body_bytes_max = 1024 * 1024;        // 413 above
  uint32_t keepalive_requests_max = 0;          // requests per connection; 0: unlimited
  uint64_t output_bytes_max = 4 * 1024 * 1024;  // queued response bytes before reading pauses
  // Partial client input (WebSocket messages, HTTP requests) all connections of a shard may hold.
  uint64_t inbound_buffer_budget_bytes = 256ull * 1024 * 1024;

  // Streams (SSE and WebSocket).
  uint32_t heartbeat_ms = 15000;            // SSE ": ping" / WebSocket ping after this silence
  uint32_t sse_retry_ms = 0;                // SSE "retry:" sent at stream start; 0: none
  uint32_t ws_idle_timeout_ms = 60000;      // a WebSocket that sends nothing (not even pongs)
  uint64_t ws_message_bytes_max = 1024 * 1024;  // 1009 above
  uint32_t ws_inflight_max = 64;            // concurrent requests per WebSocket (flow.pause)
  uint64_t stream_high_bytes = 256 * 1024;  // outbound backlog that pauses producers
  uint64_t stream_low_bytes = 64 * 1024;    // ... and resumes them
  uint64_t stream_max_bytes = 4 * 1024 * 1024;  // backlog that makes a slow consumer
  uint32_t slow_consumer_ms = 5000;         // above high for this long: slow consumer
  bool echo = false;                        // GET /echo: WebSocket echo endpoint
  // permessage-deflate (RFC 7692; ws_compression.h): off unless ws_deflate.
  bool ws_deflate = false;
  uint32_t ws_deflate_min_bytes = 128;     // smaller messages are sent uncompressed
  uint32_t ws_deflate_window_bits = 12;    // the server's compression window (9-15)
  uint32_t ws_deflate_mem_level = 5;       // zlib memLevel of per-connection contexts (1-9)
  uint32_t ws_deflate_contexts_max = 1024;  // per shard; beyond: server_no_context_takeover
  bool dashboard = false;                   // GET /dashboard and /dashboard/ops (ops_dashboard.h)
  uint32_t dashboard_streams_max = 64;      // open /dashboard/ops streams, whole process

  // Topics.
  uint32_t topic_history = 1024;                    // events kept per topic for resume
  uint64_t topic_history_bytes_max = 4 * 1024 * 1024;  // and their bytes
  uint32_t topic_name_bytes_max = 128;
  uint32_t topics_per_connection_max = 64;
  uint32_t topics_max = 100000;                     // topics homed per shard (LRU beyond)
  uint64_t publish_bytes_max = 256 * 1024;          // one publication's JSON

  // Engines: the built-in mock (the default engine).
  std::vector<std::string> models = {"ringcast-mock"};  // models served (GET /v1/models)
  uint32_t mock_first_token_ms = 0;     // delay before the first token
  double mock_tokens_per_s = 0;         // per stream; 0: as fast as the client reads
  uint32_t mock_tokens = 16;            // completion length without max_tokens
  uint64_t mock_max_tokens = 4096;      // largest max_tokens accepted
  uint32_t mock_embedding_dim = 256;    // the model's embedding length (dimensions <= this)

  // Upstreams: --upstream, [[upstreams]] and [[models]] (checked; routing_table built by
  // make_rules).
  upstream_settings upstream;

  // Admission.
  std::vector<std::string> api_keys;     // --api-key, repeatable
  std::vector<std::string> admin_keys;   // --admin-key, repeatable: API keys that may also see
                                         // the dashboard (RINGCAST_ADMIN_KEY, TOML admin_keys)
  std::string api_keys_file;             // one key per line, with optional limits
  std::string jwt_hs256_secret_file;     // subscription tokens signed with HS256: the secret
  std::string jwt_es256_public_key_file;  // ... with ES256: the PEM public key (P-256)
  double rate_limit_rps = 0;             // per key; 0: unlimited
  double rate_limit_burst = 0;           // per key; 0: one second's worth
  uint32_t key_streams_max = 0;          // concurrent streams per key; 0: unlimited
  // Anonymous clients (no key): a budget per client address (IPv4 /32, IPv6 /64) when the rps
  // or the streams cap is set; otherwise they share one budget set by the per-key defaults.
  double anon_rate_limit_rps = 0;        // per address; 0: unlimited
  double anon_rate_limit_burst = 0;      // per address; 0: one second's worth
  uint32_t anon_streams_max = 0;         // concurrent streams per address; 0: unlimited
  std::vector<std::string> cors_origins; // --cors-origin, repeatable; "*" for any
  uint32_t request_timeout_ms = 0;       // default deadline of a generation; 0: none
  uint32_t request_timeout_max_ms = 600000;  // x-ringcast-timeout-ms is capped to this
  uint32_t engine_concurrency_max = 4096;    // generations at once, whole process
  uint32_t engine_queue_max = 4096;          // generations waiting, whole process
  uint32_t shed_queue_delay_ms = 30000;      // waited longer: shed (0: never)

  // Broker queue.
  uint32_t broker_queue_max = 100000;        // messages waiting, whole process
  uint32_t user_queue_max = 64;              // messages waiting per user
  uint32_t broker_concurrency_max = 1024;    // messages processing at once, whole process
  uint32_t broker_retention_ms = 300000;     // a finished message's log is kept this long
  uint32_t broker_log_events_max = 100000;   // events retained per message

  // Responses.
  uint32_t responses_store_max = 10000;  // stored responses per shard (LRU beyond)

  // Cluster (docs/cluster.md): without nats_urls the server is single-node.
  std::vector<std::string> nats_urls;    // --nats, comma-separated or repeated
  std::string nats_token;                // --nats-token / RINGCAST_NATS_TOKEN
  std::string nats_user;                 // --nats-user / RINGCAST_NATS_USER
  std::string nats_password;             // --nats-password / RINGCAST_NATS_PASSWORD
  std::string nats_credentials_file;     // --nats-credentials-file: "user:password" or a token
  std::string node_id;                   // empty: <hostname>-<port> (process_state::node_id)
  uint32_t nats_replicas = 1;            // replicas of every stream and bucket
  std::vector<std::string> topic_retention_specs;  // --topic-retention, as given
  std::vector<topic_retention> topic_retentions;   // ... parsed, in order (class i = entry i-1)
  uint32_t broker_partitions = 32;       // users are split into this many partitions
  uint32_t broker_lease_ms = 5000;       // a partition owner's lease
  uint32_t responses_ttl_s = 3600;       // stored responses kept in the rc_responses bucket

  // Receive buffers (per shard, shared by all its connections).
  uint32_t recv_buffers = 2048;
  uint32_t recv_buffer_bytes = 4096;

  std::string log_level = "info";
  std::string access_log;  // JSON access log path ("-": stdout); empty: off

  // Resolved by parse_command_line.
  std::vector<int> shard_cpus;  // CPU of each shard (also when not pinning, for reporting)
};

// Parses flags (and the --config file). Returns -1 when the server should start, otherwise the
// process exit code (0 after --help/--version, 2 after a usage error, already reported).
int parse_command_line(int argc, char** argv, server_config& out);

// The same parse for a reload (SIGHUP): nothing is printed. Returns an error message ("FILE:LINE:
// reason" when it comes from the --config file) or empty.
std::string reparse_command_line(int argc, char** argv, server_config& out);

}  // namespace rc::server
