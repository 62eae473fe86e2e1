// fanout: the worker that owns a thread's subscribers (and, on thread 0, the publisher), and the
// mode's spec. See fanout.h for what is measured.
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/clock.h"
#include "load/fanout.h"
#include "load/fanout_dialect.h"
#include "load/mode.h"

namespace rc::load {
namespace {

class fanout_worker final : public mode_worker {
 public:
  explicit fanout_worker(shard_env& env) : env_(env), ctx_(env) {
    if (env.index == 0) {
      pub_ = make_publisher(env);
      // Publish just before this turn's sends are submitted (see client_socket_set).
      env.sockets.set_before_flush([this] { pub_->pump(monotonic_ns()); });
    }
  }

  void start() override {
    total_ = env_.share_of(env_.opts.connections);
    subs_.reserve(total_);
    connect_more();
    if (pub_) pub_->start();
  }

  void on_running(uint64_t now_ns) override {
    if (pub_) pub_->on_running(now_ns);
  }

  void tick(uint64_t now_ns) override {
    if (issued_ < total_) connect_more();
    if (pub_) pub_->pump(now_ns);
  }

  bool drained(uint64_t) override {
    if (pub_ && !pub_->settled()) return false;
    if (!env_.control.final_seq_known()) return false;
    uint64_t final_seq = env_.control.final_seq();
    for (auto& s : subs_)
      if (!s->connection().closed() && s->seq().last() < final_seq) return false;
    return true;
  }

  void finish() override {
    if (pub_) pub_->finish();
    if (env_.control.final_seq_known()) {
      uint64_t final_seq = env_.control.final_seq();
      uint64_t final_count = env_.control.final_count();
      error_counts& e = env_.results.errors;
      for (auto& s : subs_) {
        if (s->connection().closed() || !s->connection().ready()) continue;
        uint64_t missing = s->seq().shortfall(final_seq, final_count, env_.opts.sparse_seq);
        if (missing == 0) continue;
        if (s->seq().last() >= final_seq) {
          // Sparse numbers: it got the last one but fewer than were published.
          ++e.seq_gap;
          e.seq_missing += missing;
        } else {
          ++e.incomplete;
          e.incomplete_missing += missing;
        }
      }
    }
    env_.finishing = true;
    env_.connects.cancel_all();
    for (auto& s : subs_) s->connection().close();
  }

 private:
  // Connects subscribers: all at once, or with --subscribe-concurrency N at most N (per
  // thread) connecting or subscribing at a time (counted conservatively: those before the
  // first one still in progress).
  void connect_more() {
    uint32_t limit = env_.opts.subscribe_concurrency;
    if (limit > 0) {
      while (settled_ < subs_.size() &&
             (subs_[settled_]->connection().ready() || subs_[settled_]->connection().closed()))
        ++settled_;
    }
    while (issued_ < total_ && (limit == 0 || issued_ - failed_connects_ - settled_ <
                                                  std::max(1u, limit / env_.count))) {
      uint32_t global = env_.global_number(issued_++);
      env_.connect(global, [this, global](int fd, int) {
        if (fd < 0) {
          ++failed_connects_;
          return;
        }
        subs_.push_back(make_subscriber(ctx_, fd, 0x9e3779b97f4a7c15 * (global + 1)));
        subs_.back()->start();
      });
    }
  }

  shard_env& env_;
  fanout_context ctx_;
  std::unique_ptr<publisher> pub_;
  std::vector<std::unique_ptr<subscriber>> subs_;
  uint32_t total_ = 0;            // this thread's subscribers
  uint32_t issued_ = 0;           // connects asked for
  uint32_t failed_connects_ = 0;  // ... that failed
  size_t settled_ = 0;            // subs_[0, settled_) are ready or closed
};

std::string check(load_options& o) {
  if (o.rate < 0) return "--rate must be >= 0 (0: closed loop)";
  if (o.rate == 0 && o.window == 0) return "--window must be at least 1";
  if (o.pub_inflight == 0) return "--pub-inflight must be at least 1";
  if (o.payload_bytes > (1u << 20)) return "--payload-bytes must be at most 1 MiB";
  if (self_numbered(o.dialect) && o.pub != pub_protocol::http)
    return "--dialect " + std::string(dialect_name(o.dialect)) +
           " publishes over HTTP only: use --pub http";
  if (o.topic.empty()) {
    // A fresh topic per run: its sequence starts at 1 and nobody else publishes to it.
    std::random_device rd;
    o.topic = "load-" + std::to_string(getpid()) + "-" + std::to_string(rd() % 1000000);
  }
  for (char c : o.topic) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == ':';
    if (!ok) return "--topic may only contain letters, digits and _ - . :";
  }
  return {};
}

// The subscribers and the publisher.
uint64_t ready_target(const load_options& o) {
  return uint64_t{o.connections} + 1;
}

std::unique_ptr<mode_worker> make(shard_env& env) {
  return std::make_unique<fanout_worker>(env);
}

}  // namespace

constinit const mode_spec fanout_mode = {
    .name = "fanout",
    .summary = "one publisher, N subscribers (WS or SSE) on one topic; publish-to-deliver latency",
    .unit = "deliveries",
    .unit_one = "delivery",
    .kind = measure::throughput,
    .check = check,
    .ready_target = ready_target,
    .make_worker = make,
};

}  // namespace rc::load
