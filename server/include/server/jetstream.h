// jetstream: the NATS JetStream API by request/reply over one shard's nats_client.
//
// Everything here is a JSON request to "$JS.API.<...>" answered through the client's shared
// inbox (nats_client::request), or a publish whose reply is JetStream's ack:
// * streams: ensure_stream (CREATE; when the server answers "stream name already in use with a
//   different configuration", UPDATE), stream_info;
// * messages: publish with ack (headers such as Nats-Msg-Id for deduplication or
//   Nats-Expected-Last-Subject-Sequence for optimistic concurrency), STREAM.MSG.GET by sequence
//   or last by subject, STREAM.MSG.DELETE;
// * ordered push consumers (jetstream_ordered.cc): ephemeral, ack none, flow control, idle
//   heartbeats; every message once and in stream order, recreated from the last delivered stream
//   sequence + 1 on a consumer-sequence gap, on missed heartbeats and after a reconnect;
// * key-value buckets (jetstream_kv.cc) as NATS KV lays them out: stream KV_<bucket>, subjects
//   $KV.<bucket>.<key>, the revision is the stream sequence, a KV-Operation: DEL / PURGE header
//   marks a deleted key.
//
// Errors are values (js_error): a transport error (errno-style: ETIMEDOUT, ENOTCONN while
// disconnected, ENOBUFS when the client has too many requests in flight or a full send queue
// (retry later, like ENOTCONN), EHOSTUNREACH when nothing answers the subject, ECANCELED when
// the client stops, EPROTO for an unreadable answer), or the API's own {code, err_code,
// description}.
//
// Callbacks: every `done` is called exactly once and never from inside the call that started
// it — except after the jetstream object is destroyed: then pending callbacks are dropped
// without being called.
//
// Thread-safety: a jetstream belongs to the shard of its nats_client (it uses that shard's
// reactor for its timers); every method on that shard's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/timer_wheel.h"
#include "core/unique_function.h"
#include "server/latency_histogram.h"

namespace rc {
class reactor;
}
namespace rc::nats {
struct header_block;
}

namespace rc::server {

class nats_client;
struct nats_reply;
struct nats_msg;

// JetStream API error codes the callers test for.
inline constexpr uint32_t js_err_stream_name_in_use = 10058;
inline constexpr uint32_t js_err_stream_not_found = 10059;
inline constexpr uint32_t js_err_no_message_found = 10037;
inline constexpr uint32_t js_err_wrong_last_sequence = 10071;
inline constexpr uint32_t js_err_consumer_not_found = 10014;

struct js_error {
  int error = 0;   // errno-style transport error (see above), 0 when the request got an answer
  int status = 0;  // the API error's HTTP-like code (404, 400, 503...), 0 on success
  uint32_t err_code = 0;  // the JetStream API error code (js_err_*), 0 on success
  std::string description;
  bool ok() const { return error == 0 && err_code == 0 && status < 400; }
};

struct js_stream_info;

struct js_stream_config {
  std::string name;
  std::vector<std::string> subjects;
  std::string retention = "limits";  // limits | interest | workqueue
  std::string storage = "file";      // file | memory
  int64_t max_age_ms = 0;            // 0: unlimited
  int64_t max_msgs = -1;
  int64_t max_bytes = -1;
  int64_t max_msgs_per_subject = -1;
  int32_t max_msg_size = -1;
  uint32_t replicas = 1;
  uint32_t history = 1;  // KV buckets only: ensure_kv sets max_msgs_per_subject from it
  bool allow_direct = true;
  bool allow_rollup = false;
  bool deny_delete = false;
  std::string discard = "old";      // old | new
  int64_t duplicate_window_ms = 0;  // 0: the server's default (2 min, or max_age if shorter)
  // Free text kept in the stream's configuration (replicated: every server answers the same).
  // ensure_stream never replaces the description of a stream that already has one, so the first
  // creator's value wins a creation race (the cluster keeps each topic stream's epoch there).
  std::string description;
  // When set, ensure_stream calls it on the configuration before bringing an existing stream to
  // it (instead of keeping the existing description): it may take values from `existing`.
  std::function<void(js_stream_config&, const js_stream_info& existing)> adapt;
};

struct js_stream_info {
  js_error err;
  // The stream's creation time (ns since the Unix epoch) as the answering server knows it: in a
  // cluster each replica records its own, so it changes with the stream's leader.
  uint64_t created_ns = 0;
  std::string description;  // config.description ("" when none)
  uint64_t first_seq = 0, last_seq = 0, messages = 0;
};

struct js_pub_ack {
  js_error err;
  std::string stream;
  uint64_t seq = 0;
  bool duplicate = false;  // the Nats-Msg-Id was seen within the duplicate window: not stored again
};

struct js_stored_msg {
  js_error err;  // "no message found" (10037, status 404) is found=false with err cleared
  bool found = false;
  std::string subject;
  uint64_t seq = 0;
  uint64_t time_ns = 0;
  std::string headers, data;  // headers: the full block ("NATS/1.0\r\n...\r\n\r\n") or empty
};

struct js_delivery {  // views valid during the callback
  std::string_view subject, headers, data, reply;
  uint64_t stream_seq = 0, consumer_seq = 0, pending = 0, delivered = 0;
  uint64_t time_ns = 0;
};

struct js_kv_entry {
  js_error err;
  bool found = false;
  uint64_t revision = 0;
  std::string value;
};

// Parses a JetStream ack reply subject into `d` (stream_seq, consumer_seq, delivered, pending,
// time_ns). Both forms: "$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>"
// (9 tokens) and "$JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.
// <pending>[.<random>]" (11 or 12 tokens). False (d untouched) for anything else.
bool parse_ack_reply(std::string_view reply, js_delivery& d);

class jetstream {
 public:
  // Idle heartbeat of ordered consumers, and how many may be missed before recreation.
  static constexpr uint32_t heartbeat_ms = 1000;
  static constexpr uint32_t heartbeats_missed_max = 3;

  // publish_errors: publishes that failed (transport or API) other than a refused conditional
  // write (js_err_wrong_last_sequence); api_errors: API requests that failed, other than the
  // expected answers "no message found" and "stream name in use" (ensure_stream updates then).
  struct stats {
    uint64_t publishes = 0, publish_errors = 0, api_requests = 0, api_errors = 0,
             consumers_recreated = 0;
    latency_histogram* publish_latency = nullptr;  // publish → ack; owned by the jetstream
  };

  explicit jetstream(nats_client& nc, uint32_t api_timeout_ms = 5000);  // prefix "$JS.API"
  jetstream(const jetstream&) = delete;
  jetstream& operator=(const jetstream&) = delete;
  // Stops every consumer, drops pending callbacks. REQUIRES: not called from inside one of its
  // own callbacks or handlers (defer the destruction to a later turn); checked.
  ~jetstream();

  // Creates the stream, or updates it when its configuration differs (an existing description is
  // kept).
  void ensure_stream(const js_stream_config& c, unique_function<void(js_stream_info&&)> done);
  void stream_info(std::string_view stream, unique_function<void(js_stream_info&&)> done);

  // Publish with ack. headers: a full block (nats::make_headers) or empty.
  void publish(std::string_view subject, std::string_view headers, std::string_view data,
               unique_function<void(js_pub_ack&&)> done);
  size_t publishes_in_flight() const { return publishes_in_flight_; }

  void get_last(std::string_view stream, std::string_view subject,
                unique_function<void(js_stored_msg&&)> done);  // STREAM.MSG.GET last_by_subj
  void get(std::string_view stream, uint64_t seq, unique_function<void(js_stored_msg&&)> done);
  void delete_msg(std::string_view stream, uint64_t seq, unique_function<void(js_error&&)> done);

  // Ordered push consumer (ephemeral, ack none, flow control, idle heartbeat, memory storage,
  // one replica). start_seq 0: deliver new only (or, with deliver_last_per_subject, the last
  // message of every subject matching the filter); else from that stream sequence on. On a
  // consumer-sequence gap, `heartbeats_missed_max` missed heartbeats, or a reconnect it is
  // recreated transparently from the last delivered stream sequence + 1: on_msg sees every
  // message in stream order exactly once.
  struct ordered_handlers {
    unique_function<void(const js_delivery&)> on_msg;
    // The consumer was created (again). floor: the stream sequence it starts after (for a
    // deliver-new consumer the stream's last sequence at its first creation).
    unique_function<void(uint64_t floor)> on_ready;
    // Optional: nothing is pending any more (after each creation, the first time).
    unique_function<void()> on_caught_up;
    // Optional: a creation failed (it keeps retrying while connected).
    unique_function<void(const js_error&)> on_error;
  };
  uint64_t consume_ordered(std::string_view stream, std::string_view filter_subject,
                           uint64_t start_seq, bool deliver_last_per_subject, ordered_handlers h);
  // Deletes the consumer on the server (best effort); no callback after this returns. Unknown
  // ids (already stopped) are ignored.
  void stop_consumer(uint64_t id);
  // The server-side name of the consumer's current incarnation (empty while being created).
  std::string_view consumer_name(uint64_t id) const;

  // Key-value buckets (streams KV_<bucket>, subjects $KV.<bucket>.<key>). ttl_ms 0: no expiry;
  // max_value_size -1: unlimited.
  void ensure_kv(std::string_view bucket, int64_t ttl_ms, int32_t max_value_size, uint32_t replicas,
                 unique_function<void(js_error&&)> done);
  // found=false (err ok) when the key is missing, deleted or purged.
  void kv_get(std::string_view bucket, std::string_view key,
              unique_function<void(js_kv_entry&&)> done);
  void kv_put(std::string_view bucket, std::string_view key, std::string_view value,
              unique_function<void(js_kv_entry&&)> done);
  // Fails with err_code js_err_wrong_last_sequence when the key exists (a deleted key may be
  // created again).
  void kv_create(std::string_view bucket, std::string_view key, std::string_view value,
                 unique_function<void(js_kv_entry&&)> done);
  // Fails with err_code js_err_wrong_last_sequence unless the key's revision is expected_revision.
  void kv_update(std::string_view bucket, std::string_view key, std::string_view value,
                 uint64_t expected_revision, unique_function<void(js_kv_entry&&)> done);
  void kv_delete(std::string_view bucket, std::string_view key,
                 unique_function<void(js_error&&)> done);
  // Keys present (not deleted) matching `filter` (a subject pattern of keys, "" or ">": all).
  // ENOTCONN (in a later turn) while disconnected or when the connection is lost meanwhile;
  // ETIMEDOUT after 2 × api_timeout_ms (at least 2 s).
  void kv_keys(std::string_view bucket, std::string_view filter,
               unique_function<void(js_error&&, std::vector<std::string>&&)> done);

  const stats& counters() const { return stats_; }
  nats_client& nats() { return nc_; }

 private:
  void update_stream(const js_stream_config& c, unique_function<void(js_stream_info&&)> done);
  struct ordered;
  struct keys_walk;

  // Sends an API request ("$JS.API." + api) and hands the raw answer to `done`.
  void api_request(std::string subject, std::string_view body,
                   unique_function<void(nats_reply&&)> done);
  void kv_write(std::string_view bucket, std::string_view key, std::string_view headers,
                std::string_view value, unique_function<void(js_kv_entry&&)> done);

  // jetstream_ordered.cc
  uint64_t consume_ordered_impl(std::string_view stream, std::string_view filter_subject,
                                uint64_t start_seq, bool deliver_last_per_subject,
                                bool headers_only, ordered_handlers h);
  ordered* find_ordered(uint64_t id, uint64_t generation);
  void ordered_create(ordered& o);
  void ordered_on_created(uint64_t id, uint64_t generation, const std::string& stream,
                          nats_reply&& r);
  void ordered_on_msg(uint64_t id, uint64_t generation, const nats_msg& m);
  void ordered_on_status(ordered& o, const nats::header_block& h, std::string_view reply);
  bool ordered_deliver(ordered& o, std::string_view subject, std::string_view reply,
                       std::string_view headers, std::string_view data);
  void ordered_caught_up(uint64_t id, uint64_t generation);
  void ordered_reset(ordered& o);
  void ordered_retire(ordered& o);
  void ordered_on_state(bool connected);
  static void ordered_check(timer& t, void* ctx);
  static void ordered_retry(timer& t, void* ctx);
  // While handlers run, stopped consumers are kept (a handler may stop its own consumer) and
  // freed when the outermost dispatch returns.
  struct dispatch_guard {
    explicit dispatch_guard(jetstream& j) : js(j) { ++js.dispatch_depth_; }
    ~dispatch_guard();
    jetstream& js;
  };

  nats_client& nc_;
  reactor& reactor_;
  uint32_t api_timeout_ms_;
  // Callbacks in flight capture a weak reference to this: once the jetstream is gone they are
  // dropped instead of touching it.
  std::shared_ptr<jetstream*> alive_;
  size_t publishes_in_flight_ = 0;
  latency_histogram publish_latency_;
  stats stats_;
  uint64_t next_consumer_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<ordered>> consumers_;
  std::vector<std::unique_ptr<ordered>> retired_;
  int dispatch_depth_ = 0;
  std::vector<std::unique_ptr<keys_walk>> walks_;
  uint64_t state_listener_ = 0;
};

}  // namespace rc::server
