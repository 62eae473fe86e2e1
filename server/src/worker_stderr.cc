// A worker's stderr in ringcast's log, rate-limited, and the graveyard of retired workers
// (worker_process.h).
#include "core/log.h"
#include "server/shard.h"
#include "worker_process.h"

namespace rc::server {

// ---- stderr ----

void worker_process::on_stderr(std::string_view bytes) {
  while (!bytes.empty()) {
    size_t nl = bytes.find('\n');
    std::string_view part = bytes.substr(0, nl);
    if (!err_line_cut_) {
      size_t room = stderr_line_max - err_line_.size();
      if (part.size() > room) {
        err_line_.append(part.substr(0, room));
        err_line_cut_ = true;
      } else {
        err_line_.append(part);
      }
    }
    if (nl == std::string_view::npos) return;
    if (!err_line_.empty() && err_line_.back() == '\r') err_line_.pop_back();
    log_stderr_line(err_line_);
    err_line_.clear();
    err_line_cut_ = false;
    bytes.remove_prefix(nl + 1);
  }
}

void worker_process::flush_suppressed() {
  if (err_suppressed_ == 0) return;
  RC_WARN("%s: %llu lines suppressed", tag_.c_str(), static_cast<unsigned long long>(err_suppressed_));
  err_suppressed_ = 0;
}

void worker_process::log_stderr_line(std::string_view line) {
  uint64_t now = shard_.loop().now_ms();
  uint64_t second = now / 1000;
  if (second != err_second_) {
    flush_suppressed();
    err_second_ = second;
    err_lines_this_second_ = 0;
  }
  if (err_lines_this_second_ >= cfg_->stderr_lines_per_s) {
    // Counted, and told when this second is over (even if the worker then falls silent).
    if (err_suppressed_++ == 0) shard_.loop().arm_after_ms(err_flush_, (second + 1) * 1000 - now);
    return;
  }
  ++err_lines_this_second_;
  RC_WARN("%s: %.*s", tag_.c_str(), static_cast<int>(line.size()), line.data());
}

// ---- retired workers ----

namespace {

class graveyard final : public worker_process::owner {
 public:
  std::vector<std::unique_ptr<worker_process>> workers;
  std::vector<std::unique_ptr<worker_process>> gone;
  timer sweep;

  graveyard() {
    sweep.set_callback([](timer&, void* ctx) { static_cast<graveyard*>(ctx)->gone.clear(); }, this);
  }
  void on_worker_ready(worker_process& w) override { w.stop(worker_restart_reason::exited, {}); }
  void on_worker_exit(worker_process& w, worker_restart_reason) override {
    for (size_t i = 0; i < workers.size(); ++i) {
      if (workers[i].get() == &w) {
        gone.push_back(std::move(workers[i]));
        workers.erase(workers.begin() + static_cast<ptrdiff_t>(i));
        if (shard_server* s = shard_server::current()) s->loop().arm_after_ms(sweep, 0);
        return;
      }
    }
  }
};

thread_local graveyard* t_graveyard = nullptr;

}  // namespace

void retire_worker(std::unique_ptr<worker_process> w) {
  if (!w || w->exited()) return;  // nothing runs: destroyed now
  // The loop has stopped (or is going): no exit would be reaped later. Kill and reap now.
  if (reactor* r = reactor::current(); !r || r->stopping() || !shard_server::current()) return;
  if (!t_graveyard) t_graveyard = new graveyard();
  w->set_owner(t_graveyard);
  w->stop(worker_restart_reason::exited, {});
  t_graveyard->workers.push_back(std::move(w));
}

size_t retiring_workers() { return t_graveyard ? t_graveyard->workers.size() : 0; }

void kill_retiring_workers() {
  if (!t_graveyard) return;
  // Destroying a running child kills its group and reaps it (core/process.h).
  delete t_graveyard;
  t_graveyard = nullptr;
}

}  // namespace rc::server
