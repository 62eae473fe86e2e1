// The streams and buckets the cluster ensures (cluster.h): ONE list, built from the
// configuration, that every part extends here. Shard 0 creates or updates each entry whenever its
// NATS connection is (re)established; every node computes the same list from the same settings.
#include <algorithm>
#include <cstdio>

#include "server/cluster.h"

namespace rc::server {

cluster_stores make_cluster_stores(const server_config& c) {
  cluster_stores out;
  auto stream = [&](std::string name, std::string subject) -> js_stream_config& {
    js_stream_config& s = out.streams.emplace_back();
    s.name = std::move(name);
    s.subjects.push_back(std::move(subject));
    s.storage = "file";
    s.retention = "limits";
    s.discard = "old";
    s.replicas = c.nats_replicas;
    return s;
  };

  // Topics (first, in class order: cluster::route_topic relies on it). Class 0: every topic no
  // --topic-retention entry matches, with the default retention; class i: the i-th entry.
  topic_retention defaults;
  for (size_t i = 0; i <= c.topic_retentions.size(); ++i) {
    const topic_retention& r = i == 0 ? defaults : c.topic_retentions[i - 1];
    // Subjects and description: set_topic_epoch, by the ensure pass.
    js_stream_config& s = stream("RC_T" + std::to_string(i), {});
    s.subjects.clear();
    s.max_age_ms = r.max_age_ms;
    s.max_msgs = r.max_msgs;
    s.max_bytes = r.max_bytes;
    s.max_msgs_per_subject = r.max_msgs_per_subject;
  }

  // Broker work: one message per accepted broker message until its terminal event is stored
  // (deleted then), deduplicated by Nats-Msg-Id. No age limit: accepted work is never dropped.
  {
    js_stream_config& s = stream(std::string(broker_work_stream), "rc.bq.>");
    s.duplicate_window_ms = 120'000;
  }
  // Broker lifecycle events, per message: kept as long as a finished message's log is.
  {
    js_stream_config& s = stream(std::string(broker_log_stream), "rc.bl.>");
    s.max_age_ms = int64_t{c.broker_retention_ms} + 3'600'000;
    s.max_msgs_per_subject = c.broker_log_events_max;
  }

  // Buckets: broker partition leases (an entry lives a lease unless renewed) and stored responses.
  out.buckets.push_back({std::string(owners_bucket), int64_t{c.broker_lease_ms}, 256});
  out.buckets.push_back({std::string(responses_bucket), int64_t{c.responses_ttl_s} * 1000, -1});
  return out;
}

std::string stream_epoch(uint64_t created_ns) {
  // FNV-1a over the 8 bytes, folded to 32 bits.
  uint64_t h = 0xcbf29ce484222325ULL;
  for (int i = 0; i < 8; ++i) {
    h ^= (created_ns >> (8 * i)) & 0xff;
    h *= 0x100000001b3ULL;
  }
  char out[9];
  std::snprintf(out, sizeof out, "%08x", static_cast<uint32_t>(h ^ (h >> 32)));
  return std::string(out, 8);
}

std::string described_epoch(std::string_view d) {
  if (!d.starts_with(epoch_description_prefix)) return {};
  std::string_view e = d.substr(epoch_description_prefix.size());
  bool hex = e.size() == 8 && std::all_of(e.begin(), e.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
             });
  return hex ? std::string(e) : std::string();
}

void set_topic_epoch(js_stream_config& s, uint32_t retention_class, std::string_view epoch) {
  s.description = std::string(epoch_description_prefix) + std::string(epoch);
  s.subjects = {"rc.t" + std::to_string(retention_class) + "." + std::string(epoch) + ".>"};
}

std::string stream_epoch(const js_stream_info& info) {
  if (std::string e = described_epoch(info.description); !e.empty()) return e;
  // A stream made without one (by hand, or by an older ringcast): its creation time, which is
  // stable only while its leader does not change.
  return stream_epoch(info.created_ns);
}

}  // namespace rc::server
