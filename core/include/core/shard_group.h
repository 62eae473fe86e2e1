// shard_group: starts one pinned thread per shard, each with its own reactor, and waits for them.
//
// Start-up is two-phase: every thread creates its ring (the ring belongs to the thread that
// creates it) and publishes its fd in the mailbox hub; only when all rings exist does any shard
// run application code, so the first message a shard sends can always ring its target. If any
// shard fails to start (io_uring unavailable, say), none runs and run() returns the message.
//
// SIGINT, SIGTERM, SIGHUP, SIGUSR1 and SIGPIPE are blocked in every shard thread: termination,
// reload and log-reopen signals are read through a signalfd on shard 0 (see signal_reader), and
// SIGPIPE never kills the process (sends use MSG_NOSIGNAL anyway).
//
// Thread-safety: run() is called once, from the main thread.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/reactor.h"

namespace rc {

struct shard_group_options {
  unsigned shards = 1;
  std::vector<int> cpus;  // cpus[i] pins shard i; empty: don't pin
  reactor_options reactor;
  size_t mailbox_capacity = 4096;  // messages per (from, to) queue; a power of two
};

// Runs `shard_main(r)` on every shard once its reactor is ready; shard_main is expected to set up
// the shard and call r.run(). Returns empty when every shard returned, else the start-up error.
std::string run_shards(const shard_group_options& opts,
                       const std::function<void(reactor&)>& shard_main);

// Blocks SIGINT, SIGTERM, SIGHUP, SIGUSR1 and SIGPIPE in the calling thread (threads it creates
// inherit this).
void block_process_signals();

}  // namespace rc
