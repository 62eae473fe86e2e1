// The jsonrpc engine: the per-shard worker pool (spawn, restart with backoff, crash loops), the
// choice of a worker, the wait queue, embeddings (jsonrpc_engine.h). Streams are in
// jsonrpc_stream.cc.
#include "jsonrpc_engine_impl.h"

#include <algorithm>
#include <limits>
#include <unordered_map>

#include "core/log.h"
#include "server/jsonrpc_engine.h"
#include "server/remote_generation.h"
#include "server/shard.h"
#include "server/upstream_kinds.h"

namespace rc::server {
namespace {

// This shard's engine of each board (the newest: a reload gives a new board anyway).
thread_local std::unordered_map<const worker_board*, jsonrpc_engine*> t_engines;

uint64_t splitmix(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace


std::shared_ptr<engine> make_jsonrpc_engine(shard_server& shard,
                                            std::shared_ptr<const upstream_config> cfg) {
  std::shared_ptr<worker_dialect> dialect;
  if (cfg->protocol == "codex-app-server") {
    dialect = make_codex_dialect(cfg);
  } else if (cfg->protocol == "ringcast" || cfg->protocol.empty()) {
    dialect = make_ringcast_dialect(cfg);
  }
  if (!dialect) {
    RC_ERROR("upstream %s: protocol '%s' has no dialect in this build", cfg->name.c_str(),
             cfg->protocol.c_str());
    return nullptr;
  }
  return std::make_shared<jsonrpc_engine>(shard, std::move(cfg), std::move(dialect));
}

jsonrpc_engine::jsonrpc_engine(shard_server& shard, std::shared_ptr<const upstream_config> cfg,
                               std::shared_ptr<worker_dialect> dialect)
    : shard_(shard),
      cfg_(std::move(cfg)),
      dialect_(std::move(dialect)),
      board_(board_for(cfg_, shard.shard_count())),
      rng_(shard.loop().now_ns() ^ (uint64_t{shard.id()} << 40)) {
  t_engines[board_.get()] = this;
  serve_.bind<jsonrpc_engine, &jsonrpc_engine::serve_waiters>(this);
  poll_.bind<jsonrpc_engine, &jsonrpc_engine::serve_waiters>(this);
  sweep_.set_callback([](timer&, void* ctx) { static_cast<jsonrpc_engine*>(ctx)->dead_.clear(); },
                      this);
  for (size_t i = 0; i < board_->size; ++i) {
    if (board_->owner(i) != shard.id()) continue;
    auto w = std::make_unique<owned_worker>();
    w->index = i;
    w->engine = this;
    w->restart.set_callback(
        [](timer&, void* ctx) {
          auto* ow = static_cast<owned_worker*>(ctx);
          ow->engine->on_restart_due(*ow);
        },
        w.get());
    workers_.push_back(std::move(w));
  }
  // Spawned on the first turn: a factory must not block, and a start-up that fails before the
  // loop runs leaves no process behind.
  start_.set_callback(
      [](timer&, void* ctx) {
        auto* self = static_cast<jsonrpc_engine*>(ctx);
        for (auto& w : self->workers_) self->spawn(*w);
      },
      this);
  shard.loop().arm_after_ms(start_, 0);
}

jsonrpc_engine::~jsonrpc_engine() {
  reactor& r = shard_.loop();
  r.cancel_timer(serve_);
  r.cancel_timer(start_);
  r.cancel_timer(poll_);
  r.cancel_timer(sweep_);
  auto it = t_engines.find(board_.get());
  if (it != t_engines.end() && it->second == this) t_engines.erase(it);
  // Streams hold the engine: none is left. The workers stop gracefully (stdin closed, SIGTERM,
  // SIGKILL after stop_grace_ms) in the shard's graveyard, which the shard waits for.
  for (auto& w : workers_) {
    r.cancel_timer(w->restart);
    if (w->proc) {
      w->proc->set_owner(nullptr);
      retire_worker(std::move(w->proc));
    } else {
      // (Its metrics state is left to a replacement under the same labels, if any.)
      board_->slots[w->index].state.store(worker_state::stopped, std::memory_order_release);
    }
  }
  dead_.clear();
}

jsonrpc_engine* jsonrpc_engine::on_this_shard(const worker_board* board) {
  auto it = t_engines.find(board);
  return it == t_engines.end() ? nullptr : it->second;
}

const std::vector<std::string>& jsonrpc_engine::models() const {
  uint64_t v = board_->models_version();
  if (v != models_version_) {
    models_version_ = v;
    models_ = board_->models();
  }
  return models_;
}

uint64_t jsonrpc_engine::completion_tokens_max(std::string_view model) const {
  if (auto m = shard_.routes().find(model); m && m->max_output_tokens) return *m->max_output_tokens;
  return std::numeric_limits<uint32_t>::max();
}

std::string jsonrpc_engine::upstream_model(std::string_view model) const {
  if (auto m = shard_.routes().find(model); m && !m->upstream_model.empty())
    return std::string(m->upstream_model);
  return std::string(model);
}

// ---- the pool ----

uint64_t jsonrpc_engine::backoff_ms(uint32_t attempt) {
  uint64_t base = std::max<uint64_t>(cfg_->restart_backoff_base_ms, 1);
  uint64_t cap = std::max<uint64_t>(cfg_->restart_backoff_cap_ms, base);
  uint64_t d = attempt >= 32 ? cap : std::min<uint64_t>(cap, base << attempt);
  // Full jitter over the upper half: [d/2, d].
  return d / 2 + splitmix(rng_) % (d / 2 + 1);
}

jsonrpc_engine::owned_worker* jsonrpc_engine::find(worker_process& p) {
  for (auto& w : workers_)
    if (w->proc.get() == &p) return w.get();
  return nullptr;
}

void jsonrpc_engine::spawn(owned_worker& w) {
  w.ready_since_ms = 0;
  w.proc = std::make_unique<worker_process>(shard_, board_, w.index, dialect_, this);
  w.proc->start();  // a failed spawn reports its exit on a later turn
}

void jsonrpc_engine::on_restart_due(owned_worker& w) {
  uint64_t until = board_->unavailable_until_ms.load(std::memory_order_acquire);
  uint64_t now = shard_.loop().now_ms();
  if (until > now) {
    shard_.loop().arm_after_ms(w.restart, until - now);
    return;
  }
  spawn(w);
}

void jsonrpc_engine::on_worker_ready(worker_process& p) {
  owned_worker* w = find(p);
  if (!w) return;
  w->ready_since_ms = shard_.loop().now_ms();
  // Ready after a crash loop's pause: the upstream starts over (history forgotten).
  uint64_t until = board_->unavailable_until_ms.load(std::memory_order_acquire);
  if (until != 0 && until <= w->ready_since_ms) {
    board_->unavailable_until_ms.store(0, std::memory_order_release);
    board_->clear_crashes();
  }
  capacity_changed();
}

void jsonrpc_engine::on_worker_exit(worker_process& p, worker_restart_reason reason) {
  owned_worker* w = find(p);
  if (!w) return;
  uint64_t now = shard_.loop().now_ms();
  ++shard_.metrics().workers[worker_metrics_index(shard_.metrics().workers, cfg_->name,
                                                  static_cast<uint32_t>(w->index))]
        .restarts[static_cast<size_t>(reason)];
  // A worker that stayed up for a while starts its backoff over.
  if (w->ready_since_ms != 0 && now - w->ready_since_ms >= cfg_->restart_backoff_cap_ms) w->attempt = 0;
  uint64_t delay = backoff_ms(w->attempt);
  if (w->attempt < 64) ++w->attempt;
  if (board_->note_crash(now)) {
    uint64_t until = now + std::max<uint64_t>(cfg_->restart_backoff_cap_ms, 1);
    if (board_->unavailable_until_ms.load(std::memory_order_acquire) < until) {
      board_->unavailable_until_ms.store(until, std::memory_order_release);
      RC_ERROR("upstream %s: crash loop (%u abnormal worker exits within %u ms): unavailable for "
               "%u ms",
               cfg_->name.c_str(), cfg_->crash_loop_restarts, cfg_->crash_loop_window_ms,
               cfg_->restart_backoff_cap_ms);
    }
    delay = std::max<uint64_t>(delay, until - now);
  }
  // (A replaced engine's worker no longer owns its metric rows: the new one's state stays.)
  w->proc->show_state(worker_state::backoff);
  dead_.push_back(std::move(w->proc));  // we are inside its callback
  shard_.loop().arm_after_ms(sweep_, 0);
  board_->slots[w->index].state.store(worker_state::backoff, std::memory_order_release);
  RC_INFO("worker %s#%zu: restarting in %llu ms", cfg_->name.c_str(), w->index,
          static_cast<unsigned long long>(delay));
  shard_.loop().arm_after_ms(w->restart, delay);
  // Waiters may now have to give up (unavailable) or go to another worker.
  capacity_changed();
}

worker_process* jsonrpc_engine::ready_worker(size_t index) {
  for (auto& w : workers_)
    if (w->index == index)
      return w->proc && w->proc->state() == worker_state::ready ? w->proc.get() : nullptr;
  return nullptr;
}

// ---- choosing a worker ----

int jsonrpc_engine::reserve(int avoid) {
  // Bounded: a lost race (another shard took the last slot) tries again a few times.
  for (int round = 0; round < 4; ++round) {
    int best = -1;
    uint32_t best_load = UINT32_MAX;
    bool best_local = false;
    for (size_t i = 0; i < board_->size; ++i) {
      if (static_cast<int>(i) == avoid) continue;
      const worker_board::slot& s = board_->slots[i];
      if (s.state.load(std::memory_order_acquire) != worker_state::ready) continue;
      uint32_t load = s.inflight.load(std::memory_order_relaxed);
      if (load >= board_->capacity) continue;
      bool local = board_->owner(i) == shard_.id();
      if (load < best_load || (load == best_load && local && !best_local)) {
        best = static_cast<int>(i);
        best_load = load;
        best_local = local;
      }
    }
    if (best < 0) return -1;
    if (board_->try_reserve(static_cast<size_t>(best))) return best;
  }
  return -1;
}

owned_event jsonrpc_engine::unavailable_event(bool busy) const {
  uint64_t now = shard_.loop().now_ms();
  uint64_t until = board_->unavailable_until_ms.load(std::memory_order_acquire);
  if (until > now && !board_->any_ready()) {
    worker_failure f = worker_failure_of(
        "worker_unavailable", "upstream '" + cfg_->name +
                                  "': its workers keep crashing; it is paused until they restart");
    f.retry_after_ms = static_cast<uint32_t>(until - now);
    return to_error_event(f);
  }
  if (busy) {
    worker_failure f = worker_failure_of(
        "worker_busy", "upstream '" + cfg_->name + "': every worker is busy and the wait queue is full");
    if (f.retry_after_ms == 0) f.retry_after_ms = 1000;
    return to_error_event(f);
  }
  worker_failure f =
      worker_failure_of("worker_unavailable", "upstream '" + cfg_->name + "': no worker is ready");
  if (f.retry_after_ms == 0) f.retry_after_ms = 1000;
  return to_error_event(f);
}

// ---- the wait queue ----

bool jsonrpc_engine::enqueue(jsonrpc_waiter* s) {
  if (queue_.size() >= cfg_->queue_max) return false;
  queue_.push_back(s);
  board_->waiting[shard_.id()].fetch_add(1, std::memory_order_acq_rel);
  // A safety net for wakes from other shards: look again now and then while anyone waits.
  if (!poll_.armed()) shard_.loop().arm_after_ms(poll_, 50);
  return true;
}

void jsonrpc_engine::dequeue(jsonrpc_waiter* s) {
  auto it = std::find(queue_.begin(), queue_.end(), s);
  if (it == queue_.end()) return;
  queue_.erase(it);
  board_->waiting[shard_.id()].fetch_sub(1, std::memory_order_acq_rel);
}

void jsonrpc_engine::capacity_changed() {
  if (!queue_.empty() && !serve_.armed()) shard_.loop().arm_after_ms(serve_, 0);
  unsigned self = shard_.id();
  for (unsigned s = 0; s < board_->shards; ++s) {
    if (s == self || board_->waiting[s].load(std::memory_order_acquire) == 0) continue;
    if (board_->wake_posted[s].exchange(true, std::memory_order_acq_rel)) continue;
    std::weak_ptr<worker_board> weak = board_;
    shard_.loop().post(s, [weak] {
      auto b = weak.lock();
      if (!b) return;
      b->wake_posted[shard_server::current()->id()].store(false, std::memory_order_release);
      if (jsonrpc_engine* e = on_this_shard(b.get())) e->serve_waiters();
    });
  }
}

void jsonrpc_engine::serve_waiters() {
  uint64_t now = shard_.loop().now_ms();
  bool unavailable = board_->paused(now);
  while (!queue_.empty()) {
    jsonrpc_waiter* s = queue_.front();
    if (unavailable) {
      dequeue(s);
      s->fail_waiting(unavailable_event(false));
      continue;
    }
    if (!board_->any_ready()) break;
    size_t before = queue_.size();
    s->wake();  // starts it (and dequeues it) if a worker has room
    if (queue_.size() == before) break;
  }
  if (!queue_.empty()) shard_.loop().arm_after_ms(poll_, 50);
}

// ---- outside streams ----

void jsonrpc_engine::invoke_tool(std::string_view name, std::string_view,
                                 unique_function<void(tool_result&&)> done) {
  refuse_builtin_tool(shard_, cfg_->name, name, std::move(done));
}

}  // namespace rc::server
