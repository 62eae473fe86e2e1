#include "server/shard.h"

#include <signal.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "base/assert.h"
#include "core/clock.h"
#include "core/log.h"
#include "proto/sha1.h"
#include "server/cluster.h"
#include "server/mock_engine.h"
#include "server/remote_generation.h"
#include "server/ws_compression.h"
#include "worker_process.h"

namespace rc::server {
namespace {

thread_local shard_server* t_shard = nullptr;

uint64_t random_u64() {
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) != sizeof v) v = monotonic_ns() * 0x9e3779b97f4a7c15ULL;
  return v;
}

// splitmix64: a bijection, so distinct counters give distinct ids; the seed makes them
// unguessable across restarts.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Fixed-file slots per shard: every descriptor number the process may open (slot = fd number),
// up to 64Ki (the kernel's table costs about 8 bytes a slot; sockets with larger numbers use the
// plain fd).
unsigned registered_fd_slots() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  return static_cast<unsigned>(std::min<rlim_t>(rl.rlim_cur, 65536));
}

}  // namespace

shard_server::shard_server(reactor& r, process_state& process, int listen_fd)
    : reactor_(r),
      process_(process),
      rules_(process.initial),
      sockets_(r),
      inbound_(r, metrics_, rules_->config.inbound_buffer_budget_bytes),
      access_log_(r, rules_->config.access_log),
      acceptor_(r, listen_fd, [this](int fd) { on_accept(fd); }),
      next_connection_id_((uint64_t{r.shard_id()} << 48) + 1),
      started_ms_(r.now_ms()),
      names_(std::make_unique<resolver>(r)),
      cluster_(rules_->config.nats_urls.empty() ? nullptr : std::make_unique<cluster>(*this)),
      topics_(*this),
      responses_(config().responses_store_max),
      scheduler_(*this, share_of(config().engine_concurrency_max),
                 share_of(config().engine_queue_max), config().shed_queue_delay_ms),
      budgets_(r),
      broker_(*this),
      started_wall_s_(wall_time_s()) {
  RC_ASSERT(t_shard == nullptr);
  t_shard = this;
  if (getrandom(token_key_, sizeof token_key_, 0) != sizeof token_key_) {
    uint64_t a = random_u64(), b = mix(a);
    std::memcpy(token_key_, &a, 8);
    std::memcpy(token_key_ + 8, &b, 8);
  }
  new_request_id_prefix();
  // main opened the path once already, so this fails only if the file changed in between.
  if (std::string err = access_log_.open(); !err.empty()) RC_ERROR("access log: %s", err.c_str());
  const server_config& cfg = config();
  if (cfg.registered_fds) {
    if (std::string err = sockets_.register_fds(registered_fd_slots()); !err.empty())
      RC_INFO("registered descriptors off: %s", err.c_str());
  }
  apply_config();
  mock_options mock;
  mock.models = cfg.models;
  mock.first_token_ms = cfg.mock_first_token_ms;
  mock.tokens_per_s = cfg.mock_tokens_per_s;
  mock.default_tokens = cfg.mock_tokens;
  mock.max_tokens = cfg.mock_max_tokens;
  mock.embedding_dim = cfg.mock_embedding_dim;
  engines_.set_mock(std::make_shared<mock_engine>(r, std::move(mock)));
  date_.refresh(wall_time_s());
  drain_grace_.bind<shard_server, &shard_server::on_drain_grace>(this);
  drain_deadline_.bind<shard_server, &shard_server::on_drain_deadline>(this);
  drain_flushed_.bind<shard_server, &shard_server::on_drain_flushed>(this);
  r.add_turn_hook([this] { on_turn_end(); });
  // Last: engine factories may use any member of the shard.
  rebuild_engines();
}

shard_server::~shard_server() {
  RC_ASSERT(connections_.empty());
  // Whatever still holds a worker process is killed and reaped now (never left to the exit).
  engines_.release_upstreams();
  kill_retiring_workers();
  // Deferred work posted to ourselves (deletions of finished tasks and workers) runs now, while
  // everything it refers to still exists.
  reactor_.run_local_messages();
  // Work run here for other shards is cancelled (its engines still exist), and our streams of
  // work on other shards unlinked; then what that cancellation deferred.
  release_remote_generations();
  reactor_.run_local_messages();
  t_shard = nullptr;
}

shard_server* shard_server::current() { return t_shard; }

void shard_server::run() {
  if (cluster_) cluster_->start();
  acceptor_.start();
  if (id() == 0) {
    signals_ = std::make_unique<signal_reader>(reactor_, [this](int signo) {
      if (signo == SIGHUP) {
        on_reload_signal();
      } else {
        on_signal(signo);
      }
    });
    if (std::string err = signals_->start(); !err.empty()) RC_WARN("%s", err.c_str());
  }
  reactor_.run();
}

void shard_server::on_turn_end() {
  date_.refresh(wall_time_s());
  if (!draining_) return;
  if (!drain_watch_.empty()) watch_draining_connections();
  if (!connections_.empty() || !acceptor_.stopped()) return;
  // The last lines leave before the loop stops (their completion wakes us); what a pipe nobody
  // reads still holds a second later is dropped and counted (access_log::finish).
  bool log_settled = access_log_.settled();
  if (!log_settled) access_log_.finish();
  // Idle: no connection can come any more. The loop keeps running, answering the other shards'
  // questions (a key's budget, a stored response, a broker cancel live on their home shard), and
  // shard 0 keeps reading signals, until every shard is idle; the last one stops them all.
  if (!counted_idle_ && log_settled) {
    counted_idle_ = true;
    if (process_.shards_idle.fetch_add(1, std::memory_order_acq_rel) + 1 == shard_count()) {
      for (unsigned s = 0; s < shard_count(); ++s)
        if (!reactor_.post(s, [] { current()->stop_requested_ = true; }))
          RC_ERROR("drain: shard %u's mailbox is full; it cannot be told to stop", s);
    }
  }
  if (!stop_requested_ || !log_settled) return;  // a reopen (SIGHUP) may be in flight
  // Upstream connections (kept alive in the engines' pools) are closed before the loop stops:
  // their close completions must still be reaped, or they would be left half-done at exit.
  if (!upstreams_released_) {
    upstreams_released_ = true;
    engines_.release_upstreams();
  }
  // Worker processes of released jsonrpc engines are stopping (SIGTERM, SIGKILL after their
  // grace): the loop reaps them before it stops, so none outlives ringcast.
  if (retiring_workers() != 0) return;
  // The NATS connection closes last: topics and broker have stopped using it (their hooks go
  // here, before the stop) and nothing else will.
  if (cluster_ && !cluster_stopped_) {
    if (!cluster_stopping_) {
      cluster_stopping_ = true;
      topics_.release_cluster();
      cluster_->stop([this] {
        cluster_stopped_ = true;
        reactor_.request_turn();
      });
    }
    return;
  }
  if (sockets_.open_sockets() != 0) return;
  if (signals_ && !signals_->stopped()) {
    signals_->stop();
    return;
  }
  reactor_.cancel_timer(drain_grace_);
  reactor_.cancel_timer(drain_deadline_);
  reactor_.cancel_timer(drain_flushed_);
  reactor_.stop();
}

// ---- connections ----

void shard_server::on_accept(int fd) {
  // While draining, connections are still accepted during the grace period (see shard.h).
  // The limit is the process's (see process_state::connections): take a place first, give it
  // back if there was none.
  if (process_.connections.fetch_add(1, std::memory_order_relaxed) >= config().max_connections) {
    process_.connections.fetch_sub(1, std::memory_order_relaxed);
    // Over the limit: refuse at once rather than queue; the client sees a closed connection
    // and retries elsewhere. Counted, so operators see it.
    ++metrics_.connections_refused;
    close(fd);
    return;
  }
  ++metrics_.connections_accepted;
  if (config().send_buffer_bytes > 0) {
    int bytes = static_cast<int>(config().send_buffer_bytes);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
  }
  auto* c = new connection(*this, fd, next_connection_id_++);
  connections_.push_back(*c);
  by_id_.emplace(c->id(), c);
  c->start();
}

uint64_t shard_server::connections_open() const { return sockets_.open_sockets(); }

connection* shard_server::find_connection(uint64_t id) {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

uint32_t shard_server::share_of(uint32_t total) const {
  if (total == 0) return 0;
  uint32_t n = shard_count();
  return std::max<uint32_t>(1, (total + n - 1) / n);
}

connection* shard_server::live_connection(uint64_t id) {
  connection* c = find_connection(id);
  return c && !c->closing() ? c : nullptr;
}

void shard_server::on_connection_closed(connection& c) {
  connections_.remove(c);
  by_id_.erase(c.id());
  ++metrics_.connections_closed;
  process_.connections.fetch_sub(1, std::memory_order_relaxed);
}

namespace {

constexpr auto hex_pairs = [] {
  std::array<char, 512> t{};
  constexpr char hex[] = "0123456789abcdef";
  for (int i = 0; i < 256; ++i) {
    t[2 * i] = hex[i >> 4];
    t[2 * i + 1] = hex[i & 15];
  }
  return t;
}();

void put_hex32(char* out, uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8) std::memcpy(out + 2 * i, &hex_pairs[2 * (v & 255)], 2);
}

}  // namespace

void shard_server::new_request_id_prefix() {
  uint64_t v = mix(random_u64() ^ (uint64_t{id()} << 56));
  put_hex32(request_id_prefix_, static_cast<uint32_t>(v >> 32));
}

size_t shard_server::make_request_id(char* out) {
  if (++request_counter_ == 0) new_request_id_prefix();  // 2^32 ids later: a new prefix
  std::memcpy(out, request_id_prefix_, 8);
  put_hex32(out + 8, request_counter_);
  return 16;
}

void shard_server::make_token(char* out) {
  sha1::hasher h;
  h.update(token_key_, sizeof token_key_);
  uint64_t n = ++token_counter_;
  h.update(&n, sizeof n);
  sha1::digest d = h.finish();
  for (int i = 0; i < 8; ++i) std::memcpy(out + 2 * i, &hex_pairs[2 * d[i]], 2);
}

// ---- outbound rings ----

std::shared_ptr<outbound_ring> shard_server::acquire_ring() {
  ++metrics_.rings_in_use;
  if (ring_pool_.empty()) return outbound_ring::make(ring_options_);
  auto r = std::move(ring_pool_.back());
  ring_pool_.pop_back();
  return r;
}

void shard_server::release_ring(std::shared_ptr<outbound_ring>&& r) {
  --metrics_.rings_in_use;
  // Only rings nobody else holds and that were never closed go back; the pool is bounded so a
  // burst of streams doesn't pin their memory forever.
  constexpr size_t pool_max = 256;
  // Rings made before a reload changed the watermarks are not kept either.
  const outbound_ring_options& o = r->options();
  bool current = o.high_bytes == ring_options_.high_bytes &&
                 o.low_bytes == ring_options_.low_bytes && o.max_bytes == ring_options_.max_bytes;
  if (r.use_count() == 1 && !r->closed() && r->queued_bytes() == 0 && current &&
      ring_pool_.size() < pool_max)
    ring_pool_.push_back(std::move(r));
  r.reset();
}

// ---- metrics ----

shard_metrics shard_server::snapshot_metrics() const {
  shard_metrics s = metrics_;
  s.engine_running = scheduler_.running();
  s.engine_waiting = scheduler_.waiting();
  s.reactor = reactor_.stats();
  s.uptime_s = (reactor_.now_ms() - started_ms_) / 1000;
  s.access_log = access_log_.stats();
  s.resolver = names_->stats();
  s.ws_deflate = ws_compression::snapshot();
  if (cluster_) cluster_->snapshot(s.cluster);
  // metrics_ counts the bytes of closed connections; add those still open.
  for_each_connection_bytes(s.bytes_in, s.bytes_out);
  return s;
}

void shard_server::for_each_connection_bytes(uint64_t& in, uint64_t& out) const {
  // const_cast: intrusive_list iteration is non-const; nothing is modified.
  auto& list = const_cast<intrusive_list<connection, connection_list_tag>&>(connections_);
  list.for_each([&](connection& c) {
    in += c.bytes_received();
    out += c.bytes_sent();
  });
}

void shard_server::collect_metrics(unique_function<void(std::vector<shard_metrics>&&)> done) {
  uint64_t cid = next_collection_++;
  auto c = std::make_unique<collection>();
  c->snapshots.resize(shard_count());
  c->outstanding = shard_count();
  c->done = std::move(done);
  collections_.emplace(cid, std::move(c));
  unsigned home = id();
  for (unsigned s = 0; s < shard_count(); ++s) {
    reactor_.post(s, [home, cid] {
      shard_server* self = current();
      unsigned from = self->id();
      shard_metrics snap = self->snapshot_metrics();
      self->loop().post(home, [cid, from, snap = std::move(snap)]() mutable {
        current()->on_snapshot(cid, from, std::move(snap));
      });
    });
  }
}

void shard_server::on_snapshot(uint64_t cid, unsigned from, shard_metrics&& snapshot) {
  auto it = collections_.find(cid);
  if (it == collections_.end()) return;
  collection& c = *it->second;
  c.snapshots[from] = std::move(snapshot);
  if (--c.outstanding > 0) return;
  auto done = std::move(c.done);
  auto snaps = std::move(c.snapshots);
  collections_.erase(it);
  done(std::move(snaps));
}

// ---- draining ----

void shard_server::reopen_logs_on_all_shards() {
  for (unsigned s = 0; s < shard_count(); ++s)
    reactor_.post(s, [] { current()->access_log_.reopen(); });
}

void shard_server::on_signal(int signo) {
  if (signo == SIGUSR1) {
    RC_INFO("%s: reopening the access log", strsignal(signo));
    reopen_logs_on_all_shards();
    return;
  }
  bool again = draining_;
  if (again) {
    RC_INFO("%s: second signal, closing every connection now", strsignal(signo));
  } else {
    RC_INFO("%s: draining (/readyz 503, accepting for %u ms more, streams may run %u ms)",
            strsignal(signo), std::min(config().drain_grace_ms, config().drain_timeout_ms),
            config().drain_timeout_ms);
  }
  for (unsigned s = 0; s < shard_count(); ++s)
    reactor_.post(s, [again] { current()->begin_drain(again); });
}

void shard_server::begin_drain(bool force) {
  if (!draining_) {
    draining_ = true;
    // Load balancers need a while to see /readyz fail and stop sending: keep accepting (with
    // Connection: close) until the grace period is over, but never past the deadline.
    uint32_t grace_ms = std::min(config().drain_grace_ms, config().drain_timeout_ms);
    if (grace_ms == 0) {
      acceptor_.stop();
    } else {
      reactor_.arm_after_ms(drain_grace_, grace_ms);
    }
    reactor_.arm_after_ms(drain_deadline_, config().drain_timeout_ms);
    connections_.for_each([this](connection& c) {
      if (c.begin_drain()) drain_watch_.push_back(c.id());
    });
  }
  if (force) on_drain_deadline();
}

void shard_server::on_drain_grace() {
  acceptor_.stop();
}

void shard_server::watch_draining_connections() {
  // At the end of a turn: a close queued now would wait for the next turn's flush, so the
  // WebSockets whose last stream ended are closed from a message.
  std::erase_if(drain_watch_, [this](uint64_t cid) {
    connection* c = live_connection(cid);
    if (!c) return true;
    if (c->streams_running()) return false;
    reactor_.post(id(), [cid] {
      if (connection* live = current()->live_connection(cid)) live->drain_step();
    });
    return true;
  });
}

void shard_server::on_drain_deadline() {
  if (drain_deadline_passed_) {
    on_drain_flushed();  // a second signal after the deadline: nothing more to wait for
    return;
  }
  drain_deadline_passed_ = true;
  acceptor_.stop();
  reactor_.cancel_timer(drain_grace_);
  reactor_.cancel_timer(drain_deadline_);
  drain_watch_.clear();
  if (!connections_.empty())
    RC_WARN("drain deadline: ending %zu connections with a 'draining' error", connections_.size());
  connections_.for_each([](connection& c) { c.drain_deadline(); });
  // The error events and close frames just queued get a moment to leave; then nothing waits.
  constexpr uint32_t drain_flush_ms = 1000;
  reactor_.arm_after_ms(drain_flushed_, drain_flush_ms);
}

void shard_server::on_drain_flushed() {
  connections_.for_each([](connection& c) { c.abort(); });
}

// ---- reloading ----

void shard_server::on_reload_signal() {
  // The access log is reopened whatever becomes of the files: logrotate's SIGHUP must not depend
  // on the configuration being valid.
  reopen_logs_on_all_shards();
  // Reading the files blocks this shard for as long as that takes: a rare operator action on
  // small files, and it keeps the reload in one place, in order with any other signal.
  std::shared_ptr<const shared_rules> next = process_.reload(*rules_);
  if (!next) return;
  for (unsigned s = 0; s < shard_count(); ++s) {
    if (!reactor_.post(s, [next] { current()->apply_rules(next); }))
      RC_ERROR("SIGHUP: shard %u's mailbox is full; it keeps the previous configuration", s);
  }
}

void shard_server::apply_rules(std::shared_ptr<const shared_rules> next) {
  bool routing_changed = next->routing != rules_->routing;
  rules_ = rules_ref(std::move(next));
  apply_config();
  if (routing_changed) rebuild_engines();
}

void shard_server::rebuild_engines() {
  engines_.rebuild(rules_->routing,
                   [this](const upstream_kind& kind, std::shared_ptr<const upstream_config> cfg) {
                     return kind.factory(*this, std::move(cfg));
                   });
}

// What the shard derives from the settings and caches; everything else is read from config() where
// it is used. Restart-only settings (rules.cc) are never changed by a reload, so what was built
// from them at start-up (the mock engine, the stores) stays right.
void shard_server::apply_config() {
  const server_config& cfg = config();
  limits_.request_line_bytes_max = cfg.request_line_bytes_max;
  limits_.header_bytes_max = cfg.header_bytes_max;
  limits_.headers_max = cfg.headers_max;
  limits_.body_bytes_max = cfg.body_bytes_max;
  outbound_ring_options ring;
  ring.high_bytes = cfg.stream_high_bytes;
  ring.low_bytes = cfg.stream_low_bytes;
  ring.max_bytes = cfg.stream_max_bytes;
  if (ring.high_bytes != ring_options_.high_bytes || ring.low_bytes != ring_options_.low_bytes ||
      ring.max_bytes != ring_options_.max_bytes) {
    ring_options_ = ring;
    ring_pool_.clear();  // new streams get rings with the new watermarks
  }
  inbound_.set_budget_bytes(cfg.inbound_buffer_budget_bytes);
  scheduler_.set_limits(share_of(cfg.engine_concurrency_max), share_of(cfg.engine_queue_max),
                        cfg.shed_queue_delay_ms);
}

}  // namespace rc::server
