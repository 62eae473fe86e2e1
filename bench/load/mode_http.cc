// http: N keep-alive connections, each keeping `pipeline` GET requests in flight (closed loop:
// a response sends the next request). Latency is from queueing a request to the end of its
// response.
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "load/connection.h"
#include "load/env.h"
#include "load/mode.h"

namespace rc::load {
namespace {

class http_worker;

class http_conn final : public load_connection {
 public:
  http_conn(shard_env& env, int fd, http_worker& w);
  void start() {
    start_receiving();
    mark_ready();
  }
  void send_requests(uint32_t n, uint64_t now_ns);
  uint32_t in_flight() const { return static_cast<uint32_t>(sent_ - answered_); }

 private:
  void on_data(const char* data, size_t len) override;
  void on_response_done();

  http_worker& worker_;
  response_reader reader_;
  std::vector<uint64_t> sent_at_;  // ring of send times, one slot per pipelined request
  uint64_t sent_ = 0;
  uint64_t answered_ = 0;
};

class http_worker final : public mode_worker {
 public:
  explicit http_worker(shard_env& env) : env_(env) {
    request_ = "GET " + env.opts.path + " HTTP/1.1\r\nHost: " + env.opts.host_header + "\r\n";
    for (const auto& h : env.opts.headers) request_ += h + "\r\n";
    request_ += "\r\n";
  }

  void start() override {
    uint32_t n = env_.share_of(env_.opts.connections);
    conns_.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
      env_.connect(env_.global_number(i), [this](int fd, int) {
        if (fd < 0) return;
        conns_.push_back(std::make_unique<http_conn>(env_, fd, *this));
        conns_.back()->start();
        if (running_) conns_.back()->send_requests(env_.opts.pipeline, monotonic_ns());
      });
    }
  }

  void on_running(uint64_t now_ns) override {
    running_ = true;
    for (auto& c : conns_)
      if (!c->closed()) c->send_requests(env_.opts.pipeline, now_ns);
  }

  bool drained(uint64_t) override {
    for (auto& c : conns_)
      if (!c->closed() && c->in_flight() > 0) return false;
    return true;
  }

  void finish() override {
    env_.finishing = true;
    env_.connects.cancel_all();
    for (auto& c : conns_) c->close();
  }

  bool load_on(uint64_t now_ns) const { return running_ && now_ns < env_.control.window_end_ns(); }
  const std::string& request() const { return request_; }
  shard_env& env() { return env_; }

 private:
  shard_env& env_;
  std::string request_;
  bool running_ = false;
  std::vector<std::unique_ptr<http_conn>> conns_;
};

http_conn::http_conn(shard_env& env, int fd, http_worker& w)
    : load_connection(env, fd), worker_(w), sent_at_(env.opts.pipeline, 0) {}

void http_conn::send_requests(uint32_t n, uint64_t now_ns) {
  for (uint32_t i = 0; i < n && in_flight() < sent_at_.size(); ++i) {
    out().append(worker_.request());
    sent_at_[sent_ % sent_at_.size()] = now_ns;
    ++sent_;
  }
  flush();
}

void http_conn::on_data(const char* data, size_t len) {
  std::string_view in(data, len), body;
  for (;;) {
    switch (reader_.next(in, body)) {
      case response_reader::step::need_more:
        return;
      case response_reader::step::head:
        if (reader_.status() < 200 || reader_.status() >= 300) ++env_.results.errors.status;
        break;
      case response_reader::step::body:
        break;
      case response_reader::step::done:
        on_response_done();
        if (closed()) return;
        break;
      case response_reader::step::error:
        fail(conn_failure::protocol);
        return;
    }
  }
}

void http_conn::on_response_done() {
  if (in_flight() == 0) {
    fail(conn_failure::protocol);  // a response nobody asked for
    return;
  }
  uint64_t now = monotonic_ns();
  env_.record(now, now - sent_at_[answered_ % sent_at_.size()]);
  ++answered_;
  if (worker_.load_on(now)) send_requests(1, now);
}

std::string check(load_options& o) {
  if (o.pipeline == 0 || o.pipeline > 1024) return "--pipeline must be 1..1024";
  if (o.path.empty() || o.path[0] != '/') return "--path must start with /";
  return {};
}

uint64_t ready_target(const load_options& o) {
  return o.connections;
}

std::unique_ptr<mode_worker> make(shard_env& env) {
  return std::make_unique<http_worker>(env);
}

}  // namespace

constinit const mode_spec http_mode = {
    .name = "http",
    .summary = "keep-alive GET requests, optionally pipelined (closed loop)",
    .unit = "requests",
    .unit_one = "request",
    .kind = measure::throughput,
    .check = check,
    .ready_target = ready_target,
    .make_worker = make,
};

}  // namespace rc::load
