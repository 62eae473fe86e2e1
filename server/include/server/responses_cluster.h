// responses_cluster: stored responses found from any node (cluster mode, --nats).
//
// Every response a shard stores (responses_store.h) is also written to the JetStream key-value
// bucket rc_responses (key = the response id, value = its responses_record.h bytes, history 1,
// entries expire after --responses-ttl-s). The write is asynchronous: the response is answered
// without waiting for it; a failed write is counted (ringcast_responses_kv_writes_total
// {result="error"}) and logged, at most once per 10 s per shard.
//
// A request naming a response its home shard does not have (previous_response_id on POST
// /v1/responses and in the Responses WebSocket mode, GET /v1/responses/{id}, its input_items,
// DELETE) reads it through from the bucket and keeps the copy in the local store; from then on
// it is local. When the id is not local and the bucket cannot be asked (NATS disconnected,
// streams not ready, a timeout), the request fails with 503 nats_unavailable and Retry-After;
// local responses keep working. DELETE deletes the bucket's entry first (503 if it cannot), then
// the local copy, and tells the other nodes (plain publish on rc.responses.deleted) to forget
// theirs. A follow-up racing another on the same id gets 409 busy only on the same node: the
// busy mark is per node.
//
// Without --nats every function here is a no-op or answers from the local store alone. The bucket
// itself is created by the cluster with the other streams (cluster_streams.cc).
//
// Thread-safety: everything runs on the shard that owns the store it touches (the home shard of
// the id); callbacks come back on it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/byte_buffer.h"
#include "core/unique_function.h"
#include "proto/openai_errors.h"
#include "proto/openai_responses.h"
#include "server/engine.h"

namespace rc::server {

class shard_server;
struct shard_metrics;

// Plain NATS subject announcing a deleted response id (payload: the id).
inline constexpr std::string_view responses_deleted_subject = "rc.responses.deleted";
// Writes waiting for the bucket's answer, per shard; past it a write is dropped (and counted).
inline constexpr uint32_t responses_kv_writes_in_flight_max = 4096;

// Per-shard counters (in shard_metrics), rendered with --nats only (like cluster_metrics.h) as
//   ringcast_responses_kv_lookups_total{shard,result="hit|miss|error"}  read-throughs
//   ringcast_responses_kv_writes_total{shard,result="ok|error|too_large"}
//   ringcast_responses_kv_deletes_total{shard,result="ok|error"}
struct responses_kv_stats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t lookup_errors = 0;
  uint64_t writes = 0;
  uint64_t write_errors = 0;
  uint64_t writes_too_large = 0;
  uint64_t deletes = 0;
  uint64_t delete_errors = 0;

  void merge(const responses_kv_stats& o);
};
void render_responses_kv_metrics(const std::vector<shard_metrics>& shards, byte_buffer& out);

// The home shard of a response id minted by any node: the shard encoded in it, modulo this
// node's shard count (nodes may run different --shards), or -1 if `id` is not one of ours.
int response_home(std::string_view id, unsigned shard_count);

// Writes response `id` to the bucket (cluster mode; nothing otherwise). Never blocks.
void responses_write_through(shard_server& s, const std::string& id,
                             const std::vector<turn>& conversation,
                             const openai::response_object& response,
                             const std::vector<openai::input_item>& input);

enum class kv_lookup : uint8_t { found, not_found, unavailable };
// On the home shard of `id`: `done(found)` when the local store has `id`, at once; else, in
// cluster mode, reads it from the bucket, stores it locally and answers found / not_found /
// unavailable (the bucket could not be asked) later; without a cluster, not_found at once.
void responses_localize(shard_server& s, const std::string& id,
                        unique_function<void(kv_lookup)> done);

// From any shard: takes the conversation of response `id` (previous_response_id) on its home
// shard — read through from the bucket first if this node does not have it — marking it busy
// there, and calls `done` back on this shard. REQUIRES: response_home(id) >= 0. A taken response
// is given back with release_previous (from any shard) when the follow-up ends.
enum class previous_status : uint8_t { ok, not_found, busy, unavailable };
struct previous_taken {
  previous_status status = previous_status::not_found;
  std::vector<turn> history;    // ok: the conversation up to and including its output
  uint64_t retry_after_ms = 0;  // unavailable
};
void take_previous(shard_server& s, const std::string& id,
                   unique_function<void(previous_taken&&)> done);
void release_previous(shard_server& s, const std::string& id);

// On the home shard of `id`, which the local store has (REQUIRES): deletes it from the bucket,
// then locally, and announces it; `done(true)`. `done(false)` when the bucket could not be asked
// (nothing deleted). Without a cluster: deletes locally, done(true) at once.
void responses_delete(shard_server& s, const std::string& id, unique_function<void(bool)> done);

// 503, type server_error, code nats_unavailable.
openai::api_error responses_nats_unavailable();
// Retry-After for that 503 (the cluster's reconnect estimate; 1000 without a cluster).
uint64_t responses_retry_after_ms(shard_server& s);

}  // namespace rc::server
