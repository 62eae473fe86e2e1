#include "server/router.h"

#include <array>

#include "server/handlers.h"

namespace rc::server {
namespace {

using http1::method;

struct route_def {
  route_id id;
  std::string_view pattern;
  uint16_t methods;
  std::string_view allow;  // Allow header for 405, derived from `methods` by hand: kept literal
  handler_fn handler;
};

constexpr uint16_t get_head = method_bit(method::get) | method_bit(method::head);
constexpr uint16_t get = method_bit(method::get);
constexpr uint16_t post = method_bit(method::post);
constexpr uint16_t del = method_bit(method::delete_);

// Ordered: the first pattern that matches the path wins.
constexpr std::array routes = {
    route_def{route_id::healthz, "/healthz", get_head, "GET, HEAD", handle_healthz},
    route_def{route_id::readyz, "/readyz", get_head, "GET, HEAD", handle_readyz},
    route_def{route_id::metrics, "/metrics", get_head, "GET, HEAD", handle_metrics},
    route_def{route_id::system_health, "/v1/system/health", get_head, "GET, HEAD",
              handle_system_health},
    route_def{route_id::topic_publish, "/v1/topics/{topic}", post, "POST", handle_topic_publish},
    route_def{route_id::topic_events, "/v1/topics/{topic}/events", get, "GET", handle_topic_events},
    route_def{route_id::ws, "/ws", get, "GET", handle_ws},
    route_def{route_id::echo, "/echo", get, "GET", handle_echo},
    route_def{route_id::chat_completions, "/v1/chat/completions", post, "POST",
              handle_chat_completions},
    route_def{route_id::responses, "/v1/responses", post, "GET, POST", handle_responses},
    route_def{route_id::responses_ws, "/v1/responses", get, "GET, POST", handle_responses_ws},
    route_def{route_id::embeddings, "/v1/embeddings", post, "POST", handle_embeddings},
    route_def{route_id::models, "/v1/models", get_head, "GET, HEAD", handle_models},
    route_def{route_id::model, "/v1/models/{model}", get_head, "GET, HEAD", handle_model},
    route_def{route_id::response, "/v1/responses/{id}", get | del, "GET, DELETE", handle_response},
    route_def{route_id::response_input_items, "/v1/responses/{id}/input_items", get, "GET",
              handle_response_input_items},
    route_def{route_id::broker_message, "/api/v1/message", post, "POST", handle_broker_message},
    route_def{route_id::broker_stream, "/api/v1/stream", get, "GET", handle_broker_stream},
    route_def{route_id::broker_message_cancel, "/api/v1/message/{id}", del, "DELETE",
              handle_broker_message_cancel},
    route_def{route_id::dashboard, "/dashboard", get_head, "GET, HEAD", handle_dashboard},
    route_def{route_id::dashboard_ops, "/dashboard/ops", get, "GET", handle_dashboard_ops},
};

// Matches `path` against `pattern`; fills `params` with {name} captures.
bool match_pattern(std::string_view pattern, std::string_view path, std::string_view* params) {
  size_t captured = 0;
  while (!pattern.empty()) {
    if (path.empty() || path[0] != '/' || pattern[0] != '/') return false;
    pattern.remove_prefix(1);
    path.remove_prefix(1);
    size_t pe = pattern.find('/'), se = path.find('/');
    std::string_view pseg = pattern.substr(0, pe), seg = path.substr(0, se);
    if (pseg.size() >= 2 && pseg.front() == '{' && pseg.back() == '}') {
      if (seg.empty() || captured == 2) return false;
      params[captured++] = seg;
    } else if (pseg != seg) {
      return false;
    }
    pattern = pe == std::string_view::npos ? std::string_view() : pattern.substr(pe);
    path = se == std::string_view::npos ? std::string_view() : path.substr(se);
  }
  return path.empty();
}

}  // namespace

// A path may have one route per method (GET /v1/responses is the WebSocket mode, POST the API);
// their `allow` strings are the same, listing all of them.
route_match match_route(method m, std::string_view path) {
  route_match out;
  const route_def* same_path = nullptr;
  for (const route_def& r : routes) {
    if (!match_pattern(r.pattern, path, out.params)) continue;
    if (r.methods & method_bit(m)) {
      out.route = r.id;
      out.handler = r.handler;
      return out;
    }
    if (!same_path) same_path = &r;
  }
  if (same_path) {
    out.route = same_path->id;
    out.status = 405;
    out.allow = same_path->allow;
    return out;
  }
  out.status = 404;
  return out;
}

bool openai_compatible(route_id r) {
  switch (r) {
    case route_id::chat_completions:
    case route_id::responses:
    case route_id::responses_ws:
    case route_id::embeddings:
    case route_id::models:
    case route_id::model:
    case route_id::response:
    case route_id::response_input_items:
      return true;
    default:
      return false;
  }
}

std::string_view route_label(route_id r) {
  if (r == route_id::responses_ws) return "/v1/responses (websocket)";
  for (const route_def& d : routes)
    if (d.id == r) return d.pattern;
  return "unmatched";
}

}  // namespace rc::server
