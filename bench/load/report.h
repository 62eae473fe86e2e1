// report: turns the merged results into the figures a reader needs, printed as text and
// optionally written as JSON, and decides the exit status.
//
// Honest by construction (STYLE.md item 12): next to throughput and latency it shows how busy
// both sides were. A thread-per-core program is saturated when its busiest thread is (>= 95% of
// a core over the window); when the client is, the throughput measures the client, and the
// figure that still says something about the server is its CPU time per operation.
//
// Thread-safety: main thread, after the client threads have returned.
#pragma once

#include <string>
#include <vector>

#include "load/driver.h"
#include "load/mode.h"
#include "load/options.h"
#include "load/results.h"
#include "load/run_control.h"
#include "load/timeline.h"

namespace rc::load {

struct report_input {
  const mode_spec& mode;
  const load_options& opts;
  const run_control& control;
  const std::vector<shard_results>& threads;
  const timeline& intervals;
  const run_watch& watch;
};

// Prints the report (and writes the JSON file when asked); returns the exit status: 0 when the
// run completed without functional errors, 1 otherwise.
int report(const report_input& in);

}  // namespace rc::load
