// driver: runs one client thread: builds its shard_env and worker, ticks every millisecond,
// follows run_control's phases, samples CPU time when the window opens and closes, and stops the
// reactor once the worker is finished and every socket is closed.
//
// Thread 0 also coordinates the run (run_control::coordinate), reads SIGINT/SIGTERM (they end
// the run early, with a report), and samples the server under test and this whole process at
// the window's edges into the run_watch, and the server at every timeline interval's end.
//
// Thread-safety: run_client_thread runs on its own client thread; the run_watch is written by
// thread 0 only and read by main after every thread has returned.
#pragma once

#include <cstdint>
#include <vector>

#include "core/reactor.h"
#include "load/mode.h"
#include "load/options.h"
#include "load/proc_stats.h"
#include "load/results.h"
#include "load/run_control.h"
#include "load/timeline.h"

namespace rc::load {

struct run_watch {
  uint64_t server_rss_before = 0;            // before any connection was opened (summed)
  std::vector<process_sample> server_start;  // when the window opened, per --server-pid
  std::vector<process_sample> server_end;    // when it closed
  std::vector<process_sample> aux_start;     // the same per --aux-pid
  std::vector<process_sample> aux_end;
  machine_sample machine_start;
  machine_sample machine_end;
  uint64_t process_cpu_start_ns = 0;
  uint64_t process_cpu_end_ns = 0;
  uint64_t wall_start_ns = 0;
  uint64_t wall_end_ns = 0;
};

void run_client_thread(reactor& r, unsigned index, unsigned count, const mode_spec& mode,
                       const load_options& opts, run_control& control, shard_results& results,
                       timeline& intervals, run_watch& watch);

}  // namespace rc::load
