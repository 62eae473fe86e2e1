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

}  // namespace rc::load
