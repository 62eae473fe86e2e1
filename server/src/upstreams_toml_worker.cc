// The worker keys of an [[upstreams]] table (kinds without endpoints: kind = "jsonrpc", local
// worker processes speaking JSON-RPC on stdio; docs/workers.md, docs/operations.md "Worker
// upstreams"). thread_params, a TOML table, is kept as JSON text for the codex dialect.
//
// Thread-safety: pure functions.
#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <sstream>

#include "proto/json_writer.h"
#include "upstreams_toml_reader.h"

namespace rc::server::toml_tables {
namespace {

constexpr uint32_t hour_ms = 3'600'000;

// Every key read here: refused on kinds with endpoints.
constexpr const char* worker_keys[] = {
    "protocol", "command", "env", "cwd", "framing", "workers", "max_concurrency_per_worker",
    "queue_max", "init_timeout_ms", "ping_interval_ms", "ping_timeout_ms", "max_line_bytes",
    "stop_grace_ms", "restart_backoff_base_ms", "restart_backoff_cap_ms", "crash_loop_restarts",
    "crash_loop_window_ms", "stderr_lines_per_s", "thread_params", "retain_threads"};

void read_command(table_reader& r, upstream_config& u) {
  const toml::node* n = r.take("command");
  if (!n) {
    fail(r.line(), "upstream '" + u.name + "': command is required for a " + u.kind +
                       " upstream (the worker's argv, e.g. [\"python3\", \"worker.py\"])");
  }
  const auto* arr = n->as_array();
  if (!arr || arr->empty()) {
    fail(line_of(*n), "command must be a non-empty list of strings (the worker's argv), e.g. "
                      "[\"python3\", \"worker.py\"]");
  }
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::node& el = *arr->get(i);
    const auto* s = el.as_string();
    if (!s) fail(line_of(el), "command[" + std::to_string(i) + "] must be a string");
    if (s->get().find('\0') != std::string::npos)
      fail(line_of(el), "command[" + std::to_string(i) + "] contains a NUL byte");
    u.command.push_back(s->get());
  }
  if (u.command.front().empty()) fail(line_of(*n), "command[0] (the program) must not be empty");
}

void read_env(table_reader& r, upstream_config& u) {
  const toml::node* n = r.take("env");
  if (!n) return;
  const auto* t = n->as_table();
  if (!t) fail(line_of(*n), "env must be a table of strings, e.g. env = { MODEL_DIR = \"/models\" }");
  for (const auto& [key, value] : *t) {
    std::string name(key.str());
    int line = line_of(value);
    if (name.empty() || name.find('=') != std::string::npos || name.find('\0') != std::string::npos)
      fail(line, "env: invalid variable name '" + name + "' (empty, or contains '=' or NUL)");
    const auto* v = value.as_string();
    if (!v) fail(line, "env: the value of " + name + " must be a string");
    if (v->get().find('\0') != std::string::npos)
      fail(line, "env: the value of " + name + " contains a NUL byte");
    u.env.emplace_back(std::move(name), v->get());
  }
}

void read_cwd(table_reader& r, upstream_config& u) {
  const toml::node* n = r.take("cwd");
  if (!n) return;
  const auto* s = n->as_string();
  if (!s || s->get().empty()) fail(line_of(*n), "cwd must be a directory path");
  struct stat st {};
  if (stat(s->get().c_str(), &st) != 0)
    fail(line_of(*n), "cwd: cannot use " + s->get() + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) fail(line_of(*n), "cwd: " + s->get() + " is not a directory");
  u.cwd = s->get();
}

// TOML → JSON: tables become objects, arrays arrays; dates and times become their TOML text.
void write_json(json::writer& w, const toml::node& n, int depth) {
  if (depth > 16) fail(line_of(n), "thread_params: nested more than 16 levels deep");
  if (const auto* t = n.as_table()) {
    w.begin_object();
    for (const auto& [key, value] : *t) {
      w.key(key.str());
      write_json(w, value, depth + 1);
    }
    w.end_object();
  } else if (const auto* a = n.as_array()) {
    w.begin_array();
    for (const toml::node& el : *a) write_json(w, el, depth + 1);
    w.end_array();
  } else if (const auto* s = n.as_string()) {
    w.string(s->get());
  } else if (const auto* i = n.as_integer()) {
    w.int64(i->get());
  } else if (const auto* f = n.as_floating_point()) {
    if (!std::isfinite(f->get())) fail(line_of(n), "thread_params: nan and inf have no JSON form");
    w.float64(f->get());
  } else if (const auto* b = n.as_boolean()) {
    w.boolean(b->get());
  } else {
    std::ostringstream text;  // date, time, date-time
    if (const auto* d = n.as_date()) text << d->get();
    if (const auto* tm = n.as_time()) text << tm->get();
    if (const auto* dt = n.as_date_time()) text << dt->get();
    w.string(text.str());
  }
}

void read_protocol_keys(table_reader& r, upstream_config& u) {
  bool codex = u.protocol == "codex-app-server";
  if (auto f = r.string("framing")) {
    int line = line_of(*r.table().get("framing"));
    if (*f != "lines" && *f != "content-length")
      fail(line, "framing must be \"lines\" or \"content-length\" (got \"" + *f + "\")");
    if (codex && *f != "lines")
      fail(line, "framing: the codex-app-server protocol is framed by lines only");
    u.framing = *f;
  }
  if (const toml::node* n = r.take("thread_params")) {
    if (!n->is_table()) {
      fail(line_of(*n), "thread_params must be a table (merged into the thread/start params), "
                        "e.g. thread_params = { approvalPolicy = \"never\" }");
    }
    if (!codex) fail(line_of(*n), "thread_params applies to protocol \"codex-app-server\" only");
    byte_buffer out;
    json::writer w(out);
    write_json(w, *n, 0);
    u.thread_params = std::string(out.view());
  }
  if (auto v = r.boolean("retain_threads")) {
    if (!codex) {
      fail(line_of(*r.table().get("retain_threads")),
           "retain_threads applies to protocol \"codex-app-server\" only");
    }
    u.retain_threads = *v;
  }
}

}  // namespace

void read_worker_keys(table_reader& r, upstream_config& u, bool worker_kind) {
  if (!worker_kind) {
    for (const char* key : worker_keys) {
      if (const toml::node* n = r.table().get(key)) {
        fail(line_of(*n), std::string(key) + " applies to upstreams that run workers (kind = "
                                             "\"jsonrpc\") only");
      }
    }
    return;
  }
  auto protocol = r.string("protocol");
  if (!protocol) {
    fail(r.line(), "upstream '" + u.name +
                       "': protocol is required (\"ringcast\" or \"codex-app-server\")");
  }
  if (*protocol != "ringcast" && *protocol != "codex-app-server") {
    fail(line_of(*r.table().get("protocol")),
         "protocol must be \"ringcast\" or \"codex-app-server\" (got \"" + *protocol + "\")");
  }
  u.protocol = *protocol;
  read_command(r, u);
  read_env(r, u);
  read_cwd(r, u);
  read_protocol_keys(r, u);
  r.read_u32("workers", u.workers, 1, 256);
  r.read_u32("max_concurrency_per_worker", u.max_concurrency_per_worker, 1, 10'000);
  r.read_u32("queue_max", u.queue_max, 0, 1'000'000);
  r.read_u32("init_timeout_ms", u.init_timeout_ms, 1, hour_ms);
  r.read_u32("ping_interval_ms", u.ping_interval_ms, 0, hour_ms);
  r.read_u32("ping_timeout_ms", u.ping_timeout_ms, 1, hour_ms);
  r.read_u32("max_line_bytes", u.max_line_bytes, 1024, 1u << 28);
  r.read_u32("stop_grace_ms", u.stop_grace_ms, 0, 600'000);
  r.read_u32("restart_backoff_base_ms", u.restart_backoff_base_ms, 1, hour_ms);
  r.read_u32("restart_backoff_cap_ms", u.restart_backoff_cap_ms, 1, hour_ms);
  r.read_u32("crash_loop_restarts", u.crash_loop_restarts, 1, 1'000'000);
  r.read_u32("crash_loop_window_ms", u.crash_loop_window_ms, 1, 24 * hour_ms);
  r.read_u32("stderr_lines_per_s", u.stderr_lines_per_s, 0, 1'000'000);
  if (u.restart_backoff_base_ms > u.restart_backoff_cap_ms) {
    fail(r.line(), "upstream '" + u.name +
                       "': restart_backoff_base_ms must not exceed restart_backoff_cap_ms");
  }
}

}  // namespace rc::server::toml_tables
