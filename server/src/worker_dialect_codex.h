// The `codex-app-server` worker dialect, internals shared by worker_dialect_codex.cc,
// codex_messages.cc, codex_threads.cc and their unit tests (the public entry is make_codex_dialect in
// server/worker_dialect.h; docs/workers.md "The codex-app-server dialect").
//
// Codex's app server speaks JSON-RPC without the "jsonrpc" member, one JSON object per line.
// Per request ringcast starts a thread (thread/start: the upstream model, approval policy
// "never", sandbox "read-only", ephemeral, the request's system/developer turns as
// developerInstructions; `thread_params` merged over these defaults), puts the earlier turns of
// the conversation into it (thread/inject_items, as Responses message items) and starts a turn
// with the last user turn(s) as input (turn/start). Codex's notifications carry the threadId,
// which is the routing key. item/agentMessage/delta → delta; thread/tokenUsage/updated of the
// turn → summed into usage; turn/completed → done(stop) + usage, or the mapped error. cancel →
// turn/interrupt. Requests codex sends to its client (approvals, user input) are declined.
//
// Retained threads (`retain_threads = true`): a Responses request gets a persistent thread whose
// id is remembered under the response's id (bounded, oldest forgotten first). A request naming
// that response as previous_response_id resumes the thread (thread/resume, after which only the
// new turns are sent) instead of replaying the history; the entry is taken out while the turn
// runs, so two follow-ups of one response never share a thread (the second one replays). After
// each turn the thread is unsubscribed (unloaded from the worker), so any worker sharing the
// CODEX_HOME can resume it next time.
//
// Thread-safety: the dialect and its calls belong to one shard; thread_store is shared by every
// dialect made for one upstream_config and takes a mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/engine.h"
#include "server/worker_dialect.h"
#include "server/worker_errors.h"

namespace rc::server::codex {

struct settings {
  std::string thread_params;     // a JSON object merged into thread/start params ("" none)
  bool retain_threads = false;
  size_t retained_max = 10000;   // remembered threads per upstream
};

// A retained thread: its id, and how many conversation turns (instructions excluded, the
// assistant's answer included) it already holds.
struct retained_thread {
  std::string thread_id;
  size_t turns = 0;
};

class thread_store {
 public:
  explicit thread_store(size_t max) : max_(max) {}
  // Removes and returns the thread kept under `response_id`.
  std::optional<retained_thread> take(std::string_view response_id);
  void put(std::string response_id, retained_thread t);
  size_t size() const;

 private:
  mutable std::mutex mu_;
  size_t max_;
  std::unordered_map<std::string, retained_thread> by_response_;
  std::deque<std::string> order_;  // insertion order, for forgetting the oldest
};

// The store shared by every dialect of one upstream config (created by the first).
std::shared_ptr<thread_store> store_for(const void* config_key, size_t max);

// ---- messages (codex_messages.cc) ----

// Instructions: the text of the conversation's system and developer turns, joined.
std::string instructions_of(const std::vector<turn>& conversation);
// The conversation's turns that are not instructions.
std::vector<turn> dialogue_of(const std::vector<turn>& conversation);
// How many trailing turns of `dialogue` go into turn/start (the final run of user turns, or the
// last turn when the dialogue does not end with one); the rest is injected history.
size_t input_turns(const std::vector<turn>& dialogue);

std::string thread_start_params(const settings& s, std::string_view model,
                                std::string_view instructions, bool ephemeral);
std::string thread_resume_params(const settings& s, std::string_view thread_id,
                                 std::string_view model, std::string_view instructions);
// turns [from, to) of `dialogue`.
std::string inject_items_params(std::string_view thread_id, const std::vector<turn>& dialogue,
                                size_t from, size_t to);
std::string turn_start_params(std::string_view thread_id, const std::vector<turn>& dialogue,
                              size_t from);
std::string thread_only_params(std::string_view thread_id);                    // unsubscribe
std::string interrupt_params(std::string_view thread_id, std::string_view turn_id);

// The answer to a request codex sent its client (approvals and the like): a decline, or an
// error when the method has no way to decline. Writes the whole message.
void write_decline(const jsonrpc::message& m, std::string& json_out);
// A failed turn's TurnError object (raw JSON) → the client's error.
worker_failure failure_from_turn_error(std::string_view turn_error_json);

std::unique_ptr<worker_dialect> make_dialect(const void* config_key, settings s);

}  // namespace rc::server::codex
