// responses_ws_engine: the `responses-ws` upstream engine — the Responses API spoken over a
// WebSocket (`{"type":"response.create",…}` in, Responses events out), optionally stateful.
//
// Every request runs on an upstream socket: a fresh one (stateless mode, and the first response
// of a stateful conversation) or, with `stateful`, the socket retained after the previous response
// of the conversation. Events are bridged to every front by responses_ws_events.h (raw for the
// Responses HTTP fronts that pass through, typed otherwise, backfill of a thin completed).
//
// Stateful mode (see session_store.h). A response of the Responses API is retained under the id
// the front gave it (original.response_id, minted on this shard); a follow-up naming it as
// previous_response_id is continued on the shard that holds the socket:
//   * on this shard, the session is taken from the store and the request sent on it with the
//     upstream's own id of the previous response;
//   * on another shard, the request travels there by message and runs there on that shard's
//     engine of the same upstream; its events come back by message (remote_stream below), with a
//     window of unacknowledged events so a slow client holds back the upstream socket.
// Answers before anything is produced (lazy start): an unknown, evicted, expired or failed id →
// 400 previous_response_not_found (param previous_response_id); a busy one → 409
// previous_response_in_progress; no room for a new session → 503 + Retry-After. A failure of any
// kind (upstream error event, bad frames, a malformed event, the socket closing, a cancel before
// the end) drops the session. Chat requests on a stateful upstream run stateless.
//
// Thread-safety: one engine per upstream per shard, created and used on that shard; engines of
// the same upstream on different shards find each other by name through a per-shard registry.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "proto/tls.h"
#include "proto/url.h"
#include "server/engine.h"
#include "server/upstreams.h"

namespace rc::server {

class shard_server;

struct responses_ws_options {
  std::string name = "responses-ws";  // the upstream's name (registry key, logs)
  url::endpoint endpoint;             // ws:// or wss://
  std::string path = "/v1/responses";
  std::string api_key;  // sent as Bearer; empty: no Authorization
  std::vector<std::pair<std::string, std::string>> headers;  // sent on the upgrade request
  tls::client_options tls;
  std::vector<std::string> models;  // what models() answers
  // The upstream's name for a client's model name, and the completion limit (the config's
  // routing table). Unset: the client's name, completion_tokens_max.
  std::function<std::string(std::string_view model)> upstream_model;
  std::function<std::optional<uint64_t>(std::string_view model)> max_output_tokens;
  bool stateful = false;
  uint32_t max_retained_sessions = 64;  // per shard
  uint64_t session_idle_ms = 300000;
  uint32_t connect_timeout_ms = 10000;      // connect and upgrade
  uint64_t first_event_timeout_ms = 60000;  // request sent → first event (0: none)
  uint64_t idle_timeout_ms = 60000;         // between two events (0: none)
  uint32_t retry_after_ms = 1000;           // told to clients when no session is free
  uint32_t connections_max = 1024;          // upstream sockets open at once, per shard
  uint64_t completion_tokens_max = 128000;
};

std::unique_ptr<engine> make_responses_ws_engine(shard_server& shard, responses_ws_options options);

// The factory of the upstream kind "responses-ws" (upstream_kinds.h): options from the
// upstream's config, models mapped through the shard's routing table.
std::shared_ptr<engine> make_responses_ws_upstream(shard_server& shard,
                                                   std::shared_ptr<const upstream_config> cfg);

}  // namespace rc::server
