#include "upstreams_toml.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>

#include "server/upstream_kinds.h"
#include "upstreams_toml_reader.h"

namespace rc::server {
namespace {

using toml_tables::fail;
using toml_tables::line_of;
using toml_tables::read_worker_keys;
using toml_tables::table_reader;

const toml::array& tables_of(const toml::node& node, std::string_view key) {
  const auto* arr = node.as_array();
  if (!arr || !arr->is_array_of_tables()) {
    fail(line_of(node), std::string(key) + " must be an array of tables: write [[" +
                            std::string(key) + "]] sections" +
                            (key == "models" ? " (the mock's models are `model = [...]`)" : ""));
  }
  return *arr;
}

// Names: what logs, metrics labels and owned_by show.
void check_name(std::string_view name, int line, std::string_view what) {
  if (name.empty() || name.size() > 128) fail(line, std::string(what) + " must be 1 to 128 bytes");
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u == 0x7f || c == '"' || c == '\\')
      fail(line, std::string(what) + " must not contain spaces, quotes or control characters");
  }
}

bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || std::strchr("!#$%&'*+-.^_`|~", c);
}

void read_headers(table_reader& r, upstream_config& u) {
  const toml::node* n = r.take("headers");
  if (!n) return;
  const auto* t = n->as_table();
  if (!t) fail(line_of(*n), "headers must be a table of strings, e.g. headers = { \"x-team\" = \"a\" }");
  // Fields ringcast writes itself, or that describe one connection (hop-by-hop).
  static const std::set<std::string, std::less<>> reserved = {
      "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
      "te", "trailer", "proxy-connection", "proxy-authorization", "expect"};
  for (const auto& [key, value] : *t) {
    std::string name;
    for (char c : key.str()) name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    int line = line_of(value);
    if (name.empty()) fail(line, "headers: empty header name");
    for (char c : name)
      if (c == '\0' || !is_token_char(c)) fail(line, "headers: invalid header name '" + name + "'");
    if (reserved.count(name)) fail(line, "headers: '" + name + "' is set by ringcast");
    if (name == "authorization" && !u.api_key_env.empty())
      fail(line, "headers: 'authorization' is set from api_key_env; give one or the other");
    const auto* v = value.as_string();
    if (!v) fail(line, "headers: the value of '" + name + "' must be a string");
    for (char c : v->get()) {
      auto ch = static_cast<unsigned char>(c);
      if ((ch < 0x20 && c != '\t') || ch == 0x7f)
        fail(line, "headers: the value of '" + name + "' contains a control character");
    }
    u.headers.emplace_back(std::move(name), v->get());
  }
}

void read_endpoints(table_reader& r, upstream_config& u, const upstream_kind& kind) {
  const toml::node* n = r.take("endpoints");
  if (!n) fail(r.line(), "upstream '" + u.name + "': endpoints is required (a list of URLs)");
  const auto* arr = n->as_array();
  if (!arr || arr->empty())
    fail(line_of(*n), "endpoints must be a non-empty list of URLs, e.g. [\"http://10.0.0.5:8000/v1\"]");
  for (const toml::node& el : *arr) {
    const auto* s = el.as_string();
    if (!s) fail(line_of(el), "endpoints must be a list of URL strings");
    std::string err;
    auto ep = url::parse(s->get(), err);
    if (!ep) fail(line_of(el), "bad URL \"" + s->get() + "\": " + err);
    bool ws = ep->websocket();
    if (ws != (kind.endpoints == endpoint_family::websocket)) {
      fail(line_of(el), "a " + std::string(ws ? "ws:// or wss://" : "http:// or https://") +
                            " endpoint on a " + kind.name + " upstream (it takes " +
                            (ws ? "http:// or https://" : "ws:// or wss://") + " URLs)");
    }
    for (const url::endpoint& other : u.endpoints) {
      if (url::to_string(other) == url::to_string(*ep))
        fail(line_of(el), "endpoint \"" + url::to_string(*ep) + "\" is listed twice");
    }
    u.endpoints.push_back(std::move(*ep));
  }
}

// A kind without endpoints (local workers) has none of the keys that describe a network peer.
void refuse_network_keys(table_reader& r, const upstream_config& u) {
  for (const char* key :
       {"endpoints", "api_key_env", "api", "ca_file", "tls_verify", "connect_timeout_ms",
        "first_byte_timeout_ms", "idle_timeout_ms", "total_timeout_ms", "retries_max",
        "backoff_base_ms", "backoff_cap_ms", "retry_after_cap_ms", "breaker_failures",
        "breaker_cooldown_ms", "pool_idle_max", "connections_max", "headers", "stateful",
        "max_retained_sessions", "session_idle_ms"}) {
    if (const toml::node* n = r.table().get(key)) {
      fail(line_of(*n), std::string(key) + " does not apply to a " + u.kind +
                            " upstream: it has no endpoints, it runs `command` (docs/workers.md)");
    }
  }
}

void read_key(table_reader& r, upstream_config& u) {
  const toml::node* n = r.take("api_key_env");
  if (!n) return;
  const auto* s = n->as_string();
  if (!s || s->get().empty()) fail(line_of(*n), "api_key_env must be the name of an environment variable");
  u.api_key_env = s->get();
  const char* value = std::getenv(u.api_key_env.c_str());
  if (!value) fail(line_of(*n), "api_key_env: environment variable " + u.api_key_env + " is not set");
  if (!*value) fail(line_of(*n), "api_key_env: environment variable " + u.api_key_env + " is empty");
  for (const char* p = value; *p; ++p) {
    auto ch = static_cast<unsigned char>(*p);
    if (ch < 0x21 || ch == 0x7f)  // the value itself is never quoted in a message
      fail(line_of(*n), "api_key_env: the value of " + u.api_key_env +
                            " contains a space or a control character");
  }
  u.api_key = value;
}

void read_tls(table_reader& r, upstream_config& u) {
  if (const toml::node* n = r.take("ca_file")) {
    const auto* s = n->as_string();
    if (!s || s->get().empty()) fail(line_of(*n), "ca_file must be a file path");
    int fd = open(s->get().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(line_of(*n), "ca_file: cannot open " + s->get() + ": " + std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) == 0) {
      u.ca_file_size = static_cast<uint64_t>(st.st_size);
      u.ca_file_mtime_ns =
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    }
    close(fd);
    u.ca_file = s->get();
  }
  if (auto v = r.boolean("tls_verify")) u.tls_verify = *v;
}

upstream_config read_upstream(const toml::table& t, const std::string& file) {
  table_reader r(t, "[[upstreams]]");
  upstream_config u;
  u.origin = file + ":" + std::to_string(r.line());
  auto name = r.string("name");
  if (!name) fail(r.line(), "[[upstreams]]: name is required");
  check_name(*name, line_of(*t.get("name")), "upstream name");
  u.name = *name;
  auto kind_name = r.string("kind");
  std::string known;
  for (const std::string& k : upstream_kind_names()) known += (known.empty() ? "" : ", ") + k;
  if (!kind_name) fail(r.line(), "upstream '" + u.name + "': kind is required (" + known + ")");
  const upstream_kind* kind = find_upstream_kind(*kind_name);
  if (!kind)
    fail(line_of(*t.get("kind")), "unknown kind \"" + *kind_name + "\" (known: " + known + ")");
  u.kind = kind->name;
  if (kind->endpoints == endpoint_family::none) {
    refuse_network_keys(r, u);
  } else {
    read_endpoints(r, u, *kind);
  }
  read_key(r, u);
  bool ws = kind->endpoints == endpoint_family::websocket;
  u.api = ws ? upstream_api::responses : upstream_api::chat;
  if (auto api = r.string("api")) {
    int line = line_of(*t.get("api"));
    if (*api == "chat") {
      u.api = upstream_api::chat;
    } else if (*api == "responses") {
      u.api = upstream_api::responses;
    } else if (*api == "both") {
      u.api = upstream_api::both;
    } else {
      fail(line, "api must be \"chat\", \"responses\" or \"both\" (got \"" + *api + "\")");
    }
    if (ws && u.api != upstream_api::responses)
      fail(line, "api: a " + u.kind + " upstream speaks \"responses\" only");
  }
  read_tls(r, u);
  constexpr uint32_t hour_ms = 3'600'000;
  r.read_u32("connect_timeout_ms", u.connect_timeout_ms, 1, hour_ms);
  r.read_u32("first_byte_timeout_ms", u.first_byte_timeout_ms, 1, hour_ms);
  r.read_u32("idle_timeout_ms", u.idle_timeout_ms, 1, hour_ms);
  r.read_u32("total_timeout_ms", u.total_timeout_ms, 0, 24 * hour_ms);
  r.read_u32("retries_max", u.retries_max, 0, 100);
  r.read_u32("backoff_base_ms", u.backoff_base_ms, 1, hour_ms);
  r.read_u32("backoff_cap_ms", u.backoff_cap_ms, 1, hour_ms);
  r.read_u32("retry_after_cap_ms", u.retry_after_cap_ms, 0, hour_ms);
  r.read_u32("breaker_failures", u.breaker_failures, 1, 1'000'000);
  r.read_u32("breaker_cooldown_ms", u.breaker_cooldown_ms, 1, hour_ms);
  r.read_u32("pool_idle_max", u.pool_idle_max, 0, 1'000'000);
  r.read_u32("connections_max", u.connections_max, 0, 10'000'000);
  if (u.backoff_base_ms > u.backoff_cap_ms)
    fail(r.line(), "upstream '" + u.name + "': backoff_base_ms must not exceed backoff_cap_ms");
  for (const char* key : {"stateful", "max_retained_sessions", "session_idle_ms"}) {
    if (!ws && t.get(key))
      fail(line_of(*t.get(key)), std::string(key) + " applies to responses-ws upstreams only");
  }
  if (auto v = r.boolean("stateful")) u.stateful = *v;
  r.read_u32("max_retained_sessions", u.max_retained_sessions, 1, 10'000'000);
  r.read_u32("session_idle_ms", u.session_idle_ms, 1, 24 * hour_ms);
  read_headers(r, u);
  read_worker_keys(r, u, kind->endpoints == endpoint_family::none);
  r.finish();
  return u;
}

model_route read_route(const toml::table& t, const std::string& file) {
  table_reader r(t, "[[models]]");
  model_route m;
  m.origin = file + ":" + std::to_string(r.line());
  auto name = r.string("name");
  if (!name) fail(r.line(), "[[models]]: name is required");
  check_name(*name, line_of(*t.get("name")), "model name");
  m.name = *name;
  auto upstream = r.string("upstream");
  if (!upstream) fail(r.line(), "model '" + m.name + "': upstream is required");
  m.upstream = *upstream;
  if (auto um = r.string("upstream_model")) {
    int line = line_of(*t.get("upstream_model"));
    if (m.name == "*")
      fail(line, "upstream_model: the \"*\" route sends each client's model name unchanged");
    check_name(*um, line, "upstream_model");
    m.upstream_model = *um;
  } else if (m.name != "*") {
    m.upstream_model = m.name;
  }
  m.max_output_tokens = r.integer("max_output_tokens", 1, uint64_t{1} << 24);
  r.finish();
  return m;
}

}  // namespace

void read_upstream_tables(const toml::node& upstreams, const std::string& file,
                          std::vector<upstream_config>& out) {
  for (const toml::node& el : tables_of(upstreams, "upstreams"))
    out.push_back(read_upstream(*el.as_table(), file));
}

void read_model_tables(const toml::node& models, const std::string& file,
                       std::vector<model_route>& out) {
  for (const toml::node& el : tables_of(models, "models"))
    out.push_back(read_route(*el.as_table(), file));
}

void check_upstream_tables(const std::vector<upstream_config>& upstreams,
                           const std::vector<model_route>& routes) {
  auto line = [](const std::string& origin) {
    return std::atoi(origin.c_str() + origin.rfind(':') + 1);
  };
  for (size_t i = 0; i < upstreams.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (upstreams[j].name == upstreams[i].name)
        fail(line(upstreams[i].origin), "upstream '" + upstreams[i].name +
                                            "' is defined twice (first at line " +
                                            std::to_string(line(upstreams[j].origin)) + ")");
    }
  }
  for (size_t i = 0; i < routes.size(); ++i) {
    const model_route& m = routes[i];
    bool known = false;
    for (const upstream_config& u : upstreams) known = known || u.name == m.upstream;
    if (!known)
      fail(line(m.origin), "model '" + m.name + "': unknown upstream '" + m.upstream + "'");
    for (size_t j = 0; j < i; ++j) {
      if (routes[j].name == m.name)
        fail(line(m.origin), "model '" + m.name + "' is routed twice (first at line " +
                                 std::to_string(line(routes[j].origin)) + ")");
    }
  }
}

}  // namespace rc::server
