#include "load/results.h"

#include <algorithm>

namespace rc::load {

void error_counts::add(const error_counts& o) {
  connect += o.connect;
  not_ready += o.not_ready;
  handshake += o.handshake;
  closed += o.closed;
  protocol += o.protocol;
  status += o.status;
  mismatch += o.mismatch;
  server_error += o.server_error;
  publish += o.publish;
  seq_gap += o.seq_gap;
  seq_missing += o.seq_missing;
  seq_duplicate += o.seq_duplicate;
  incomplete += o.incomplete;
  incomplete_missing += o.incomplete_missing;
  publish_unanswered += o.publish_unanswered;
}

void stream_measures::merge(const stream_measures& o) {
  ttft_overhead.merge(o.ttft_overhead);
  token_gap.merge(o.token_gap);
  token_jitter.merge(o.token_jitter);
  tokens += o.tokens;
  tokens_total += o.tokens_total;
  ttft_early += o.ttft_early;
  ttft_early_max_ns = std::max(ttft_early_max_ns, o.ttft_early_max_ns);
  flow_pauses += o.flow_pauses;
  admitted += o.admitted;
  rejected_429 += o.rejected_429;
  rejected_503 += o.rejected_503;
  enqueue_admitted.merge(o.enqueue_admitted);
  enqueue_rejected.merge(o.enqueue_rejected);
  to_processing.merge(o.to_processing);
  to_done.merge(o.to_done);
  streams_opened += o.streams_opened;
  streams_skipped += o.streams_skipped;
  streams_refused += o.streams_refused;
  burst_max = std::max(burst_max, o.burst_max);
  unsent += o.unsent;
}

std::string_view hist_name(hist_id id) {
  switch (id) {
    case hist_id::latency:
      return "latency";
    case hist_id::ttft_overhead:
      return "ttft_overhead";
    case hist_id::token_gap:
      return "token_gap";
    case hist_id::token_jitter:
      return "token_jitter";
    case hist_id::enqueue_admitted:
      return "enqueue_admitted";
    case hist_id::enqueue_rejected:
      return "enqueue_rejected";
    case hist_id::to_processing:
      return "to_processing";
    case hist_id::to_done:
      return "to_done";
  }
  return "?";
}

histogram& shard_results::histogram_of(hist_id id) {
  return const_cast<histogram&>(static_cast<const shard_results&>(*this).histogram_of(id));
}

const histogram& shard_results::histogram_of(hist_id id) const {
  switch (id) {
    case hist_id::latency:
      return latency;
    case hist_id::ttft_overhead:
      return streams.ttft_overhead;
    case hist_id::token_gap:
      return streams.token_gap;
    case hist_id::token_jitter:
      return streams.token_jitter;
    case hist_id::enqueue_admitted:
      return streams.enqueue_admitted;
    case hist_id::enqueue_rejected:
      return streams.enqueue_rejected;
    case hist_id::to_processing:
      return streams.to_processing;
    case hist_id::to_done:
      return streams.to_done;
  }
  return latency;
}

void shard_results::merge(const shard_results& o) {
  latency.merge(o.latency);
  ops += o.ops;
  ops_total += o.ops_total;
  errors.add(o.errors);
  for (auto [err, n] : o.connect_errnos) connect_errnos[err] += n;
  for (auto [err, n] : o.closed_errnos) closed_errnos[err] += n;
  for (auto [code, n] : o.ws_close_codes) ws_close_codes[code] += n;
  recv_buffer_waits += o.recv_buffer_waits;
  ws_wire_bytes_in += o.ws_wire_bytes_in;
  ws_messages_in += o.ws_messages_in;
  ws_payload_bytes_in += o.ws_payload_bytes_in;
  loop_turns += o.loop_turns;
  published += o.published;
  publish_acked += o.publish_acked;
  publish_lag_max_ns = std::max(publish_lag_max_ns, o.publish_lag_max_ns);
  streams.merge(o.streams);
}

}  // namespace rc::load
