// Admission: who may use the API, how fast, and from which origins. It runs before every /v1/*
// and /api/* route and every WebSocket action (API.md, Common; issue "admission").
//
// * API keys come from --api-key flags and/or a keys file; with none configured the API is open
//   (and the server says so at start-up). A key is presented as "Authorization: Bearer <key>",
//   "X-API-Key: <key>", or, on WebSocket upgrades and SSE routes (browsers can't set headers
//   there), "?api_key=<key>"; authentication.h decides, and adds subscription tokens. Keys are
//   looked up by a SHA-1 digest and then compared in constant time, so response timing says
//   nothing about how close a guess was.
// * Rate limits are token buckets per key (requests/s and burst; per-key values from the keys
//   file, defaults from flags), and concurrent streams are capped per key. Both are exact for the
//   whole process, however the kernel spreads a client's connections over shards (limits.h);
//   without keys, anonymous clients get a budget per address (--anon-*) or one shared budget.
// * CORS: responses to an allowed Origin carry Access-Control-Allow-Origin; preflight OPTIONS
//   requests are answered with the allowed methods and headers; WebSocket upgrades from an Origin
//   not on the list are refused (403). "*" allows every origin, never with credentials.
//
// Thread-safety: api_keys and cors_policy are built at start-up or on a reload (rules.h), then
// read-only (shared by all shards).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rc::http1 {
struct request;
}

namespace rc::server {

// The topics a key may use for one action (subscribe or publish): all of them, unless the keys
// file restricts the key to topic patterns (proto/topic_pattern.h).
struct topic_permission {
  bool restricted = false;            // false: every topic
  std::vector<std::string> patterns;  // when restricted: the topics matching one of these
  bool allows(std::string_view topic) const;
};

struct api_key {
  std::string key;
  std::string name;             // for logs and metrics labels; defaults to "key-<n>"
  double rps = 0;               // 0: the server default
  double burst = 0;             // 0: the server default
  uint32_t streams_max = 0;     // 0: the server default
  uint32_t index = 0;           // for per-shard tables; stable across reloads (carry_indexes)
  topic_permission subscribe;   // subscribe=PATTERN,... in the keys file
  topic_permission publish;     // publish=PATTERN,... in the keys file
  bool admin = false;           // --admin-key or admin=yes: may also open /dashboard
};

class api_keys {
 public:
  // Adds a key given on the command line (--api-key, or --admin-key when `admin`). Returns an
  // error message or empty.
  std::string add(std::string_view key, bool admin = false);
  // Loads a keys file: one key per line, then optional name=, rps=, burst=, streams=,
  // subscribe=, publish=, admin= attributes; '#' starts a comment. Errors name the file and line.
  // Returns an error message or empty.
  std::string load_file(const std::string& path);

  // Gives every key that `previous` (or a snapshot before it) knew the index it had there, and
  // new keys indexes never used before, so per-shard tables indexed by key (rate buckets, stream
  // counts) keep following the same key across a reload.
  void carry_indexes(const api_keys& previous);

  bool empty() const { return keys_.empty(); }
  // Whether one of the keys is an admin key.
  bool any_admin() const;
  size_t size() const { return keys_.size(); }
  // One past the largest index in use: the size of a table indexed by key.
  uint32_t index_end() const { return index_end_; }

  // The key matching `presented`, or nullptr.
  const api_key* find(std::string_view presented) const;

 private:
  std::string insert(api_key k);
  std::vector<api_key> keys_;
  std::unordered_map<std::string, uint32_t> by_digest_;  // SHA-1 of the key -> position in keys_
  // Every key digest ever given an index (carried from snapshot to snapshot) -> that index.
  std::unordered_map<std::string, uint32_t> index_of_digest_;
  uint32_t index_end_ = 0;
};

// Which key a request presents: Authorization: Bearer, X-API-Key, or (when allow_query: WebSocket
// upgrades and SSE routes, see authentication.h) ?api_key=. Empty when none.
std::string_view presented_key(const http1::request& req, bool allow_query);

class cors_policy {
 public:
  explicit cors_policy(std::vector<std::string> origins);
  bool configured() const { return any_ || !origins_.empty(); }
  // The Access-Control-Allow-Origin value for a request from `origin`, or empty (no header).
  std::string_view allow_origin(std::string_view origin) const;
  // Whether a WebSocket upgrade from `origin` may proceed (no Origin header: not a browser).
  bool websocket_allowed(std::string_view origin) const;

 private:
  bool any_ = false;
  std::vector<std::string> origins_;
};

// "1s", "6m0s", "1h2m3s": the duration format of OpenAI's x-ratelimit-reset-* headers.
std::string format_reset(uint64_t ms);

}  // namespace rc::server
