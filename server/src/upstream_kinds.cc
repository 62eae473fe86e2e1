#include "server/upstream_kinds.h"

#include <algorithm>

#include "server/jsonrpc_engine.h"
#include "server/openai_engine.h"
#include "server/responses_ws_engine.h"
#include "server/shard.h"

namespace rc::server {
namespace {

std::vector<upstream_kind>& registry() {
  static std::vector<upstream_kind> kinds;
  return kinds;
}

}  // namespace

void register_upstream_kind(std::string name, endpoint_family endpoints,
                            upstream_engine_factory factory) {
  for (upstream_kind& k : registry()) {
    if (k.name == name) {
      k.endpoints = endpoints;
      k.factory = std::move(factory);
      return;
    }
  }
  registry().push_back({std::move(name), endpoints, std::move(factory)});
}

void register_builtin_upstream_kinds() {
  // One line per kind. A kind registered without a factory is known to the configuration (its
  // tables are checked) but refused at start-up until its engine is built in.
  if (!find_upstream_kind("openai"))
    register_upstream_kind("openai", endpoint_family::http, make_openai_engine);
  if (!find_upstream_kind("responses-ws"))
    register_upstream_kind("responses-ws", endpoint_family::websocket, make_responses_ws_upstream);
  // Local worker processes (docs/workers.md).
  if (!find_upstream_kind("jsonrpc") || !find_upstream_kind("jsonrpc")->factory)
    register_upstream_kind("jsonrpc", endpoint_family::none, make_jsonrpc_engine);
}

const upstream_kind* find_upstream_kind(std::string_view name) {
  for (const upstream_kind& k : registry())
    if (k.name == name) return &k;
  return nullptr;
}

std::vector<std::string> upstream_kind_names() {
  std::vector<std::string> names;
  for (const upstream_kind& k : registry()) names.push_back(k.name);
  std::sort(names.begin(), names.end());
  return names;
}

void refuse_builtin_tool(shard_server& shard, std::string_view upstream, std::string_view tool,
                         unique_function<void(tool_result&&)> done) {
  tool_result r;
  r.error_code = "tool_not_found";
  r.error_message = "Upstream '" + std::string(upstream) + "' has no built-in tool '" +
                    std::string(tool) + "'.";
  shard.loop().post(shard.id(), [r = std::move(r), done = std::move(done)]() mutable {
    done(std::move(r));
  });
}

}  // namespace rc::server
