// chat_timing: what the chat modes (sse-chat, ws-chat) measure per stream, shared by both so
// the two transports are measured identically.
//
// A stream is one chat completion: begin() when its request is written, token() per content
// delta, done() when it ended. Time to first token is request-to-first-content-delta minus the
// mock engine's configured delay (--first-token-ms), i.e. what the server and the transport
// add; a first token sooner than that is recorded as 0 and counted. Gaps are between
// consecutive tokens of one stream; jitter is |gap - 1 s / --tokens-per-s| when that is given.
// Completed streams are the mode's completions (shard_env::record, latency = stream duration).
//
// Thread-safety: one per client thread.
#pragma once

#include <cstdint>
#include <string>

#include "load/env.h"

namespace rc::load {

struct stream_clock {
  uint64_t sent_ns = 0;
  uint64_t last_token_ns = 0;
  bool got_token = false;
  bool active = false;
};

class chat_timing {
 public:
  explicit chat_timing(shard_env& env);

  void begin(stream_clock& c, uint64_t now_ns) {
    c.sent_ns = now_ns;
    c.got_token = false;
    c.active = true;
  }
  void token(stream_clock& c, uint64_t now_ns);
  void done(stream_clock& c, uint64_t now_ns) {
    c.active = false;
    env_.record(now_ns, now_ns - c.sent_ns);
  }

  // The JSON of one streaming chat request (model, max_tokens, a short prompt).
  static std::string request_json(const load_options& o, bool stream_field);

 private:
  shard_env& env_;
  uint64_t first_token_ns_;
  uint64_t nominal_gap_ns_;  // 0: no jitter
};

// --stagger-ms: whether the `i`-th of `n` connections may start its loop at `now_ns`, the load
// having started at `start_ns`. Connection i starts i/n of the way into the stagger time, so a
// closed loop of equal streams does not tick in lockstep.
inline bool stagger_due(const load_options& o, uint64_t start_ns, size_t i, size_t n,
                        uint64_t now_ns) {
  if (o.stagger_ms <= 0 || n == 0) return true;
  auto offset =
      static_cast<uint64_t>(o.stagger_ms * 1e6 * static_cast<double>(i) / static_cast<double>(n));
  return now_ns - start_ns >= offset;
}

}  // namespace rc::load
