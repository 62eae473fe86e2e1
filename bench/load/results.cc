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

void shard_results::merge(const shard_results& o) {
  latency.merge(o.latency);
  ops += o.ops;
  ops_total += o.ops_total;
  errors.add(o.errors);
  for (auto [err, n] : o.connect_errnos) connect_errnos[err] += n;
  for (auto [err, n] : o.closed_errnos) closed_errnos[err] += n;
  for (auto [code, n] : o.ws_close_codes) ws_close_codes[code] += n;
  recv_buffer_waits += o.recv_buffer_waits;
  loop_turns += o.loop_turns;
  published += o.published;
  publish_acked += o.publish_acked;
  publish_lag_max_ns = std::max(publish_lag_max_ns, o.publish_lag_max_ns);
}

}  // namespace rc::load
