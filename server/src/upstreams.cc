#include "server/upstreams.h"

#include "core/log.h"
#include "server/upstream_kinds.h"

namespace rc::server {

std::string_view to_string(upstream_api a) {
  switch (a) {
    case upstream_api::chat: return "chat";
    case upstream_api::responses: return "responses";
    case upstream_api::both: return "both";
  }
  return "chat";
}

bool upstream_config::same_settings(const upstream_config& o) const {
  if (endpoints.size() != o.endpoints.size()) return false;
  for (size_t i = 0; i < endpoints.size(); ++i) {
    const url::endpoint& a = endpoints[i];
    const url::endpoint& b = o.endpoints[i];
    if (a.kind != b.kind || a.host != b.host || a.port != b.port || a.base_path != b.base_path ||
        a.host_is_literal != b.host_is_literal)
      return false;
  }
  return name == o.name && kind == o.kind && api_key_env == o.api_key_env &&
         api_key == o.api_key && api == o.api && ca_file == o.ca_file &&
         ca_file_size == o.ca_file_size && ca_file_mtime_ns == o.ca_file_mtime_ns &&
         tls_verify == o.tls_verify && connect_timeout_ms == o.connect_timeout_ms &&
         first_byte_timeout_ms == o.first_byte_timeout_ms &&
         idle_timeout_ms == o.idle_timeout_ms && total_timeout_ms == o.total_timeout_ms &&
         retries_max == o.retries_max && backoff_base_ms == o.backoff_base_ms &&
         backoff_cap_ms == o.backoff_cap_ms && retry_after_cap_ms == o.retry_after_cap_ms &&
         breaker_failures == o.breaker_failures &&
         breaker_cooldown_ms == o.breaker_cooldown_ms && pool_idle_max == o.pool_idle_max &&
         connections_max == o.connections_max && stateful == o.stateful &&
         max_retained_sessions == o.max_retained_sessions &&
         session_idle_ms == o.session_idle_ms && headers == o.headers &&
         protocol == o.protocol && command == o.command && env == o.env && cwd == o.cwd &&
         framing == o.framing && workers == o.workers &&
         max_concurrency_per_worker == o.max_concurrency_per_worker &&
         queue_max == o.queue_max && init_timeout_ms == o.init_timeout_ms &&
         ping_interval_ms == o.ping_interval_ms && ping_timeout_ms == o.ping_timeout_ms &&
         max_line_bytes == o.max_line_bytes && stop_grace_ms == o.stop_grace_ms &&
         restart_backoff_base_ms == o.restart_backoff_base_ms &&
         restart_backoff_cap_ms == o.restart_backoff_cap_ms &&
         crash_loop_restarts == o.crash_loop_restarts &&
         crash_loop_window_ms == o.crash_loop_window_ms &&
         stderr_lines_per_s == o.stderr_lines_per_s && thread_params == o.thread_params &&
         retain_threads == o.retain_threads;
}

const upstream_config* routing_table::upstream(std::string_view name) const {
  for (const auto& u : upstreams)
    if (u->name == name) return u.get();
  return nullptr;
}

std::optional<model_target> routing_table::find(std::string_view model) const {
  if (auto it = index.find(model); it != index.end()) {
    const model_route& r = routes[it->second];
    return model_target{upstream(r.upstream), r.upstream_model, r.max_output_tokens};
  }
  if (fallback.empty()) return std::nullopt;
  return model_target{upstream(fallback), model, std::nullopt};
}

void log_routing(const routing_table& t, const char* prefix) {
  for (const auto& u : t.upstreams) {
    if (!u->command.empty()) {  // local workers (the env's values may be secret: not logged)
      RC_INFO("%supstream '%s': %s (protocol %s), %u worker(s) running %s", prefix,
              u->name.c_str(), u->kind.c_str(), u->protocol.c_str(), u->workers,
              u->command.front().c_str());
      continue;
    }
    std::string endpoints;
    bool tls = false;
    for (const url::endpoint& e : u->endpoints) {
      endpoints += (endpoints.empty() ? "" : ", ") + url::to_string(e);
      tls = tls || e.tls();
    }
    RC_INFO("%supstream '%s': %s (%s), %s%s", prefix, u->name.c_str(), u->kind.c_str(),
            std::string(to_string(u->api)).c_str(), endpoints.c_str(),
            u->api_key_env.empty() ? "" : (", key from " + u->api_key_env).c_str());
    if (tls && !u->tls_verify)
      RC_WARN("%supstream '%s': tls_verify = false: its certificates are not checked (%s)",
              prefix, u->name.c_str(), u->origin.c_str());
  }
  std::string routes;
  for (const model_route& r : t.routes) routes += (routes.empty() ? "" : ", ") + r.name + " -> " + r.upstream;
  if (!t.fallback.empty()) routes += (routes.empty() ? "" : ", ") + std::string("* -> ") + t.fallback;
  if (!routes.empty()) RC_INFO("%smodels: %s", prefix, routes.c_str());
}

namespace {

// --upstream URL...: one upstream named "default" whose endpoints are the URLs; the scheme picks
// the kind (http(s): openai speaking chat completions; ws(s): responses-ws).
bool add_flag_upstream(const upstream_settings& s, std::vector<upstream_config>& upstreams,
                       std::vector<model_route>& routes, std::string& error) {
  for (const upstream_config& u : upstreams) {
    if (u.name == "default") {
      error = "--upstream: the config file already defines an upstream named 'default' (" +
              u.origin + ")";
      return false;
    }
  }
  for (const model_route& r : routes) {
    if (r.name == "*") {
      error = "--upstream: the config file already routes every other model (\"*\", " +
              r.origin + ")";
      return false;
    }
  }
  upstream_config u;
  u.name = "default";
  u.origin = "--upstream";
  for (const std::string& text : s.upstream_urls) {
    std::string err;
    auto ep = url::parse(text, err);
    if (!ep) {
      error = "--upstream: bad URL \"" + text + "\": " + err;
      return false;
    }
    if (!u.endpoints.empty() && u.endpoints.front().websocket() != ep->websocket()) {
      error = "--upstream: mixes http(s):// and ws(s):// URLs (one upstream, one kind)";
      return false;
    }
    u.endpoints.push_back(std::move(*ep));
  }
  bool ws = u.endpoints.front().websocket();
  u.kind = ws ? "responses-ws" : "openai";
  u.api = ws ? upstream_api::responses : upstream_api::chat;
  upstreams.push_back(std::move(u));
  routes.push_back(model_route{"*", "default", "", std::nullopt, "--upstream"});
  return true;
}

}  // namespace

std::shared_ptr<const routing_table> make_routing_table(const upstream_settings& s,
                                                        const std::vector<std::string>& mock_models,
                                                        std::string& error) {
  std::vector<upstream_config> upstreams = s.upstreams;
  std::vector<model_route> routes = s.routes;
  if (!s.upstream_urls.empty() && !add_flag_upstream(s, upstreams, routes, error)) return nullptr;
  auto table = std::make_shared<routing_table>();
  table->mock_serves = upstreams.empty() || s.models_explicit;
  for (model_route& r : routes) {
    if (r.name == "*") {
      table->fallback = r.upstream;
      continue;
    }
    if (table->mock_serves) {
      for (const std::string& m : mock_models) {
        if (m == r.name) {
          error = r.origin + ": model '" + r.name +
                  "' is also served by the mock (--model); route it in one place";
          return nullptr;
        }
      }
    }
    table->index.emplace(r.name, table->routes.size());
    table->routes.push_back(std::move(r));
  }
  for (upstream_config& u : upstreams) {
    const upstream_kind* kind = find_upstream_kind(u.kind);
    if (!kind || !kind->factory) {
      error = u.origin + ": upstream '" + u.name + "': the \"" + u.kind +
              "\" kind has no engine in this build";
      return nullptr;
    }
    table->upstreams.push_back(std::make_shared<const upstream_config>(std::move(u)));
  }
  return table;
}

}  // namespace rc::server
