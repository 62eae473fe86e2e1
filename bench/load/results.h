// shard_results: what one client thread measured and counted. Each thread writes only its own;
// main merges them after every thread has returned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string_view>

#include "load/histogram.h"

namespace rc::load {

// Functional failures. Any of them makes the run fail (exit 1), except the sequence and loss
// counters under --allow-loss.
struct error_counts {
  uint64_t connect = 0;        // connects that failed (reasons in connect_errnos)
  uint64_t not_ready = 0;      // connections not ready by the ready deadline
  uint64_t handshake = 0;      // upgrade or stream response refused or malformed
  uint64_t closed = 0;         // connections the server closed or reset during the run
  uint64_t protocol = 0;       // malformed responses or frames
  uint64_t status = 0;         // HTTP responses other than 2xx
  uint64_t mismatch = 0;       // ws-echo: an echo that differs from what was sent
  uint64_t server_error = 0;   // WebSocket `error` events
  uint64_t publish = 0;        // publications refused or answered unexpectedly
  uint64_t seq_gap = 0;        // fanout: gaps in a subscriber's sequence numbers
  uint64_t seq_missing = 0;    // ... and the publications missing in them
  uint64_t seq_duplicate = 0;  // fanout: sequence numbers repeated or going backwards
  uint64_t incomplete = 0;     // fanout: subscribers short of the last publication at the end
  uint64_t incomplete_missing = 0;
  uint64_t publish_unanswered = 0;  // fanout: publications still unanswered at the end

  void add(const error_counts& o);
  // Failures that --allow-loss tolerates.
  uint64_t loss() const { return seq_gap + seq_duplicate + incomplete + publish_unanswered; }
  uint64_t hard() const {
    return connect + not_ready + handshake + closed + protocol + status + mismatch + server_error +
           publish;
  }
};

struct cpu_window {
  uint64_t start_ns = 0;  // thread CPU time when the window opened
  uint64_t end_ns = 0;
  uint64_t wall_start_ns = 0;
  uint64_t wall_end_ns = 0;
  bool complete() const { return wall_end_ns > wall_start_ns; }
};

// The chat modes' (sse-chat, ws-chat) and the broker mode's own measurements. Histograms and
// counts keep only what happened inside the window, like shard_results::latency.
struct stream_measures {
  // sse-chat, ws-chat: per stream.
  histogram ttft_overhead;         // first content token - request sent - --first-token-ms
  histogram token_gap;             // between consecutive tokens of one stream
  histogram token_jitter;          // |gap - 1 s / --tokens-per-s| (only with --tokens-per-s)
  uint64_t tokens = 0;             // content tokens received in the window
  uint64_t tokens_total = 0;       // ... during the whole run
  uint64_t ttft_early = 0;         // first tokens sooner than --first-token-ms (recorded as 0)
  uint64_t ttft_early_max_ns = 0;  // ... by at most this much
  uint64_t flow_pauses = 0;        // ws-chat: flow.pause events
  // broker: enqueue answers by outcome, and latency from request to response.
  uint64_t admitted = 0;  // 202
  uint64_t rejected_429 = 0;
  uint64_t rejected_503 = 0;
  histogram enqueue_admitted;
  histogram enqueue_rejected;
  // broker: streams opened after a 202: from the 202 to `processing`, and to `done`.
  histogram to_processing;
  histogram to_done;
  uint64_t streams_opened = 0;   // whole run
  uint64_t streams_skipped = 0;  // wanted, but every stream connection was busy
  uint64_t streams_refused = 0;  // answered 429 or 503
  uint64_t unsent = 0;           // broker: due but not sent (every connection closed or full)
  uint64_t burst_max = 0;        // broker: most requests sent in one pace step

  void merge(const stream_measures& o);
};

// The run's latency histograms by name (the JSON report's "histograms" and timeline keys):
// latency is the mode's completion latency (shard_results::latency), the others are
// stream_measures'.
enum class hist_id : uint8_t {
  latency,
  ttft_overhead,
  token_gap,
  token_jitter,
  enqueue_admitted,
  enqueue_rejected,
  to_processing,
  to_done,
};
constexpr size_t hist_count = 8;
std::string_view hist_name(hist_id id);

struct shard_results {
  histogram latency;       // per completion inside the window, nanoseconds
  uint64_t ops = 0;        // completions inside the window
  uint64_t ops_total = 0;  // completions during the whole run
  error_counts errors;
  std::map<int, uint64_t> connect_errnos;
  std::map<int, uint64_t> closed_errnos;   // why connections closed (0: the server's FIN)
  std::map<int, uint64_t> ws_close_codes;  // close frames the server sent (0: without a code)
  cpu_window cpu;
  uint64_t recv_buffer_waits = 0;
  // WebSocket bytes received after the handshake (whole run): on the wire, and data messages
  // with their payload bytes (inflated, with --deflate).
  uint64_t ws_wire_bytes_in = 0;
  uint64_t ws_messages_in = 0;
  uint64_t ws_payload_bytes_in = 0;
  uint64_t loop_turns = 0;
  // fanout publisher (one thread only)
  uint64_t published = 0;
  uint64_t publish_acked = 0;
  uint64_t publish_lag_max_ns = 0;  // how far behind its schedule the publisher fell
  stream_measures streams;

  void merge(const shard_results& o);
  // The whole-window histogram called `id`.
  histogram& histogram_of(hist_id id);
  const histogram& histogram_of(hist_id id) const;
};

}  // namespace rc::load
