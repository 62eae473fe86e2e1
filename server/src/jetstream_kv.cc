// Key-value buckets on JetStream, laid out as NATS KV does (so the `nats kv` tool reads them):
// stream KV_<bucket>, one subject per key $KV.<bucket>.<key>, the last message of a subject is
// the key's value and its stream sequence the revision. A delete is a message with the header
// KV-Operation: DEL (PURGE from other clients means the same to a reader). Conditional writes use
// Nats-Expected-Last-Subject-Sequence (0: the key must not exist); a mismatch is JetStream's
// 10071 "wrong last sequence".
#include <algorithm>
#include <cerrno>

#include "core/reactor.h"
#include "jetstream_internal.h"
#include "proto/nats.h"
#include "server/nats_client.h"

namespace rc::server {

namespace {

constexpr int64_t duplicate_window_max_ms = 120'000;  // as the Go client: ≤ 2 min, ≤ the TTL

std::string kv_stream(std::string_view bucket) {
  return "KV_" + std::string(bucket);
}
std::string kv_subject(std::string_view bucket, std::string_view key) {
  return "$KV." + std::string(bucket) + "." + std::string(key);
}

// Whether a stored message's headers mark its key as deleted.
bool is_tombstone(std::string_view headers) {
  if (headers.empty()) return false;
  auto h = nats::header_block::parse(headers);
  if (!h) return false;
  std::string_view op = h->get("KV-Operation");
  return op == "DEL" || op == "PURGE";
}

js_kv_entry entry_of(js_stored_msg&& m) {
  js_kv_entry e;
  e.err = std::move(m.err);
  if (!e.err.ok() || !m.found) return e;
  e.revision = m.seq;
  if (is_tombstone(m.headers)) return e;
  e.found = true;
  e.value = std::move(m.data);
  return e;
}

}  // namespace

void jetstream::ensure_kv(std::string_view bucket, int64_t ttl_ms, int32_t max_value_size,
                          uint32_t replicas, unique_function<void(js_error&&)> done) {
  js_stream_config c;
  c.name = kv_stream(bucket);
  c.subjects = {"$KV." + std::string(bucket) + ".>"};
  c.history = 1;
  c.max_msgs_per_subject = c.history;
  c.max_age_ms = ttl_ms;
  c.max_msg_size = max_value_size;
  c.replicas = replicas;
  c.allow_rollup = true;
  c.deny_delete = true;  // as NATS KV (`nats kv add`): deletes are tombstone messages
  c.allow_direct = true;
  c.discard = "new";
  c.duplicate_window_ms =
      ttl_ms > 0 && ttl_ms < duplicate_window_max_ms ? ttl_ms : duplicate_window_max_ms;
  ensure_stream(
      c, [done = std::move(done)](js_stream_info&& info) mutable { done(std::move(info.err)); });
}

void jetstream::kv_get(std::string_view bucket, std::string_view key,
                       unique_function<void(js_kv_entry&&)> done) {
  get_last(kv_stream(bucket), kv_subject(bucket, key),
           [done = std::move(done)](js_stored_msg&& m) mutable { done(entry_of(std::move(m))); });
}

void jetstream::kv_write(std::string_view bucket, std::string_view key, std::string_view headers,
                         std::string_view value, unique_function<void(js_kv_entry&&)> done) {
  publish(kv_subject(bucket, key), headers, value,
          [done = std::move(done), value = std::string(value)](js_pub_ack&& ack) mutable {
            js_kv_entry e;
            e.err = std::move(ack.err);
            if (e.err.ok()) {
              e.found = true;
              e.revision = ack.seq;
              e.value = std::move(value);
            }
            done(std::move(e));
          });
}

void jetstream::kv_put(std::string_view bucket, std::string_view key, std::string_view value,
                       unique_function<void(js_kv_entry&&)> done) {
  kv_write(bucket, key, {}, value, std::move(done));
}

void jetstream::kv_update(std::string_view bucket, std::string_view key, std::string_view value,
                          uint64_t expected_revision, unique_function<void(js_kv_entry&&)> done) {
  std::string rev = std::to_string(expected_revision);
  kv_write(bucket, key, nats::make_headers({{"Nats-Expected-Last-Subject-Sequence", rev}}), value,
           std::move(done));
}

void jetstream::kv_create(std::string_view bucket, std::string_view key, std::string_view value,
                          unique_function<void(js_kv_entry&&)> done) {
  kv_update(bucket, key, value, 0,
            [this, bucket = std::string(bucket), key = std::string(key), value = std::string(value),
             done = std::move(done)](js_kv_entry&& e) mutable {
              if (e.err.err_code != js_err_wrong_last_sequence) {
                done(std::move(e));
                return;
              }
              // The subject has a message: a live key (refuse), or a delete marker, after which
              // the key may be created again (conditionally on that marker).
              kv_get(bucket, key,
                     [this, bucket, key, value, first = std::move(e),
                      done = std::move(done)](js_kv_entry&& cur) mutable {
                       if (!cur.err.ok() || cur.found || cur.revision == 0) {
                         done(std::move(first));
                         return;
                       }
                       kv_update(bucket, key, value, cur.revision, std::move(done));
                     });
            });
}

void jetstream::kv_delete(std::string_view bucket, std::string_view key,
                          unique_function<void(js_error&&)> done) {
  kv_write(bucket, key, nats::make_headers({{"KV-Operation", "DEL"}}), {},
           [done = std::move(done)](js_kv_entry&& e) mutable { done(std::move(e.err)); });
}

void jetstream::keys_walk::finish(js_error err) {
  js->reactor_.cancel_timer(deadline);
  if (consumer != 0) js->stop_consumer(consumer);
  consumer = 0;
  std::vector<std::string> out;
  if (err.ok()) out.assign(keys.begin(), keys.end());
  jetstream* j = js;
  for (auto it = j->walks_.begin(); it != j->walks_.end(); ++it) {
    if (it->get() != this) continue;
    std::unique_ptr<keys_walk> self = std::move(*it);  // this walk is freed on return
    j->walks_.erase(it);
    auto d = std::move(done);
    d(std::move(err), std::move(out));
    return;
  }
}

void jetstream::kv_keys(std::string_view bucket, std::string_view filter,
                        unique_function<void(js_error&&, std::vector<std::string>&&)> done) {
  auto w = std::make_unique<keys_walk>();
  keys_walk& walk = *w;
  walk.js = this;
  walk.done = std::move(done);
  std::string prefix = "$KV." + std::string(bucket) + ".";
  walk.prefix_len = prefix.size();
  walk.deadline.set_callback(
      [](timer&, void* ctx) {
        auto* self = static_cast<keys_walk*>(ctx);
        js_error e;
        e.error = self->deadline_error;
        e.description = e.error == ENOTCONN ? "not connected to NATS" : "listing the keys timed out";
        self->finish(std::move(e));
      },
      &walk);
  walks_.push_back(std::move(w));
  if (!nc_.connected()) {
    // As every request: fail at once (in a later turn) rather than wait for the deadline.
    walk.deadline_error = ENOTCONN;
    reactor_.arm_after_ms(walk.deadline, 0);
    return;
  }
  reactor_.arm_after_ms(walk.deadline, uint64_t(std::max<uint32_t>(api_timeout_ms_, 1000)) * 2);

  ordered_handlers h;
  h.on_msg = [&walk](const js_delivery& d) {
    if (d.subject.size() <= walk.prefix_len) return;
    std::string key(d.subject.substr(walk.prefix_len));
    if (is_tombstone(d.headers)) {
      walk.keys.erase(key);
    } else {
      walk.keys.insert(std::move(key));
    }
  };
  h.on_caught_up = [&walk] { walk.finish({}); };
  h.on_error = [&walk](const js_error& e) { walk.finish(e); };
  walk.consumer = consume_ordered_impl(
      kv_stream(bucket), prefix + (filter.empty() ? std::string(">") : std::string(filter)), 0,
      true, true, std::move(h));
}

}  // namespace rc::server
