#include "server/engine_table.h"

#include "core/log.h"

namespace rc::server {

void engine_table::release_upstreams() {
  routes_.clear();
  fallback_ = nullptr;
  upstreams_.clear();
}

void engine_table::rebuild(std::shared_ptr<const routing_table> routing,
                           const engine_maker& make) {
  std::vector<slot> next;
  next.reserve(routing->upstreams.size());
  for (const auto& cfg : routing->upstreams) {
    slot s{cfg, nullptr};
    for (const slot& old : upstreams_) {
      if (old.handle && old.config->same_settings(*cfg)) {
        s.handle = old.handle;  // unchanged: keep its pools and sessions
        break;
      }
    }
    if (!s.handle) {
      const upstream_kind* kind = find_upstream_kind(cfg->kind);
      if (kind && kind->factory) s.handle = make(*kind, cfg);
      if (!s.handle) {
        RC_ERROR("upstream '%s' (%s): its %s engine could not be created; its models are not "
                 "routable",
                 cfg->name.c_str(), cfg->origin.c_str(), cfg->kind.c_str());
      }
    }
    next.push_back(std::move(s));
  }
  auto engine_of = [&next](std::string_view upstream) -> engine* {
    for (const slot& s : next)
      if (s.config->name == upstream) return s.handle.get();
    return nullptr;
  };
  routes_.clear();
  for (const model_route& r : routing->routes) {
    if (engine* e = engine_of(r.upstream)) routes_.emplace(r.name, e);
  }
  fallback_ = routing->fallback.empty() ? nullptr : engine_of(routing->fallback);
  // The old engines are released here; those with generations in progress live on in them.
  upstreams_ = std::move(next);
  routing_ = std::move(routing);
}

bool engine_table::mock_serves(std::string_view model) const {
  if (!mock_ || (routing_ && !routing_->mock_serves)) return false;
  for (const std::string& m : mock_->models())
    if (m == model) return true;
  return false;
}

engine* engine_table::find(std::string_view model) const {
  if (mock_serves(model)) return mock_.get();
  if (auto it = routes_.find(model); it != routes_.end()) return it->second;
  return fallback_;
}

std::shared_ptr<engine> engine_table::share(const engine& e) const {
  if (&e == mock_.get()) return mock_;
  for (const slot& s : upstreams_)
    if (s.handle.get() == &e) return s.handle;
  return nullptr;
}

std::vector<engine_table::entry> engine_table::list() const {
  std::vector<entry> out;
  auto listed = [&out](std::string_view id) {
    for (const entry& e : out)
      if (e.id == id) return true;
    return false;
  };
  if (mock_ && (!routing_ || routing_->mock_serves)) {
    for (const std::string& m : mock_->models()) out.push_back({m, "ringcast"});
  }
  if (!routing_) return out;
  for (const model_route& r : routing_->routes) {
    if (routes_.count(r.name)) out.push_back({r.name, r.upstream});
  }
  if (fallback_) {
    for (const std::string& m : fallback_->models())
      if (!listed(m)) out.push_back({m, routing_->fallback});
  }
  return out;
}

std::optional<engine_table::entry> engine_table::describe(std::string_view id) const {
  for (const entry& e : list())
    if (e.id == id) return e;
  return std::nullopt;
}

std::string_view engine_table::default_model() const {
  if (mock_ && (!routing_ || routing_->mock_serves) && !mock_->models().empty())
    return mock_->models().front();
  if (routing_) {
    for (const model_route& r : routing_->routes)
      if (routes_.count(r.name)) return r.name;
  }
  return {};
}

std::string_view engine_table::unready_worker_upstream() const {
  for (const slot& s : upstreams_) {
    if (!s.handle) continue;
    const upstream_kind* kind = find_upstream_kind(s.config->kind);
    if (!kind || kind->endpoints != endpoint_family::none) continue;
    bool routed = fallback_ == s.handle.get();
    for (const auto& [name, e] : routes_) routed = routed || e == s.handle.get();
    if (routed && !s.handle->ready()) return s.config->name;
  }
  return {};
}

std::shared_ptr<engine> engine_table::upstream_engine(std::string_view upstream) const {
  for (const slot& s : upstreams_)
    if (s.config->name == upstream) return s.handle;
  return nullptr;
}

}  // namespace rc::server
