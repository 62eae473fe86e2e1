// Rendering of the cluster metrics (cluster_metrics.h): one series per shard, no totals.
#include "server/cluster_metrics.h"

#include <charconv>
#include <string>

#include "server/metrics.h"
#include "server/prom_text.h"

namespace rc::server {
namespace {

void sample(byte_buffer& out, std::string_view name, std::string_view labels, size_t shard,
            double value) {
  out.append(name);
  out.push_back('{');
  if (!labels.empty()) {
    out.append(labels);
    out.push_back(',');
  }
  out.append("shard=\"");
  out.append(std::to_string(shard));
  out.append("\"} ");
  prom::value(out, value);
}

template <class Get>
void per_shard(byte_buffer& out, const std::vector<shard_metrics>& shards, std::string_view name,
               std::string_view labels, Get get) {
  for (size_t i = 0; i < shards.size(); ++i)
    if (shards[i].cluster.enabled) sample(out, name, labels, i, get(shards[i].cluster));
}

template <class Get>
void family(byte_buffer& out, const std::vector<shard_metrics>& shards, std::string_view name,
            std::string_view type, std::string_view help, Get get) {
  prom::family(out, name, type, help);
  per_shard(out, shards, name, {}, get);
}

void histogram(byte_buffer& out, const std::vector<shard_metrics>& shards, std::string_view name,
               std::string_view help) {
  prom::family(out, name, "histogram", help);
  std::string bucket = std::string(name) + "_bucket", sum = std::string(name) + "_sum",
              count = std::string(name) + "_count";
  for (size_t s = 0; s < shards.size(); ++s) {
    if (!shards[s].cluster.enabled) continue;
    const latency_histogram& h = shards[s].cluster.publish_latency;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < latency_histogram::bounds_us.size(); ++i) {
      cumulative += h.buckets[i];
      char le[32];
      auto [end, ec] = std::to_chars(le, le + sizeof le, latency_histogram::bounds_us[i] / 1e6);
      sample(out, bucket, "le=\"" + std::string(le, end) + "\"", s, double(cumulative));
    }
    sample(out, bucket, "le=\"+Inf\"", s, double(h.count));
    sample(out, sum, {}, s, h.sum_us / 1e6);
    sample(out, count, {}, s, double(h.count));
  }
}

}  // namespace

void render_cluster_metrics(const std::vector<shard_metrics>& shards, byte_buffer& out) {
  bool any = false;
  for (const shard_metrics& s : shards) any = any || s.cluster.enabled;
  if (!any) return;
  using cm = cluster_metrics;
  family(out, shards, "ringcast_cluster_available", "gauge",
         "1 when the shard can use NATS: connected, and the streams and buckets are ready.",
         [](const cm& m) { return m.available ? 1.0 : 0.0; });
  family(out, shards, "ringcast_nats_connected", "gauge", "1 while the shard's NATS connection is up.",
         [](const cm& m) { return m.connected ? 1.0 : 0.0; });
  family(out, shards, "ringcast_nats_reconnects_total", "counter",
         "NATS connections re-established after a loss.",
         [](const cm& m) { return double(m.reconnects); });
  prom::family(out, "ringcast_nats_messages_total", "counter",
               "NATS messages received (in) and sent (out).");
  per_shard(out, shards, "ringcast_nats_messages_total", "direction=\"in\"",
            [](const cm& m) { return double(m.msgs_in); });
  per_shard(out, shards, "ringcast_nats_messages_total", "direction=\"out\"",
            [](const cm& m) { return double(m.msgs_out); });
  prom::family(out, "ringcast_nats_bytes_total", "counter",
               "Payload bytes of NATS messages received (in) and sent (out).");
  per_shard(out, shards, "ringcast_nats_bytes_total", "direction=\"in\"",
            [](const cm& m) { return double(m.bytes_in); });
  per_shard(out, shards, "ringcast_nats_bytes_total", "direction=\"out\"",
            [](const cm& m) { return double(m.bytes_out); });
  family(out, shards, "ringcast_nats_pending_bytes", "gauge",
         "Bytes of publishes buffered while disconnected, sent on reconnection.",
         [](const cm& m) { return double(m.pending_bytes); });
  family(out, shards, "ringcast_nats_dropped_publishes_total", "counter",
         "Publishes refused because the buffer for disconnected times was full.",
         [](const cm& m) { return double(m.dropped_publishes); });
  histogram(out, shards, "ringcast_jetstream_publish_seconds",
            "Time from a JetStream publish to its acknowledgement.");
  family(out, shards, "ringcast_jetstream_pending_acks", "gauge",
         "JetStream publishes awaiting their acknowledgement.",
         [](const cm& m) { return double(m.pending_acks); });
  prom::family(out, "ringcast_jetstream_errors_total", "counter",
               "Failed JetStream publishes (kind publish) and API requests (kind api).");
  per_shard(out, shards, "ringcast_jetstream_errors_total", "kind=\"publish\"",
            [](const cm& m) { return double(m.publish_errors); });
  per_shard(out, shards, "ringcast_jetstream_errors_total", "kind=\"api\"",
            [](const cm& m) { return double(m.api_errors); });
  family(out, shards, "ringcast_jetstream_consumers_recreated_total", "counter",
         "Ordered consumers recreated after a gap, missed heartbeats or a reconnection.",
         [](const cm& m) { return double(m.consumers_recreated); });
}

}  // namespace rc::server
