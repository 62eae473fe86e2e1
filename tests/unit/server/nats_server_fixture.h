// Test helpers for NATS: a real `nats-server` process on a free loopback port (optionally with
// JetStream in a temporary store directory, or with token / user-password auth), which tests can
// kill and restart on the same port; and a one-shard loop that runs nats_clients until the test
// says it is done, then stops them cleanly.
//
//   test::nats_server_options so;
//   so.jetstream = true;                      // -js -sd <a temporary directory>
//   test::nats_server_process srv(so);
//   ASSERT_TRUE(srv.start()) << srv.log();
//   test::run_nats([&](test::nats_loop& run) {
//     nats_client& c = run.client(run.options_for(srv));
//     ... run.done(); ...
//   });
//
// nats-server is a required dependency (scripts/setup installs it): a missing binary fails the
// test, it does not skip it.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/shard_group.h"
#include "core/stream_socket.h"
#include "core/uring.h"
#include "server/nats_client.h"
#include "server/resolver.h"

extern char** environ;

namespace rc::server::test {

inline bool nats_uring_usable() {
  uring_support s;
  return probe_uring(s).empty();
}

// A loopback port nobody listens on right now.
inline uint16_t free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline bool port_accepts(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

struct nats_server_options {
  bool jetstream = false;
  std::string store_dir;  // JetStream store; empty: a fresh temporary directory (removed after)
  std::string token;      // --auth
  std::string user, password;
  std::vector<std::string> extra_args;
  std::string binary = "nats-server";
};

class nats_server_process {
 public:
  explicit nats_server_process(nats_server_options o = {}) : o_(std::move(o)) {
    port_ = free_loopback_port();
    char tmpl[] = "/tmp/rc-nats-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    if (o_.store_dir.empty()) o_.store_dir = dir_ + "/js";
  }
  ~nats_server_process() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  nats_server_process(const nats_server_process&) = delete;
  nats_server_process& operator=(const nats_server_process&) = delete;

  // Spawns the server (again, on the same port after stop()/kill()) and waits until it accepts
  // connections (at most wait_ms). False (see log()) if it did not come up.
  bool start(int wait_ms = 15000) {
    if (pid_ > 0) return true;
    std::vector<std::string> args = {
        o_.binary, "-a", "127.0.0.1", "-p", std::to_string(port_), "--no_advertise"};
    if (o_.jetstream) {
      args.insert(args.end(), {"-js", "-sd", o_.store_dir});
    }
    if (!o_.token.empty()) args.insert(args.end(), {"--auth", o_.token});
    if (!o_.user.empty()) args.insert(args.end(), {"--user", o_.user, "--pass", o_.password});
    args.insert(args.end(), o_.extra_args.begin(), o_.extra_args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    std::string log_path = dir_ + "/server.log";
    posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid = 0;
    int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return false;
    pid_ = pid;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (port_accepts(port_)) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // SIGTERM (a clean shutdown: JetStream flushes its store), then SIGKILL after 5 s.
  void stop() { end(SIGTERM); }
  // SIGKILL: the server vanishes at once (connections reset).
  void kill() { end(SIGKILL); }
  bool running() const { return pid_ > 0; }

  uint16_t port() const { return port_; }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  const std::string& dir() const { return dir_; }
  const nats_server_options& options() const { return o_; }
  std::string log() const {
    std::ifstream f(dir_ + "/server.log");
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }

 private:
  void end(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    for (int i = 0; i < 500; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  nats_server_options o_;
  uint16_t port_ = 0;
  std::string dir_;
  pid_t pid_ = -1;
};

// One shard running nats_clients. Everything in the body runs on the loop.
class nats_loop {
 public:
  reactor* loop = nullptr;
  socket_set* sockets = nullptr;
  resolver* names = nullptr;
  std::function<void()> done;  // ends the test: stops every client, then the loop

  // A client owned by the loop, started at once; stopped and destroyed after done().
  nats_client& client(nats_options o) {
    clients.push_back(std::make_unique<nats_client>(*loop, *sockets, *names, std::move(o)));
    clients.back()->start();
    return *clients.back();
  }
  // Options for a client of `srv` with quick reconnects (tests kill and restart servers).
  static nats_options options_for(const nats_server_process& srv) {
    nats_options o;
    o.urls = {srv.url()};
    o.name = "test";
    o.reconnect_min_ms = 20;
    o.reconnect_max_ms = 200;
    o.token = srv.options().token;
    o.user = srv.options().user;
    o.password = srv.options().password;
    return o;
  }
  // Runs fn on the loop after delay_ms.
  void later(uint64_t delay_ms, std::function<void()> fn) {
    auto t = std::make_unique<one_shot>();
    t->fn = std::move(fn);
    t->t.bind<one_shot, &one_shot::fire>(t.get());
    loop->arm_after_ms(t->t, delay_ms);
    timers.push_back(std::move(t));
  }
  // Calls fn every period_ms until it returns true (then stops polling).
  void poll(uint64_t period_ms, std::function<bool()> fn) {
    later(period_ms, [this, period_ms, fn = std::move(fn)]() mutable {
      if (!fn()) poll(period_ms, std::move(fn));
    });
  }

  struct one_shot {
    timer t;
    std::function<void()> fn;
    void fire() {
      auto f = std::move(fn);
      f();
    }
  };
  std::vector<std::unique_ptr<nats_client>> clients;
  std::vector<std::unique_ptr<one_shot>> timers;
};

// Runs body on a fresh shard; fails the test if done() is not called within limit_ms.
inline void run_nats(const std::function<void(nats_loop&)>& body, uint32_t limit_ms = 30000) {
  shard_group_options o;
  o.shards = 1;
  o.reactor.ring.sq_entries = 256;
  o.reactor.ring.cq_entries = 4096;
  o.reactor.buffers.count = 64;
  o.reactor.buffers.buffer_bytes = 16384;
  bool finished = false;
  auto err = run_shards(o, [&](reactor& r) {
    socket_set sockets(r);
    resolver names(r);
    nats_loop run;
    run.loop = &r;
    run.sockets = &sockets;
    run.names = &names;
    size_t stopping = 0;
    auto stop_all = [&] {
      stopping = run.clients.size();
      if (stopping == 0) {
        r.stop();
        return;
      }
      for (auto& c : run.clients)
        c->stop([&] {
          if (--stopping == 0) r.stop();
        });
    };
    run.done = [&] {
      if (finished) return;
      finished = true;
      run.later(0, stop_all);
    };
    run.later(limit_ms, [&] {
      if (finished) return;
      ADD_FAILURE() << "the test did not finish within " << limit_ms << " ms";
      run.done();
      finished = false;
      // Clients that cannot stop either: give up on them (the loop must end).
      run.later(5000, [&] { r.stop(); });
    });
    body(run);
    r.run();
    if (stopping != 0) {
      // A client that never finished stopping cannot be destroyed safely: leak it (the test
      // has failed already).
      for (auto& c : run.clients) (void)c.release();
    }
    run.clients.clear();
    run.timers.clear();
  });
  EXPECT_EQ(err, "");
  EXPECT_TRUE(finished) << "the test did not finish within " << limit_ms << " ms";
}

}  // namespace rc::server::test
