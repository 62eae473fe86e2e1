// Reading one table of the --config file's [[upstreams]] / [[models]] arrays: typed, range-
// checked getters that throw upstream_table_error with the value's line, and the unknown-key
// check. Shared by upstreams_toml.cc and upstreams_toml_worker.cc. Internal to the server library.
//
// Thread-safety: a reader belongs to one parse on one thread.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "upstreams_toml.h"

namespace rc::server::toml_tables {

inline int line_of(const toml::node& n) {
  return static_cast<int>(n.source().begin.line);
}

[[noreturn]] inline void fail(int line, std::string reason) {
  throw upstream_table_error{line, std::move(reason)};
}

// One table of an array of tables: every key is read once by name; what is left is unknown.
class table_reader {
 public:
  table_reader(const toml::table& t, std::string what) : t_(t), what_(std::move(what)) {}

  int line() const { return line_of(t_); }
  const toml::table& table() const { return t_; }

  const toml::node* take(std::string_view key) {
    const toml::node* n = t_.get(key);
    if (n) taken_.insert(std::string(key));
    return n;
  }

  std::optional<std::string> string(std::string_view key) {
    const toml::node* n = take(key);
    if (!n) return std::nullopt;
    const auto* v = n->as_string();
    if (!v) fail(line_of(*n), std::string(key) + " must be a string");
    return v->get();
  }

  std::optional<bool> boolean(std::string_view key) {
    const toml::node* n = take(key);
    if (!n) return std::nullopt;
    const auto* v = n->as_boolean();
    if (!v) fail(line_of(*n), std::string(key) + " must be true or false");
    return v->get();
  }

  // An integer within [lo, hi].
  std::optional<uint64_t> integer(std::string_view key, uint64_t lo, uint64_t hi) {
    const toml::node* n = take(key);
    if (!n) return std::nullopt;
    const auto* v = n->as_integer();
    if (!v) fail(line_of(*n), std::string(key) + " must be an integer");
    int64_t x = v->get();
    if (x < 0 || static_cast<uint64_t>(x) < lo || static_cast<uint64_t>(x) > hi) {
      fail(line_of(*n), std::string(key) + " must be between " + std::to_string(lo) + " and " +
                            std::to_string(hi) + " (got " + std::to_string(x) + ")");
    }
    return static_cast<uint64_t>(x);
  }

  void read_u32(std::string_view key, uint32_t& out, uint32_t lo, uint32_t hi) {
    if (auto v = integer(key, lo, hi)) out = static_cast<uint32_t>(*v);
  }

  // Refuses keys nobody took.
  void finish() const {
    for (const auto& [key, node] : t_) {
      if (!taken_.count(std::string(key.str()))) {
        fail(line_of(node), "unknown key '" + std::string(key.str()) + "' in " + what_ +
                                " (see docs/operations.md, \"Upstreams and models\")");
      }
    }
  }

 private:
  const toml::table& t_;
  std::string what_;
  std::set<std::string> taken_;
};

// The keys of kinds without endpoints (endpoint_family::none: local worker processes, see
// docs/workers.md): read into `u` when `worker_kind`, refused otherwise. Also checks what
// `command`, `protocol` and the protocol-specific keys require of each other.
// (upstreams_toml_worker.cc)
void read_worker_keys(table_reader& r, upstream_config& u, bool worker_kind);

}  // namespace rc::server::toml_tables
