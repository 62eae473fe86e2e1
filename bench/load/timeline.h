// timeline: the measured window cut into intervals of --timeline-ms, for the JSON report's
// "timeline": per interval, completions, errors, the server's CPU and RSS (--server-pid), and
// count/p50/p99/max of every latency histogram (results.h, hist_id) with samples in it.
//
// Interval k covers [window_start + k*I, min(window_start + (k+1)*I, window_end)); the last one
// may be shorter. Each client thread has a timeline_writer holding the histograms of its current
// interval; a sample is placed by its own timestamp, and a sample that comes later than one of
// a newer interval (timestamps taken out of order) counts in the newer one. When a thread
// passes an interval's end (a later sample, or its 1 ms tick) it submits that interval to the
// shared timeline, which merges the threads' histograms and, once every thread has submitted,
// keeps only the summary. Memory is therefore bounded by the number of intervals (at most
// max_points, checked by main) times a small summary, plus a few histograms in flight;
// nothing grows with the number of samples.
//
// Thread-safety: timeline's member functions lock its mutex (a thread calls them once per
// interval); finish() and points() are for main after every thread has returned.
// timeline_writer: one per client thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "load/histogram.h"
#include "load/results.h"
#include "load/run_control.h"

namespace rc::load {

struct latency_summary {
  uint64_t count = 0;
  uint64_t p50 = 0;
  uint64_t p99 = 0;
  uint64_t max = 0;
};

struct timeline_point {
  uint64_t end_ns = 0;     // since the window opened
  uint64_t length_ns = 0;  // of the interval
  uint64_t ops = 0;
  uint64_t errors = 0;
  std::optional<double> server_cpu_cores;
  std::optional<uint64_t> server_rss_bytes;
  std::array<latency_summary, hist_count> latencies{};
  unsigned submitted = 0;  // threads that submitted it
};

class timeline {
 public:
  // More intervals than this in one window are refused (main checks --duration/--timeline-ms).
  static constexpr uint64_t max_points = 100'000;

  timeline(unsigned threads, uint64_t interval_ns, uint64_t duration_ns);

  uint64_t interval_ns() const { return interval_ns_; }
  uint64_t intervals() const { return points_.size(); }
  // Interval k's end, in ns since the window opened.
  uint64_t end_of(uint64_t k) const { return std::min((k + 1) * interval_ns_, duration_ns_); }
  // The interval `since_start_ns` (>= 0, inside the window) falls in.
  uint64_t index_of(uint64_t since_start_ns) const {
    return std::min<uint64_t>(since_start_ns / interval_ns_, points_.size() - 1);
  }

  // A thread's interval k: its completions, errors and histograms (entries may be null; each
  // is left as it was).
  void submit(uint64_t k, uint64_t ops, uint64_t errors,
              const std::array<histogram*, hist_count>& hists);
  // Thread 0: the server's CPU (cores) and RSS over interval k.
  void set_server(uint64_t k, std::optional<double> cores, std::optional<uint64_t> rss);
  // Main, after the threads: summarises intervals not every thread submitted (an aborted run).
  void finish();
  // The intervals at least one thread submitted, in order.
  std::vector<timeline_point> points() const;

 private:
  struct pending {
    uint64_t k = 0;
    std::array<std::unique_ptr<histogram>, hist_count> hists;
  };
  pending& pending_for(uint64_t k);
  void summarise(pending& p);

  unsigned threads_;
  uint64_t interval_ns_;
  uint64_t duration_ns_;
  mutable std::mutex mu_;
  std::vector<timeline_point> points_;
  std::vector<pending> pending_;                   // intervals some threads have yet to submit
  std::vector<std::unique_ptr<histogram>> spare_;  // cleared histograms for reuse
};

class timeline_writer {
 public:
  timeline_writer(timeline& t, const run_control& c, const error_counts& errors);

  // A sample of histogram `id` at `now_ns`, which is inside the window.
  void sample(hist_id id, uint64_t now_ns, uint64_t value) {
    advance(now_ns);
    if (current_ >= shared_.intervals()) return;
    histogram*& h = hists_[static_cast<size_t>(id)];
    if (!h) h = own(id);
    h->record(value);
  }
  // A completion at `now_ns`, inside the window.
  void count_op(uint64_t now_ns) {
    advance(now_ns);
    if (current_ < shared_.intervals()) ++ops_;
  }
  // Every tick: submits the intervals that have ended by `now_ns`.
  void tick(uint64_t now_ns) { advance(now_ns); }

 private:
  void advance(uint64_t now_ns) {
    uint64_t start = control_.window_start_ns();
    if (now_ns < start) {
      errors_base_ = errors_.hard() + errors_.loss();
      return;
    }
    while (current_ < shared_.intervals() && now_ns - start >= shared_.end_of(current_))
      submit_current();
  }
  void submit_current();
  histogram* own(hist_id id);

  timeline& shared_;
  const run_control& control_;
  const error_counts& errors_;
  uint64_t current_ = 0;
  uint64_t ops_ = 0;
  uint64_t errors_base_ = 0;
  std::array<histogram*, hist_count> hists_{};  // the current interval's; null: no samples
  std::array<std::unique_ptr<histogram>, hist_count> owned_;
};

}  // namespace rc::load
