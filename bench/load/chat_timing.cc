#include "load/chat_timing.h"

#include <algorithm>
#include <cmath>

#include "base/byte_buffer.h"
#include "proto/json_writer.h"

namespace rc::load {

chat_timing::chat_timing(shard_env& env)
    : env_(env),
      first_token_ns_(static_cast<uint64_t>(std::llround(env.opts.first_token_ms * 1e6))),
      nominal_gap_ns_(env.opts.tokens_per_s > 0
                          ? static_cast<uint64_t>(std::llround(1e9 / env.opts.tokens_per_s))
                          : 0) {}

void chat_timing::token(stream_clock& c, uint64_t now_ns) {
  stream_measures& m = env_.results.streams;
  ++m.tokens_total;
  bool in_window = env_.control.in_window(now_ns);
  if (in_window) ++m.tokens;
  if (!c.got_token) {
    c.got_token = true;
    c.last_token_ns = now_ns;
    if (!in_window) return;
    uint64_t ttft = now_ns - c.sent_ns;
    if (ttft < first_token_ns_) {
      ++m.ttft_early;
      m.ttft_early_max_ns = std::max(m.ttft_early_max_ns, first_token_ns_ - ttft);
    }
    env_.sample(hist_id::ttft_overhead, now_ns,
                ttft > first_token_ns_ ? ttft - first_token_ns_ : 0);
    return;
  }
  uint64_t gap = now_ns - c.last_token_ns;
  c.last_token_ns = now_ns;
  if (!in_window) return;
  env_.sample(hist_id::token_gap, now_ns, gap);
  if (nominal_gap_ns_ > 0)
    env_.sample(hist_id::token_jitter, now_ns,
                gap > nominal_gap_ns_ ? gap - nominal_gap_ns_ : nominal_gap_ns_ - gap);
}

std::string chat_timing::request_json(const load_options& o, bool stream_field) {
  byte_buffer b;
  json::writer w(b);
  w.begin_object();
  w.string_member("model", o.model);
  if (stream_field) w.boolean_member("stream", true);
  w.uint64_member("max_tokens", o.max_tokens);
  w.key("messages");
  w.begin_array();
  w.begin_object();
  w.string_member("role", "user");
  w.string_member("content", "Say something.");
  w.end_object();
  w.end_array();
  w.end_object();
  return std::string(b.view());
}

}  // namespace rc::load
