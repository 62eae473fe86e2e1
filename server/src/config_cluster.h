// The cluster flags of server_config (--nats and the others of cluster_config.h): declared on the
// command-line parser, then checked and completed once it has run. Internal to config.cc.
//
// Thread-safety: called by the parser's thread only.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "server/config.h"

namespace rc::server {

// Declares the "Cluster" group of flags (and their environment variables) on `app`.
void add_cluster_options(CLI::App& app, server_config& c);

// After the parse: checks every cluster setting, reads --nats-credentials-file and parses
// --topic-retention. Returns the reason start-up must stop, or empty.
std::string finish_cluster_options(const CLI::App& app, server_config& c);

}  // namespace rc::server
