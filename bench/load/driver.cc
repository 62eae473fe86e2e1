#include "load/driver.h"

#include <signal.h>

#include <memory>
#include <optional>
#include <vector>

#include "core/clock.h"
#include "core/listener.h"
#include "core/log.h"
#include "load/env.h"

namespace rc::load {
namespace {

// Closing sockets takes a turn or two; past this, something is stuck and we leave anyway.
constexpr uint64_t close_wait_ns = 5'000'000'000;

class thread_driver {
 public:
  thread_driver(reactor& r, unsigned index, unsigned count, const mode_spec& mode,
                const load_options& opts, run_control& control, shard_results& results,
                timeline& intervals, run_watch& watch)
      : loop_(r),
        env_(r, index, count, opts, control, results, intervals),
        timeline_(intervals),
        worker_(mode.make_worker(env_)),
        watch_(watch) {
    tick_.bind<thread_driver, &thread_driver::on_tick>(this);
    if (index == 0) {
      signals_ = std::make_unique<signal_reader>(r, [this](int signo) {
        env_.control.abort(signo == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)");
      });
      if (std::string err = signals_->start(); !err.empty()) RC_WARN("%s", err.c_str());
    }
  }

  // Whether everything closed, so that destroying the driver frees nothing the kernel still uses.
  bool clean() const {
    return env_.sockets.open_sockets() == 0 && env_.connects.idle() &&
           (!signals_ || signals_->stopped());
  }

  void run() {
    worker_->start();
    loop_.arm_after_ms(tick_, 1);
    loop_.run();
    env_.results.loop_turns = loop_.stats().loop_turns;
    env_.results.recv_buffer_waits = loop_.stats().recv_buffer_waits;
  }

 private:
  void on_tick();
  void sample_window(uint64_t now_ns);
  void sample_server_interval(uint64_t now_ns);
  void begin_finish(uint64_t now_ns);

  reactor& loop_;
  shard_env env_;
  timeline& timeline_;
  std::unique_ptr<mode_worker> worker_;
  run_watch& watch_;
  std::unique_ptr<signal_reader> signals_;
  timer tick_;
  bool running_ = false;
  bool window_opened_ = false;
  bool window_closed_ = false;
  bool finishing_ = false;
  uint64_t close_deadline_ns_ = 0;
  // Thread 0: the timeline interval whose server figures come next, and the previous sample.
  uint64_t server_interval_ = 0;
  std::vector<process_sample> server_prev_;
};

void thread_driver::on_tick() {
  uint64_t now = monotonic_ns();
  run_control& c = env_.control;
  if (env_.index == 0) c.coordinate(now);
  phase p = c.current();
  if (!running_ && (p == phase::running || p == phase::draining)) {
    running_ = true;
    worker_->on_running(now);
  }
  sample_window(now);
  env_.intervals.tick(now);
  if (env_.index == 0) sample_server_interval(now);
  worker_->tick(now);
  if (!finishing_) {
    bool out_of_time =
        p == phase::draining && now >= c.window_end_ns() + env_.opts.drain_ms * 1'000'000ull;
    if (p == phase::aborted || out_of_time || (p == phase::draining && worker_->drained(now)))
      begin_finish(now);
  }
  if (finishing_) {
    bool closed = clean();
    if (closed || now >= close_deadline_ns_) {
      if (!closed) RC_WARN("connections still closing after 5 s; leaving them");
      loop_.stop();
      return;
    }
  }
  loop_.arm_after_ms(tick_, 1);
}

void thread_driver::begin_finish(uint64_t now_ns) {
  finishing_ = true;
  close_deadline_ns_ = now_ns + close_wait_ns;
  worker_->finish();
  if (signals_) signals_->stop();
}

void thread_driver::sample_window(uint64_t now_ns) {
  run_control& c = env_.control;
  bool thread0 = env_.index == 0;
  auto sample_all = [](const std::vector<int>& pids, std::vector<process_sample>& out) {
    out.clear();
    for (int pid : pids) out.push_back(sample_process(pid));
  };
  if (!window_opened_ && now_ns >= c.window_start_ns()) {
    window_opened_ = true;
    env_.results.cpu.start_ns = thread_cpu_ns();
    env_.results.cpu.wall_start_ns = now_ns;
    if (thread0) {
      watch_.process_cpu_start_ns = process_cpu_ns();
      watch_.wall_start_ns = now_ns;
      watch_.machine_start = sample_machine();
      sample_all(env_.opts.server_pids, watch_.server_start);
      sample_all(env_.opts.aux_pids, watch_.aux_start);
    }
  }
  if (window_opened_ && !window_closed_ && now_ns >= c.window_end_ns()) {
    window_closed_ = true;
    env_.results.cpu.end_ns = thread_cpu_ns();
    env_.results.cpu.wall_end_ns = now_ns;
    if (thread0) {
      watch_.process_cpu_end_ns = process_cpu_ns();
      watch_.wall_end_ns = now_ns;
      watch_.machine_end = sample_machine();
      sample_all(env_.opts.server_pids, watch_.server_end);
      sample_all(env_.opts.aux_pids, watch_.aux_end);
    }
  }
}

void thread_driver::sample_server_interval(uint64_t now_ns) {
  const std::vector<int>& pids = env_.opts.server_pids;
  uint64_t start = env_.control.window_start_ns();
  if (pids.empty() || !window_opened_ || server_interval_ >= timeline_.intervals() ||
      now_ns - start < timeline_.end_of(server_interval_))
    return;
  if (server_prev_.empty()) server_prev_ = watch_.server_start;
  std::vector<process_sample> now;
  for (int pid : pids) now.push_back(sample_process(pid));
  std::optional<double> cores;
  std::optional<uint64_t> rss;
  if (group_usage g = group_usage_between(server_prev_, now); g.ok && g.total.wall_s > 0) {
    cores = g.total.cpu_s / g.total.wall_s;
    uint64_t sum = 0;
    for (const process_sample& p : now) sum += p.rss_bytes;
    rss = sum;
  }
  // A late tick may have passed several ends: they share the figures.
  while (server_interval_ < timeline_.intervals() &&
         now_ns - start >= timeline_.end_of(server_interval_))
    timeline_.set_server(server_interval_++, cores, rss);
  server_prev_ = std::move(now);
}

}  // namespace

void run_client_thread(reactor& r, unsigned index, unsigned count, const mode_spec& mode,
                       const load_options& opts, run_control& control, shard_results& results,
                       timeline& intervals, run_watch& watch) {
  auto d = std::make_unique<thread_driver>(r, index, count, mode, opts, control, results, intervals,
                                           watch);
  d->run();
  // A driver whose sockets never finished closing is left behind rather than destroyed under the
  // kernel's feet; the process is about to exit anyway.
  if (!d->clean()) (void)d.release();
}

}  // namespace rc::load
