// The upstream-kind registry: which engine talks to an upstream of a given `kind`.
//
// How a kind plugs in (the openai and responses-ws engines do exactly this):
//
//   1. Write a factory:
//        std::shared_ptr<engine> make_my_engine(shard_server& shard,
//                                               std::shared_ptr<const upstream_config> cfg);
//      It runs on `shard`'s thread, once per shard and upstream, when the shard starts and on a
//      reload that changed that upstream's settings (upstream_config::same_settings). It must
//      not block (no connecting, no resolving: start that lazily or in the background) and
//      returns nullptr only on a failure it logs itself (the upstream's models then answer 503).
//   2. Register it in register_builtin_upstream_kinds() (upstream_kinds.cc), which main calls
//      before parsing the configuration:
//        register_upstream_kind("openai", endpoint_family::http, make_openai_engine);
//      (explicit calls, not static initializers: the server is a static library and the linker
//      would drop an object file nothing refers to.) Tests register test kinds the same way.
//
// What the engine may rely on, and must do:
//   * `cfg` is immutable and outlives the engine (keep the shared_ptr). Its endpoints already
//     have the kind's scheme family, its key is resolved, its values are range-checked.
//   * Requests carry the client's model name (generation_request::model). The name to send
//     upstream, and the route's limits, come from shard.routes().find(model) (routing_table);
//     completion_tokens_max(model) should answer the route's max_output_tokens when set.
//   * models(): the upstream's own model names as far as known (the openai engine fetches GET
//     {base}/models). They are listed by /v1/models when the upstream is the fallback ("*",
//     --upstream); explicit [[models]] routes are listed from the config whatever models() says.
//   * Lifetime: the shard keeps one shared_ptr per upstream in its engine table; the
//     generation in progress keeps another (shard_server::share_engine), so a reload that
//     replaces the engine lets the streams it started finish on it. The engine dies when its
//     last stream does: its destructor must cancel whatever it still has scheduled (timers,
//     pooled connections, resolver callbacks). Streams must not outlive their engine's shard.
//   * Everything happens on the shard's thread: no locks, nothing shared with other shards.
//
// The registry itself is filled before the shards start and read-only afterwards, so shards read
// it without locks.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/engine.h"
#include "server/upstreams.h"

namespace rc::server {

class shard_server;

// The URL schemes a kind's endpoints use: http:// and https://, or ws:// and wss://; `none`:
// the kind has no endpoints (an `endpoints` key is an error) and runs local worker processes
// instead (`command` is required; the worker keys of docs/operations.md apply).
enum class endpoint_family : uint8_t { http, websocket, none };

using upstream_engine_factory =
    std::function<std::shared_ptr<engine>(shard_server&, std::shared_ptr<const upstream_config>)>;

struct upstream_kind {
  std::string name;
  endpoint_family endpoints = endpoint_family::http;
  upstream_engine_factory factory;  // empty: the kind is known but has no engine in this build
};

// Adds (or replaces) a kind. Call before the shards start (main, tests); never concurrently with
// lookups.
void register_upstream_kind(std::string name, endpoint_family endpoints,
                            upstream_engine_factory factory);

// The kinds this build knows: "openai", "responses-ws" and "jsonrpc" (each with its engine once
// that part registers it here). Idempotent; main calls it first thing.
void register_builtin_upstream_kinds();

// The kind named `name`, or nullptr.
const upstream_kind* find_upstream_kind(std::string_view name);

// What an upstream engine answers to a WS tool.invoke: upstreams have no ringcast built-in
// tools, so `done` gets tool_not_found ("Upstream '<upstream>' has no built-in tool '<tool>'."),
// on a later turn of `shard`'s loop, never from inside the call.
void refuse_builtin_tool(shard_server& shard, std::string_view upstream, std::string_view tool,
                         unique_function<void(tool_result&&)> done);

// Names of every registered kind, sorted (for error messages).
std::vector<std::string> upstream_kind_names();

}  // namespace rc::server
