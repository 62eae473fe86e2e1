// The permessage-deflate flags of server_config (--ws-deflate and its limits; ws_compression.h).
// Internal to config.cc.
//
// Thread-safety: called by the parser's thread only.
#pragma once

#include <CLI/CLI.hpp>

#include "server/config.h"

namespace rc::server {

// Declares the "WebSocket compression" group of flags on `app`.
void add_ws_deflate_options(CLI::App& app, server_config& c);

}  // namespace rc::server
