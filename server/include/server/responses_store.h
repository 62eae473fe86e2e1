// responses_store: the responses a shard minted, kept so that a later request can continue the
// conversation with previous_response_id (POST /v1/responses, Responses WebSocket mode).
//
// A response lives on its home shard, the one that minted its id ("resp_<shard>_<hex>"), so a
// follow-up is routed there without a lookup. A follow-up takes the stored conversation and marks
// the response busy until the follow-up's own generation ends: a second follow-up racing on the
// same id gets 409 meanwhile. The store is bounded; the least recently used responses are
// forgotten first (a follow-up to one of those gets previous_response_not_found).
//
// In cluster mode every stored response is also in the nodes' shared bucket, and a response
// another node stored is read through into this store on first use (responses_cluster.h).
//
// Each entry also keeps the finished `response` object and the request's input items (with ids),
// for GET /v1/responses/{id}, its input_items, and DELETE (responses_routes.cc). Responses created
// with store: false are never put here.
//
// Thread-safety: one store per shard, touched only by its shard.
#pragma once

#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "proto/openai_responses.h"
#include "server/engine.h"

namespace rc::server {

class responses_store {
 public:
  explicit responses_store(size_t max_entries) : max_(max_entries) {}

  // Stores the full conversation up to and including response `id`'s output, the response object
  // itself and its request's input items.
  void put(const std::string& id, std::vector<turn> conversation, openai::response_object response,
           std::vector<openai::input_item> input);

  // The stored response and its input items, or null. Counts as a use (LRU).
  struct stored {
    const openai::response_object& response;
    const std::vector<openai::input_item>& input;
  };
  std::optional<stored> find(const std::string& id);
  // Forgets `id`; false if it was not stored. A follow-up holding it keeps its copy.
  bool erase(const std::string& id);

  enum class take_status { ok, not_found, busy };
  // Copies `id`'s conversation into `out` and marks it busy.
  take_status acquire(const std::string& id, std::vector<turn>& out);
  // Ends the busy mark of `id` (nothing if it was forgotten meanwhile).
  void release(const std::string& id);

  size_t size() const { return entries_.size(); }
  bool contains(const std::string& id) const { return entries_.count(id) != 0; }

  // This shard's side of the cluster bucket (responses_cluster.cc).
  struct cluster_side {
    bool listening = false;         // subscribed to deletions announced by other nodes
    uint32_t writes_in_flight = 0;  // bucket writes not answered yet
    uint64_t last_warning_ms = 0;   // when a bucket failure was last logged
  };
  cluster_side& cluster() { return cluster_; }

 private:
  struct entry {
    std::vector<turn> conversation;
    openai::response_object response;
    std::vector<openai::input_item> input;
    bool busy = false;
    std::list<std::string>::iterator lru;
  };
  void touch(entry& e);

  size_t max_;
  std::unordered_map<std::string, entry> entries_;
  std::list<std::string> lru_;  // most recently used first
  cluster_side cluster_;
};

}  // namespace rc::server
