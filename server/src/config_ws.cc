#include "config_ws.h"

namespace rc::server {

void add_ws_deflate_options(CLI::App& app, server_config& c) {
  auto* grp = "WebSocket compression (permessage-deflate, RFC 7692)";
  app.add_flag("--ws-deflate", c.ws_deflate,
               "Negotiate permessage-deflate with WebSocket clients that offer it (off by "
               "default). Clients are always asked not to keep their compression context, so "
               "inflating costs no memory per connection")
      ->group(grp);
  app.add_option("--ws-deflate-min-bytes", c.ws_deflate_min_bytes,
                 "Messages shorter than this (payload bytes) are sent uncompressed")
      ->capture_default_str()->check(CLI::Range(0u, 1u << 30))->group(grp);
  app.add_option("--ws-deflate-window-bits", c.ws_deflate_window_bits,
                 "Window of the server's compressor (9-15; a client's server_max_window_bits "
                 "lowers it): larger compresses better and costs 2^(bits+2) bytes per "
                 "connection that keeps a context")
      ->capture_default_str()->check(CLI::Range(9u, 15u))->group(grp);
  app.add_option("--ws-deflate-mem-level", c.ws_deflate_mem_level,
                 "zlib memLevel of a connection's own compressor (1-9): 2^(level+9) bytes each")
      ->capture_default_str()->check(CLI::Range(1u, 9u))->group(grp);
  app.add_option("--ws-deflate-contexts-max", c.ws_deflate_contexts_max,
                 "Connections per shard that may keep a compression context between messages; "
                 "later ones are answered server_no_context_takeover (0: none keeps one)")
      ->capture_default_str()->check(CLI::Range(0u, 10'000'000u))->group(grp);
}

}  // namespace rc::server
