#include "load/timeline.h"

#include <algorithm>

namespace rc::load {

timeline::timeline(unsigned threads, uint64_t interval_ns, uint64_t duration_ns)
    : threads_(threads),
      interval_ns_(std::max<uint64_t>(interval_ns, 1)),
      duration_ns_(std::max<uint64_t>(duration_ns, 1)) {
  uint64_t n = (duration_ns_ + interval_ns_ - 1) / interval_ns_;
  points_.resize(std::min(n, max_points));
  for (uint64_t k = 0; k < points_.size(); ++k) {
    points_[k].end_ns = end_of(k);
    points_[k].length_ns = end_of(k) - k * interval_ns_;
  }
}

timeline::pending& timeline::pending_for(uint64_t k) {
  for (pending& p : pending_)
    if (p.k == k) return p;
  pending_.emplace_back();
  pending_.back().k = k;
  return pending_.back();
}

void timeline::submit(uint64_t k, uint64_t ops, uint64_t errors,
                      const std::array<histogram*, hist_count>& hists) {
  std::lock_guard lock(mu_);
  if (k >= points_.size()) return;
  timeline_point& point = points_[k];
  point.ops += ops;
  point.errors += errors;
  pending& p = pending_for(k);
  for (size_t i = 0; i < hist_count; ++i) {
    if (!hists[i] || hists[i]->count() == 0) continue;
    if (!p.hists[i]) {
      if (spare_.empty()) {
        p.hists[i] = std::make_unique<histogram>();
      } else {
        p.hists[i] = std::move(spare_.back());
        spare_.pop_back();
      }
    }
    p.hists[i]->merge(*hists[i]);
  }
  if (++point.submitted < threads_) return;
  summarise(p);
  pending_.erase(pending_.begin() + (&p - pending_.data()));
}

void timeline::summarise(pending& p) {
  timeline_point& point = points_[p.k];
  for (size_t i = 0; i < hist_count; ++i) {
    if (!p.hists[i]) continue;
    const histogram& h = *p.hists[i];
    point.latencies[i] = {h.count(), h.percentile(50), h.percentile(99), h.max()};
    p.hists[i]->clear();
    spare_.push_back(std::move(p.hists[i]));
  }
}

void timeline::set_server(uint64_t k, std::optional<double> cores, std::optional<uint64_t> rss) {
  std::lock_guard lock(mu_);
  if (k >= points_.size()) return;
  points_[k].server_cpu_cores = cores;
  points_[k].server_rss_bytes = rss;
}

void timeline::finish() {
  std::lock_guard lock(mu_);
  for (pending& p : pending_) summarise(p);
  pending_.clear();
  spare_.clear();
}

std::vector<timeline_point> timeline::points() const {
  std::lock_guard lock(mu_);
  std::vector<timeline_point> out;
  for (const timeline_point& p : points_)
    if (p.submitted > 0) out.push_back(p);
  return out;
}

timeline_writer::timeline_writer(timeline& t, const run_control& c, const error_counts& errors)
    : shared_(t), control_(c), errors_(errors) {}

histogram* timeline_writer::own(hist_id id) {
  auto& h = owned_[static_cast<size_t>(id)];
  if (!h) h = std::make_unique<histogram>();
  return h.get();
}

void timeline_writer::submit_current() {
  uint64_t errors = errors_.hard() + errors_.loss();
  shared_.submit(current_, ops_, errors - errors_base_, hists_);
  errors_base_ = errors;
  ops_ = 0;
  for (histogram*& h : hists_) {
    if (h) h->clear();
    h = nullptr;
  }
  ++current_;
}

}  // namespace rc::load
