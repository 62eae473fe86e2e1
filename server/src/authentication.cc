#include "server/authentication.h"

#include <fstream>
#include <sstream>

#include "core/clock.h"
#include "proto/base64.h"
#include "proto/http1_parser.h"
#include "proto/jwt.h"
#include "proto/topic_pattern.h"
#include "server/admission.h"
#include "server/connection.h"
#include "server/query.h"
#include "server/shard.h"

namespace rc::server {
namespace {

// Routes a browser reaches without setting headers (EventSource, WebSocket): credentials may
// come in the query string there.
bool browser_route(const http1::request& req, route_id route) {
  return req.upgrade || route == route_id::topic_events || route == route_id::broker_stream ||
         route == route_id::dashboard || route == route_id::dashboard_ops;
}

openai::api_error refusal(int status, std::string message, std::string_view code) {
  openai::api_error e =
      openai::invalid_request(std::move(message), std::nullopt, std::string(code));
  e.status = status;
  return e;
}

// The whole content of `path`, or nullopt.
std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return std::move(s).str();
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

bool same_origin_request(const http1::request& req) {
  // Browsers that send Fetch metadata say where the request comes from; trust that first.
  if (std::string_view site = req.find("sec-fetch-site"); !site.empty()) {
    return site == "same-origin" || site == "none";
  }
  std::string_view origin = req.find("origin");
  if (origin.empty()) return true;  // not a browser's cross-origin request (those carry Origin)
  std::string_view host = req.find("host");
  if (host.empty()) return false;
  for (std::string_view scheme : {std::string_view("http://"), std::string_view("https://")}) {
    if (origin.size() == scheme.size() + host.size() && origin.starts_with(scheme) &&
        equal_ignoring_case(origin.substr(scheme.size()), host)) {
      return true;
    }
  }
  return false;
}

std::optional<std::string> basic_password(std::string_view authorization) {
  // The scheme is a case-insensitive token (RFC 7235), followed by spaces or tabs.
  size_t end = authorization.find_first_of(" \t");
  if (end != 5) return std::nullopt;
  if (!equal_ignoring_case(authorization.substr(0, 5), "basic")) return std::nullopt;
  std::string_view encoded = authorization.substr(5);
  auto blank = [](char c) { return c == ' ' || c == '\t'; };
  while (!encoded.empty() && blank(encoded.front())) encoded.remove_prefix(1);
  while (!encoded.empty() && blank(encoded.back())) encoded.remove_suffix(1);
  byte_buffer decoded;
  if (!base64::decode(encoded, decoded)) return std::string();
  std::string_view pair = decoded.view();
  size_t colon = pair.find(':');
  if (colon == std::string_view::npos) return std::string();
  return std::string(pair.substr(colon + 1));
}

std::string load_token_keys(const server_config& cfg, jwt::verifier& out) {
  if (const std::string& path = cfg.jwt_hs256_secret_file; !path.empty()) {
    std::optional<std::string> secret = read_file(path);
    if (!secret) return "--jwt-hs256-secret-file: cannot read " + path;
    // Editors end files with a newline; it is not part of the secret.
    if (!secret->empty() && secret->back() == '\n') secret->pop_back();
    if (!secret->empty() && secret->back() == '\r') secret->pop_back();
    if (std::string err = out.set_hs256_secret(std::move(*secret)); !err.empty()) {
      return "--jwt-hs256-secret-file " + path + ": " + err;
    }
  }
  if (const std::string& path = cfg.jwt_es256_public_key_file; !path.empty()) {
    std::optional<std::string> pem = read_file(path);
    if (!pem) return "--jwt-es256-public-key-file: cannot read " + path;
    if (std::string err = out.set_es256_public_key_pem(*pem); !err.empty()) {
      return "--jwt-es256-public-key-file " + path + ": " + err;
    }
  }
  return {};
}

bool authentication_required(const shard_server& shard) {
  return !shard.keys().empty() || shard.tokens().configured();
}

auth_result authenticate(shard_server& shard, const http1::request& req, route_id route) {
  auth_result out;
  bool browser = browser_route(req, route);
  std::string_view presented = presented_key(req, browser);
  std::string basic;  // the password of Basic credentials (a browser's login prompt): the key
  if (presented.empty()) {
    if (std::optional<std::string> p = basic_password(req.find("authorization"))) {
      if (p->empty()) {
        out.refusal = refusal(401,
                              "Malformed Basic credentials: expected base64 of 'user:key' (the "
                              "user name is ignored, the password is the API key)",
                              "invalid_api_key");
        return out;
      }
      // A browser re-sends cached Basic credentials by itself, to any request for this origin,
      // including those another site starts (a form POST, a WebSocket): they are only taken from
      // the origin's own pages, or they would hand that authority to every site (CSRF).
      if (!same_origin_request(req)) {
        out.refusal = refusal(403,
                              "Basic credentials are only accepted from the dashboard's own page "
                              "(same-origin requests); from another origin send the key as "
                              "'Authorization: Bearer', X-API-Key or ?api_key",
                              "origin_not_allowed");
        return out;
      }
      basic = std::move(*p);
      presented = basic;
    }
  }
  out.key = shard.keys().find(presented);
  if (out.key) return out;

  // Not a key: a subscription token, from ?token= or a JWT-shaped bearer value.
  std::optional<std::string> token;
  if (browser) token = query_value(req.query, "token");
  if (!token && jwt::looks_like_token(presented)) token = std::string(presented);
  if (!token) {
    out.refusal =
        presented.empty() ? openai::missing_api_key() : openai::invalid_api_key(presented);
    return out;
  }
  const jwt::verifier& tokens = shard.tokens();
  if (!tokens.configured()) {
    out.refusal = refusal(401,
                          "Subscription tokens are not enabled on this server (see "
                          "--jwt-hs256-secret-file, --jwt-es256-public-key-file)",
                          "invalid_token");
    return out;
  }
  jwt::result r = tokens.verify(shard.json_parser(), *token, wall_time_s());
  if (!r.ok()) {
    out.refusal = refusal(401, "Invalid subscription token: " + r.message,
                          r.status == jwt::status::expired ? "token_expired" : "invalid_token");
    return out;
  }
  if (route != route_id::topic_events && route != route_id::ws &&
      route != route_id::broker_stream) {
    out.refusal = refusal(403,
                          "A subscription token only allows subscribing (GET "
                          "/v1/topics/{topic}/events, GET /api/v1/stream, /ws); use an API key",
                          "permission_denied");
    return out;
  }
  out.token = std::make_unique<token_grant>();
  out.token->sub = std::move(r.claims.sub);
  out.token->topics = std::move(r.claims.topics);
  out.token->exp_s = r.claims.exp;
  return out;
}

std::optional<openai::api_error> topic_refusal(const connection& conn, topic_action action,
                                               std::string_view topic) {
  const char* verb = action == topic_action::subscribe ? "subscribe to" : "publish to";
  auto denied = [&](std::string_view who) {
    return refusal(403,
                   std::string(who) + " may not " + verb + " topic '" + std::string(topic) + "'",
                   "permission_denied");
  };
  if (const token_grant* t = conn.request_token()) {
    if (action == topic_action::publish) return denied("A subscription token");
    if (wall_time_s() > t->exp_s + jwt::leeway_s) {
      return refusal(401, "The subscription token has expired; reconnect with a fresh one",
                     "token_expired");
    }
    if (!topic_pattern::any_matches(t->topics, topic)) return denied("This subscription token");
    return std::nullopt;
  }
  if (const api_key* k = conn.request_key()) {
    const topic_permission& p = action == topic_action::subscribe ? k->subscribe : k->publish;
    if (!p.allows(topic)) return denied("This API key");
  }
  return std::nullopt;
}

std::optional<openai::api_error> user_refusal(const connection& conn, std::string_view user_id) {
  const token_grant* t = conn.request_token();
  if (!t || (!t->sub.empty() && t->sub == user_id)) return std::nullopt;
  if (wall_time_s() > t->exp_s + jwt::leeway_s) {
    return refusal(401, "The subscription token has expired; reconnect with a fresh one",
                   "token_expired");
  }
  return refusal(403,
                 "This subscription token may not follow the messages of user '" +
                     std::string(user_id) + "' (only those of the user its 'sub' names)",
                 "permission_denied");
}

}  // namespace rc::server
