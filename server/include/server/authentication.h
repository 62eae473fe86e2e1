// Authentication: who a request is, and which topics it may use (docs/api.md, "Authentication").
//
// With API keys or subscription-token keys configured, every /v1/*, /api/* and /ws request must
// present one of:
// * an API key: "Authorization: Bearer <key>", "X-API-Key: <key>", "Authorization: Basic
//   base64(user:<key>)" (what a browser's login prompt sends; the user name is ignored), or
//   "?api_key=<key>" on the routes a browser reaches without headers: WebSocket upgrades, the SSE
//   routes (GET /v1/topics/{topic}/events, GET /api/v1/stream) and the dashboard's;
// * a subscription token (proto/jwt.h): "?token=<jwt>" on those same routes, or
//   "Authorization: Bearer <jwt>" when it has the shape of a JWT and no key matches. A token
//   grants subscribing and nothing else: to its topics (the topic SSE route, /ws subscribe), and,
//   when it has a "sub", to the broker messages of the user of that id (GET /api/v1/stream, /ws
//   message.stream). Other routes answer 403 permission_denied, other /ws actions an error.
//
// Topic permissions: a key with subscribe= / publish= patterns in the keys file may use only the
// matching topics for that action; a key without them may use every topic (as before). A refusal
// is 403 permission_denied (HTTP) or an error event with that code (/ws), naming the topic.
//
// Thread-safety: pure functions of the request and the shard's read-only rules.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/openai_errors.h"
#include "server/router.h"

namespace rc::http1 {
struct request;
}
namespace rc::jwt {
class verifier;
}

namespace rc::server {

class shard_server;
class connection;
struct server_config;
struct api_key;

// What a verified subscription token grants.
struct token_grant {
  std::string sub;                  // the token's subject (who it was minted for), may be empty
  std::vector<std::string> topics;  // topic patterns it may subscribe to
  int64_t exp_s = 0;                // when it expires (wall-clock seconds)
};

struct auth_result {
  const api_key* key = nullptr;
  std::unique_ptr<token_grant> token;
  std::optional<openai::api_error> refusal;  // 401 (no or bad credentials) or 403
};

// Loads the subscription-token keys named by --jwt-hs256-secret-file and
// --jwt-es256-public-key-file into `out`. Returns an error message naming the file, or empty.
std::string load_token_keys(const server_config& cfg, jwt::verifier& out);

// The password of "Authorization: Basic base64(user:password)" (RFC 7617), which ringcast takes
// as the key. nullopt: not Basic credentials; an empty string: malformed ones (not base64, no
// ':', or an empty password).
std::optional<std::string> basic_password(std::string_view authorization);

// Whether `req` comes from a page of this server's own origin, or not from a browser page at
// all: Sec-Fetch-Site same-origin/none when present, else no Origin or Origin http(s)://<Host>.
// Basic credentials (which a browser attaches by itself) are only accepted when it does.
bool same_origin_request(const http1::request& req);

// Whether requests must authenticate (API keys or token keys are configured).
bool authentication_required(const shard_server& shard);

// Authenticates a request for `route`. REQUIRES: authentication_required(shard).
auth_result authenticate(shard_server& shard, const http1::request& req, route_id route);

enum class topic_action : uint8_t { subscribe, publish };

// Whether the credentials of `conn`'s current request (or WebSocket) allow `action` on `topic`;
// when not, the refusal: 403 permission_denied naming the topic, or 401 token_expired for a
// WebSocket subscription made after its token expired.
std::optional<openai::api_error> topic_refusal(const connection& conn, topic_action action,
                                               std::string_view topic);

// Whether the credentials of `conn` allow following the broker messages of `user_id`: keys
// always, a subscription token only for the user named by its "sub". When not, 403
// permission_denied.
std::optional<openai::api_error> user_refusal(const connection& conn, std::string_view user_id);

}  // namespace rc::server
