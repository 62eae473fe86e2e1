#include "core/shard_group.h"

#include <signal.h>

#include <barrier>
#include <memory>
#include <mutex>
#include <thread>

#include "base/assert.h"
#include "core/cpu.h"
#include "core/log.h"

namespace rc {

void block_process_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

std::string run_shards(const shard_group_options& opts,
                       const std::function<void(reactor&)>& shard_main) {
  RC_ASSERT(opts.shards >= 1);
  RC_ASSERT(opts.cpus.empty() || opts.cpus.size() >= opts.shards);
  block_process_signals();
  mailbox_hub hub(opts.shards, opts.mailbox_capacity);

  // Start-up is the one place where shards synchronise with locks; it is not a hot path.
  std::mutex error_mutex;
  std::string first_error;
  std::barrier ready(static_cast<std::ptrdiff_t>(opts.shards));

  auto shard_thread = [&](unsigned id) {
    log::set_thread_shard(static_cast<int>(id));
    if (!opts.cpus.empty()) {
      if (std::string err = cpu::pin_this_thread(opts.cpus[id]); !err.empty()) RC_WARN("%s", err.c_str());
    }
    std::string err;
    std::unique_ptr<reactor> r;
    try {
      r = std::make_unique<reactor>(id, hub, opts.reactor);
      err = r->init();
    } catch (const std::exception& e) {
      err = e.what();
    }
    if (!err.empty()) {
      std::lock_guard lock(error_mutex);
      if (first_error.empty()) first_error = err;
    }
    ready.arrive_and_wait();
    {
      std::lock_guard lock(error_mutex);
      if (!first_error.empty()) return;
    }
    shard_main(*r);
  };

  std::vector<std::thread> threads;
  threads.reserve(opts.shards);
  for (unsigned i = 1; i < opts.shards; ++i) threads.emplace_back(shard_thread, i);
  shard_thread(0);  // the main thread is shard 0
  for (auto& t : threads) t.join();
  log::set_thread_shard(-1);
  return first_error;
}

}  // namespace rc
