#include "server/responses_cluster.h"

#include <limits>

#include "core/clock.h"
#include "core/log.h"
#include "server/cluster.h"
#include "server/generation.h"
#include "server/jetstream.h"
#include "server/metrics.h"
#include "server/nats_client.h"
#include "server/prom_text.h"
#include "server/responses_record.h"
#include "server/shard.h"

namespace rc::server {
namespace {

// Room for the PUB line and headers next to a record within the server's max_payload.
constexpr size_t record_headroom_bytes = 1024;
constexpr uint64_t warning_interval_ms = 10'000;

responses_kv_stats& stats(shard_server& s) {
  return s.metrics().responses_kv;
}

// Logs a bucket failure, at most once per warning_interval_ms per shard (failures are counted).
void warn(shard_server& s, const char* what, std::string_view id, std::string_view why) {
  uint64_t now = monotonic_ms();
  auto& side = s.responses().cluster();
  if (side.last_warning_ms != 0 && now - side.last_warning_ms < warning_interval_ms) return;
  side.last_warning_ms = now;
  RC_WARN("responses: %s %.*s in bucket %.*s failed: %.*s (further failures for 10 s only counted)",
          what, static_cast<int>(id.size()), id.data(), static_cast<int>(responses_bucket.size()),
          responses_bucket.data(), static_cast<int>(why.size()), why.data());
}

std::string describe(const js_error& e) {
  if (!e.description.empty()) return e.description;
  if (e.error != 0) return "transport error " + std::to_string(e.error);
  return "status " + std::to_string(e.status);
}

// Bucket keys are NATS subject tokens; our ids always are, a client's guess might not be.
bool valid_key(std::string_view id) {
  if (id.empty() || id.size() > 256) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '=';
    if (!ok) return false;
  }
  return true;
}

size_t record_bytes_max(cluster& c) {
  size_t max = c.nats().max_payload();
  return max > record_headroom_bytes ? max - record_headroom_bytes : 0;
}

// Subscribes this shard to deletions announced by other nodes, once: only shards that hold
// responses (they wrote or read one through) need to hear of them.
void listen_for_deletions(shard_server& s, cluster& c) {
  auto& side = s.responses().cluster();
  if (side.listening) return;
  side.listening = true;
  c.nats().subscribe(std::string(responses_deleted_subject), {},
                     [&s](const nats_msg& m) { s.responses().erase(std::string(m.data)); });
}

}  // namespace

void responses_kv_stats::merge(const responses_kv_stats& o) {
  hits += o.hits;
  misses += o.misses;
  lookup_errors += o.lookup_errors;
  writes += o.writes;
  write_errors += o.write_errors;
  writes_too_large += o.writes_too_large;
  deletes += o.deletes;
  delete_errors += o.delete_errors;
}

int response_home(std::string_view id, unsigned shard_count) {
  constexpr unsigned encoded_max = 1u << 20;
  int encoded = shard_of_id(id, "resp_", encoded_max);
  if (encoded < 0 || shard_count == 0) return -1;
  return static_cast<int>(static_cast<unsigned>(encoded) % shard_count);
}

void responses_write_through(shard_server& s, const std::string& id,
                             const std::vector<turn>& conversation,
                             const openai::response_object& response,
                             const std::vector<openai::input_item>& input) {
  cluster* c = s.cluster_link();
  if (!c) return;
  auto& side = s.responses().cluster();
  if (!c->available() || side.writes_in_flight >= responses_kv_writes_in_flight_max) {
    ++stats(s).write_errors;
    warn(s, "storing", id, c->available() ? "too many writes in flight" : c->unavailable_reason());
    return;
  }
  std::string record;
  encode_response_record(conversation, response, input, record);
  if (record.size() > record_bytes_max(*c)) {
    ++stats(s).writes_too_large;
    warn(s, "storing", id, "the response is larger than the NATS server's max_payload");
    return;
  }
  listen_for_deletions(s, *c);
  ++side.writes_in_flight;
  c->js().kv_put(responses_bucket, id, record, [&s, id](js_kv_entry&& e) {
    --s.responses().cluster().writes_in_flight;
    if (e.err.ok()) {
      ++stats(s).writes;
      return;
    }
    ++stats(s).write_errors;
    warn(s, "storing", id, describe(e.err));
  });
}

void responses_localize(shard_server& s, const std::string& id,
                        unique_function<void(kv_lookup)> done) {
  if (s.responses().contains(id)) {
    done(kv_lookup::found);
    return;
  }
  cluster* c = s.cluster_link();
  if (!c || !valid_key(id)) {
    done(kv_lookup::not_found);
    return;
  }
  if (!c->available()) {
    ++stats(s).lookup_errors;
    done(kv_lookup::unavailable);
    return;
  }
  size_t bytes_max = record_bytes_max(*c);
  c->js().kv_get(responses_bucket, id,
                 [&s, c, id, bytes_max, done = std::move(done)](js_kv_entry&& e) mutable {
                   if (!e.err.ok()) {
                     ++stats(s).lookup_errors;
                     warn(s, "reading", id, describe(e.err));
                     done(kv_lookup::unavailable);
                     return;
                   }
                   if (!e.found) {
                     ++stats(s).misses;
                     done(kv_lookup::not_found);
                     return;
                   }
                   stored_response r;
                   record_error err = decode_response_record(e.value, bytes_max, r);
                   if (err == record_error::none && r.response.id != id)
                     err = record_error::bad_value;
                   if (err != record_error::none) {
                     // Not something a ringcast node wrote (or written by a newer one): as good as
                     // absent.
                     ++stats(s).lookup_errors;
                     warn(s, "reading", id, to_string(err));
                     done(kv_lookup::not_found);
                     return;
                   }
                   ++stats(s).hits;
                   listen_for_deletions(s, *c);
                   // Another request may have read it through meanwhile (and may hold it busy):
                   // keep that one.
                   if (!s.responses().contains(id)) {
                     s.responses().put(id, std::move(r.conversation), std::move(r.response),
                                       std::move(r.input));
                   }
                   done(kv_lookup::found);
                 });
}

void responses_delete(shard_server& s, const std::string& id, unique_function<void(bool)> done) {
  cluster* c = s.cluster_link();
  if (!c) {
    s.responses().erase(id);
    done(true);
    return;
  }
  if (!c->available()) {
    ++stats(s).delete_errors;
    done(false);
    return;
  }
  c->js().kv_delete(responses_bucket, id,
                    [&s, c, id, done = std::move(done)](js_error&& e) mutable {
                      if (!e.ok()) {
                        ++stats(s).delete_errors;
                        warn(s, "deleting", id, describe(e));
                        done(false);
                        return;
                      }
                      ++stats(s).deletes;
                      s.responses().erase(id);
                      // Other nodes may hold a copy read through earlier. Best effort: a node cut
                      // off from NATS right now keeps its copy until its store forgets it.
                      c->nats().publish(responses_deleted_subject, {}, {}, id);
                      done(true);
                    });
}

openai::api_error responses_nats_unavailable() {
  openai::api_error e = openai::invalid_request(
      "The stored response is on another node and the cluster store (NATS) is unreachable. "
      "Please retry your request later.",
      std::nullopt, "nats_unavailable");
  e.status = 503;
  e.type = "server_error";
  return e;
}

uint64_t responses_retry_after_ms(shard_server& s) {
  cluster* c = s.cluster_link();
  return c ? c->retry_after_ms() : 1000;
}

void render_responses_kv_metrics(const std::vector<shard_metrics>& shards, byte_buffer& out) {
  bool clustered = false;
  for (const shard_metrics& s : shards) clustered = clustered || s.cluster.enabled;
  if (!clustered) return;
  struct family {
    std::string_view name, help;
    std::vector<std::pair<std::string_view, uint64_t responses_kv_stats::*>> results;
  };
  const family families[] = {
      {"ringcast_responses_kv_lookups_total",
       "Stored responses looked up in the cluster bucket after a local miss, by result.",
       {{"hit", &responses_kv_stats::hits},
        {"miss", &responses_kv_stats::misses},
        {"error", &responses_kv_stats::lookup_errors}}},
      {"ringcast_responses_kv_writes_total",
       "Stored responses written to the cluster bucket, by result.",
       {{"ok", &responses_kv_stats::writes},
        {"error", &responses_kv_stats::write_errors},
        {"too_large", &responses_kv_stats::writes_too_large}}},
      {"ringcast_responses_kv_deletes_total",
       "Stored responses deleted from the cluster bucket, by result.",
       {{"ok", &responses_kv_stats::deletes}, {"error", &responses_kv_stats::delete_errors}}},
  };
  for (const family& f : families) {
    prom::family(out, f.name, "counter", f.help);
    for (size_t shard = 0; shard < shards.size(); ++shard) {
      for (const auto& [result, member] : f.results) {
        out.append(f.name);
        out.append("{shard=\"");
        out.append(std::to_string(shard));
        out.append("\",result=\"");
        out.append(result);
        out.append("\"} ");
        prom::value(out, static_cast<double>(shards[shard].responses_kv.*member));
      }
    }
  }
}

}  // namespace rc::server
