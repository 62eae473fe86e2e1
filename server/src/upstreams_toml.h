// The [[upstreams]] and [[models]] tables of the --config file (see upstreams.h), read from the
// toml++ tree by config.cc's file parser. Internal to the server library.
//
// Thread-safety: pure functions (reads the process environment for api_key_env).
#pragma once

#include <toml++/toml.h>

#include <string>

#include "server/upstreams.h"

namespace rc::server {

// A mistake in the file, at `line`.
struct upstream_table_error {
  int line = 0;
  std::string reason;
};

// Reads `upstreams` (the value of the top-level key "upstreams") into `out`. `file` is the
// config file's path, for upstream_config::origin. Throws upstream_table_error.
void read_upstream_tables(const toml::node& upstreams, const std::string& file,
                          std::vector<upstream_config>& out);
// Reads `models` (the value of the top-level key "models") into `out`. Throws
// upstream_table_error.
void read_model_tables(const toml::node& models, const std::string& file,
                       std::vector<model_route>& out);
// What only both lists show: a model naming an unknown upstream, names given twice (the lines
// come from the origins). Throws upstream_table_error.
void check_upstream_tables(const std::vector<upstream_config>& upstreams,
                           const std::vector<model_route>& routes);

}  // namespace rc::server
