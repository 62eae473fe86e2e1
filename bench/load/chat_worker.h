// chat_worker: what the sse-chat and ws-chat workers share, whatever the transport — open the
// thread's connections, start them one by one on the stagger schedule once the load runs
// (stagger_due), report drained when no stream is in flight, close everything at the end.
//
// A mode derives from chat_worker<Conn> and implements open(fd, global): make the connection
// and start it (it reports ready itself). Conn provides closed(), busy() (a stream in flight),
// close() and go(now_ns) (its turn to start streaming; it may not be open yet).
//
// Thread-safety: one worker per client thread, like every mode_worker.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "load/chat_timing.h"
#include "load/env.h"
#include "load/mode.h"

namespace rc::load {

template <class Conn>
class chat_worker : public mode_worker {
 public:
  explicit chat_worker(shard_env& env) : env_(env), timing_(env) {}

  void start() override {
    uint32_t n = env_.share_of(env_.opts.connections);
    conns_.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
      uint32_t global = env_.global_number(i);
      env_.connect(global, [this, global](int fd, int) {
        if (fd >= 0) conns_.push_back(open(fd, global));
      });
    }
  }

  void on_running(uint64_t now_ns) override {
    running_ = true;
    start_ns_ = now_ns;
    tick(now_ns);
  }

  // Starts each connection in its turn (see stagger_due); connections that came late too.
  void tick(uint64_t now_ns) override {
    if (!running_ || now_ns >= env_.control.window_end_ns()) return;
    while (started_ < conns_.size() &&
           stagger_due(env_.opts, start_ns_, started_, conns_.size(), now_ns)) {
      Conn& c = *conns_[started_++];
      if (!c.closed()) c.go(now_ns);
    }
  }

  bool drained(uint64_t) override {
    for (auto& c : conns_)
      if (!c->closed() && c->busy()) return false;
    return true;
  }

  void finish() override {
    env_.finishing = true;
    env_.connects.cancel_all();
    for (auto& c : conns_) c->close();
  }

  bool load_on(uint64_t now_ns) const { return running_ && now_ns < env_.control.window_end_ns(); }
  chat_timing& timing() { return timing_; }

 protected:
  virtual std::unique_ptr<Conn> open(int fd, uint32_t global) = 0;

  shard_env& env_;

 private:
  chat_timing timing_;
  bool running_ = false;
  uint64_t start_ns_ = 0;
  size_t started_ = 0;
  std::vector<std::unique_ptr<Conn>> conns_;
};

}  // namespace rc::load
