// engine_table: one shard's model → engine map, rebuilt from the routing table (upstreams.h) at
// start-up and on every reload.
//
// Lookup order for a model name: the built-in mock's models (when routing_table::mock_serves),
// then the explicit [[models]] routes, then the fallback upstream ("*", --upstream), if any.
//
// Engines are held as shared_ptr, one per upstream. A rebuild keeps the engine (and so its pools
// and sessions) of every upstream whose settings did not change (upstream_config::same_settings)
// and asks the upstream-kind registry (upstream_kinds.h) for a new one otherwise. A replaced
// engine lives on as long as a generation holds it (share()): streams in progress finish on the
// engine, and the settings, they started with.
//
// Thread-safety: owned by its shard.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/engine.h"
#include "server/upstream_kinds.h"
#include "server/upstreams.h"

namespace rc::server {

class engine_table {
 public:
  engine_table() = default;
  engine_table(const engine_table&) = delete;
  engine_table& operator=(const engine_table&) = delete;

  // The shard's built-in mock (always there, serving its models when the routing says so).
  void set_mock(std::shared_ptr<engine> mock) { mock_ = std::move(mock); }
  engine* mock() const { return mock_.get(); }

  // Builds the table for `routing`. `make` creates the engine of a new or changed upstream: the
  // shard calls the kind's registered factory with itself (tests call their own). An upstream
  // whose engine cannot be made is logged and its models are not routable (404).
  using engine_maker = std::function<std::shared_ptr<engine>(
      const upstream_kind& kind, std::shared_ptr<const upstream_config> cfg)>;
  void rebuild(std::shared_ptr<const routing_table> routing, const engine_maker& make);

  // Drops the table's references to the upstream engines (at shutdown, once no connection is
  // left): an engine nothing else holds closes its pooled connections now, so that they are
  // closed before the loop stops. Models of upstreams are not routable afterwards.
  void release_upstreams();

  // The engine serving `model`, or nullptr.
  engine* find(std::string_view model) const;
  // The owning handle of an engine find() returned this turn (nullptr for one it does not know).
  std::shared_ptr<engine> share(const engine& e) const;

  // A routable model, for /v1/models: its id and who serves it ("ringcast" for the mock, the
  // upstream's name otherwise).
  struct entry {
    std::string_view id;
    std::string_view owned_by;
  };
  // Every model that can be listed: the mock's, the explicit routes, then the fallback
  // upstream's own models (as far as its engine knows them), each id once.
  std::vector<entry> list() const;
  // `id` if it is listed.
  std::optional<entry> describe(std::string_view id) const;
  // The model used when a request names none (the broker queue): the mock's first model when it
  // serves, else the first explicit route; empty when there is none.
  std::string_view default_model() const;

  // The first upstream of a local-process kind (endpoint_family::none: jsonrpc workers) that
  // serves a route and whose engine is not ready (no worker ready), for /readyz; empty if none.
  std::string_view unready_worker_upstream() const;

  // Engines per upstream (for tests and metrics).
  size_t upstream_engines() const { return upstreams_.size(); }
  std::shared_ptr<engine> upstream_engine(std::string_view upstream) const;

 private:
  bool mock_serves(std::string_view model) const;

  struct slot {
    std::shared_ptr<const upstream_config> config;
    std::shared_ptr<rc::server::engine> handle;  // nullptr: its factory failed
  };
  std::shared_ptr<engine> mock_;
  std::shared_ptr<const routing_table> routing_;
  std::vector<slot> upstreams_;
  std::unordered_map<std::string, engine*, routing_table::name_hash, std::equal_to<>> routes_;
  engine* fallback_ = nullptr;
};

}  // namespace rc::server
