#include "worker_board.h"

#include <algorithm>
#include <map>

namespace rc::server {

std::string_view to_string(worker_state s) {
  static constexpr std::string_view names[] = {"stopped", "starting", "ready", "stopping",
                                               "backoff"};
  static_assert(std::size(names) == static_cast<size_t>(worker_state::count));
  return names[static_cast<size_t>(s)];
}

worker_board::worker_board(std::shared_ptr<const upstream_config> c, unsigned shard_count)
    : cfg(std::move(c)),
      shards(shard_count == 0 ? 1 : shard_count),
      capacity(std::max<uint32_t>(cfg->max_concurrency_per_worker, 1)),
      slots(std::make_unique<slot[]>(cfg->workers)),
      size(cfg->workers),
      waiting(std::make_unique<std::atomic<uint32_t>[]>(shards)),
      wake_posted(std::make_unique<std::atomic<bool>[]>(shards)),
      models_(cfg->workers) {
  for (unsigned s = 0; s < shards; ++s) {
    waiting[s].store(0, std::memory_order_relaxed);
    wake_posted[s].store(false, std::memory_order_relaxed);
  }
}

bool worker_board::any_ready() const {
  for (size_t i = 0; i < size; ++i)
    if (slots[i].state.load(std::memory_order_acquire) == worker_state::ready) return true;
  return false;
}

bool worker_board::try_reserve(size_t i) {
  slot& s = slots[i];
  if (s.state.load(std::memory_order_acquire) != worker_state::ready) return false;
  uint32_t n = s.inflight.load(std::memory_order_relaxed);
  while (n < capacity) {
    if (s.inflight.compare_exchange_weak(n, n + 1, std::memory_order_acq_rel)) return true;
  }
  return false;
}

bool worker_board::note_crash(uint64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  crashes_.push_back(now_ms);
  while (!crashes_.empty() && crashes_.front() + cfg->crash_loop_window_ms < now_ms)
    crashes_.pop_front();
  if (cfg->crash_loop_restarts == 0 || crashes_.size() < cfg->crash_loop_restarts) return false;
  // Tripped: the next loop is counted afresh (old exits must not trip it again at once).
  crashes_.clear();
  return true;
}

void worker_board::clear_crashes() {
  std::lock_guard<std::mutex> lock(mu_);
  crashes_.clear();
}

bool worker_board::paused(uint64_t now_ms) const {
  return unavailable_until_ms.load(std::memory_order_acquire) > now_ms && !any_ready();
}

void worker_board::set_models(size_t worker, std::vector<std::string> models) {
  std::lock_guard<std::mutex> lock(mu_);
  if (worker >= models_.size() || models_[worker] == models) return;
  models_[worker] = std::move(models);
  models_version_.fetch_add(1, std::memory_order_acq_rel);
}

std::vector<std::string> worker_board::models() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& list : models_)
    for (const std::string& m : list)
      if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
  return out;
}

std::shared_ptr<worker_board> board_for(const std::shared_ptr<const upstream_config>& cfg,
                                        unsigned shard_count) {
  static std::mutex mu;
  static std::map<const upstream_config*, std::weak_ptr<worker_board>> boards;
  std::lock_guard<std::mutex> lock(mu);
  std::erase_if(boards, [](const auto& kv) { return kv.second.expired(); });
  auto& weak = boards[cfg.get()];
  if (auto b = weak.lock()) return b;
  auto b = std::make_shared<worker_board>(cfg, shard_count);
  weak = b;
  return b;
}

}  // namespace rc::server
