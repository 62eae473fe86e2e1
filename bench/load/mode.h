// Modes: what load ringcast-load generates. Each mode is one mode_spec in the table of modes.cc
// and one worker class in its own file; main, the per-thread driver and the report know nothing
// mode-specific. Adding a mode is: write mode_<name>.cc with a
// worker and a spec, list the spec in modes.cc, add its options to options.h and main.cc.
//
// A worker runs on one client thread and owns that thread's share of the connections. The
// driver calls it in this order: start() (open connections; report each as ready or failed to
// run_control exactly once), on_running() when every thread may start the load, tick() every
// millisecond throughout, drained() repeatedly once the window has closed, finish() at the end
// (count what is still missing, close every connection). It records completions with
// shard_env::record(), which keeps only those inside the measured window.
//
// Thread-safety: a worker lives and dies on its thread; it shares only run_control.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "load/options.h"

namespace rc::load {

struct shard_env;

class mode_worker {
 public:
  virtual ~mode_worker() = default;
  virtual void start() = 0;
  virtual void on_running(uint64_t now_ns) = 0;
  virtual void tick(uint64_t now_ns) { (void)now_ns; }
  virtual bool drained(uint64_t now_ns) = 0;
  virtual void finish() = 0;
};

// What a mode's count means: completions per second, or connections held through the window
// (where only the count and the server's memory matter).
enum class measure : uint8_t { throughput, holding };

struct mode_spec {
  std::string_view name;
  std::string_view summary;
  std::string_view unit;      // what completions are called: "requests", "messages", ...
  std::string_view unit_one;  // ... and one of them: "request", "message", ...
  measure kind;
  // Checks the mode's settings and fills in derived ones; returns an error or empty.
  std::string (*check)(load_options& opts);
  // How many ready reports the run waits for (connections, plus helpers like a publisher).
  uint64_t (*ready_target)(const load_options& opts);
  std::unique_ptr<mode_worker> (*make_worker)(shard_env& env);
};

std::span<const mode_spec* const> all_modes();
const mode_spec* find_mode(std::string_view name);

// The specs, defined in each mode's file.
extern const mode_spec http_mode;
extern const mode_spec ws_echo_mode;
extern const mode_spec fanout_mode;
extern const mode_spec ws_idle_mode;
extern const mode_spec sse_chat_mode;
extern const mode_spec ws_chat_mode;
extern const mode_spec broker_mode;

}  // namespace rc::load
