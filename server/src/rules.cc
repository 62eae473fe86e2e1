#include "server/rules.h"

#include <sstream>

#include "core/log.h"
#include "server/authentication.h"

namespace rc::server {
namespace {

// Settings read once at start-up: the listeners, the shard threads and their rings, the engines
// and per-shard stores built from them. docs/operations.md lists them; keep the two in step.
// clang-format off
#define RC_RESTART_ONLY_SETTINGS(X)                                            \
  X(listen, "--listen")                                                        \
  X(shards, "--shards")                                                        \
  X(cpus, "--cpus")                                                            \
  X(pin, "--no-pin")                                                           \
  X(reuseport_cpu_steering, "--reuseport-cpu-steering")                        \
  X(listen_backlog, "--listen-backlog")                                        \
  X(recv_buffers, "--recv-buffers")                                            \
  X(recv_buffer_bytes, "--recv-buffer-bytes")                                  \
  X(models, "--model")                                                         \
  X(mock_first_token_ms, "--mock-first-token-ms")                              \
  X(mock_tokens_per_s, "--mock-tokens-per-s")                                  \
  X(mock_tokens, "--mock-tokens")                                              \
  X(mock_max_tokens, "--mock-max-tokens")                                      \
  X(mock_embedding_dim, "--mock-embedding-dim")                                \
  X(responses_store_max, "--responses-store-max")                              \
  X(access_log, "--access-log")                                                \
  X(nats_urls, "--nats")                                                       \
  X(node_id, "--node-id")                                                      \
  X(nats_replicas, "--nats-replicas")                                          \
  X(topic_retention_specs, "--topic-retention")                                \
  X(broker_partitions, "--broker-partitions")                                  \
  X(broker_lease_ms, "--broker-lease-ms")                                      \
  X(responses_ttl_s, "--responses-ttl-s")
// clang-format on

std::string text_of(const std::string& v) {
  return "'" + v + "'";
}
std::string text_of(bool v) {
  return v ? "true" : "false";
}
std::string text_of(const std::vector<std::string>& v) {
  std::string out = "[";
  for (const auto& s : v) out += (out.size() > 1 ? ", " : "") + text_of(s);
  return out + "]";
}
template <typename T>
std::string text_of(T v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// Puts the running value of every restart-only setting back into `next`, noting those that the
// files changed.
void keep_restart_only(const server_config& running, server_config& next,
                       std::vector<std::string>& notes) {
#define RC_KEEP(name, flag)                                                             \
  if (next.name != running.name) {                                                      \
    notes.push_back(std::string(flag) + " changed from " + text_of(running.name) + " to " + \
                    text_of(next.name) + ": needs a restart (keeping " +                \
                    text_of(running.name) + ")");                                       \
    next.name = running.name;                                                           \
  }
  RC_RESTART_ONLY_SETTINGS(RC_KEEP)
#undef RC_KEEP
  // Whether --model was explicit decides whether the mock serves beside upstreams: part of the
  // restart-only mock settings.
  next.upstream.models_explicit = running.upstream.models_explicit;
  next.shard_cpus = running.shard_cpus;
  next.topic_retentions = running.topic_retentions;  // parsed from topic_retention_specs
  // NATS credentials are read at start-up only, like the rest of the cluster settings; the note
  // never shows them.
  if (next.nats_token != running.nats_token || next.nats_user != running.nats_user ||
      next.nats_password != running.nats_password ||
      next.nats_credentials_file != running.nats_credentials_file) {
    notes.push_back("NATS credentials changed: need a restart (keeping the running ones)");
    next.nats_token = running.nats_token;
    next.nats_user = running.nats_user;
    next.nats_password = running.nats_password;
    next.nats_credentials_file = running.nats_credentials_file;
  }
}

}  // namespace

std::shared_ptr<const shared_rules> make_rules(server_config cfg, const shared_rules* previous,
                                               std::vector<std::string>& restart_notes,
                                               std::string& error) {
  auto rules = std::make_shared<shared_rules>();
  if (previous) keep_restart_only(previous->config, cfg, restart_notes);
  for (const std::string& key : cfg.api_keys) {
    if (error = rules->keys.add(key); !error.empty()) return nullptr;
  }
  for (const std::string& key : cfg.admin_keys) {
    if (error = rules->keys.add(key, true); !error.empty()) return nullptr;
  }
  if (!cfg.api_keys_file.empty()) {
    if (error = rules->keys.load_file(cfg.api_keys_file); !error.empty()) return nullptr;
  }
  if (previous) rules->keys.carry_indexes(previous->keys);
  if (error = load_token_keys(cfg, rules->tokens); !error.empty()) return nullptr;
  rules->cors = cors_policy(cfg.cors_origins);
  rules->routing = make_routing_table(cfg.upstream, cfg.models, error);
  if (!rules->routing) return nullptr;
  rules->config = std::move(cfg);
  return rules;
}

std::shared_ptr<const shared_rules> reload_rules(int argc, char** argv,
                                                 const shared_rules& running) {
  const server_config& now = running.config;
  bool has_config = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg(argv[i]);
    if (arg == "--config" || arg.starts_with("--config=")) has_config = true;
  }
  std::string files;  // the key files named on the command line
  for (const std::string* f :
       {&now.api_keys_file, &now.jwt_hs256_secret_file, &now.jwt_es256_public_key_file}) {
    if (!f->empty()) files += (files.empty() ? "" : ", ") + *f;
  }
  if (!has_config && files.empty()) {
    RC_INFO("SIGHUP: nothing to reload (no --config file, no keys or token key file); the "
            "running configuration stays");
    return nullptr;
  }
  if (!has_config) RC_INFO("SIGHUP: no --config file; re-reading %s", files.c_str());
  server_config next;
  if (std::string err = reparse_command_line(argc, argv, next); !err.empty()) {
    RC_ERROR("SIGHUP: %s; keeping the running configuration", err.c_str());
    return nullptr;
  }
  std::vector<std::string> notes;
  std::string err;
  auto rules = make_rules(std::move(next), &running, notes, err);
  if (!rules) {
    RC_ERROR("SIGHUP: %s; keeping the running configuration", err.c_str());
    return nullptr;
  }
  for (const std::string& note : notes) RC_WARN("SIGHUP: %s", note.c_str());
  log_routing(*rules->routing, "SIGHUP: ");
  RC_INFO("SIGHUP: configuration reloaded (%zu API key%s, %zu upstream%s, %zu model route%s%s)",
          rules->keys.size(), rules->keys.size() == 1 ? "" : "s", rules->routing->upstreams.size(),
          rules->routing->upstreams.size() == 1 ? "" : "s", rules->routing->routes.size(),
          rules->routing->routes.size() == 1 ? "" : "s",
          rules->keys.empty() ? "; /v1 and /api routes are open to anyone who can connect" : "");
  return rules;
}

}  // namespace rc::server
