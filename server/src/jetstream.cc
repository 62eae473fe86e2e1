// jetstream: streams, publish with ack, message get/delete (see jetstream.h). Ordered consumers
// are in jetstream_ordered.cc, key-value buckets in jetstream_kv.cc.
#include "server/jetstream.h"

#include <cerrno>
#include <cstring>

#include "base/assert.h"
#include "core/reactor.h"
#include "jetstream_internal.h"
#include "server/jetstream_wire.h"
#include "server/nats_client.h"

namespace rc::server {

js_error js_transport_error(const nats_reply& r) {
  js_error e;
  if (r.error != 0) {
    e.error = r.error;
    e.description = r.error == EHOSTUNREACH ? "no responders (no stream for the subject?)"
                                            : std::strerror(r.error);
  } else if (r.status >= 400) {
    e.status = r.status;
    e.description = "NATS status " + std::to_string(r.status);
  }
  return e;
}

jetstream::jetstream(nats_client& nc, uint32_t api_timeout_ms)
    : nc_(nc),
      reactor_(*reactor::current()),
      api_timeout_ms_(api_timeout_ms),
      alive_(std::make_shared<jetstream*>(this)) {
  stats_.publish_latency = &publish_latency_;
  state_listener_ = nc_.add_state_listener([this](nats_state s) {
    if (s != nats_state::connected) {
      // A key listing cannot finish without the connection: it fails now (in a later turn).
      for (auto& w : walks_) {
        w->deadline_error = ENOTCONN;
        reactor_.arm_after_ms(w->deadline, 0);
      }
    }
    ordered_on_state(s == nats_state::connected);
  });
}

jetstream::~jetstream() {
  // Destroyed from inside one of its own handlers, the dispatch in progress would touch it (and
  // the handler being run) after this returns.
  RC_ASSERT(dispatch_depth_ == 0);
  nc_.remove_state_listener(state_listener_);
  while (!consumers_.empty()) stop_consumer(consumers_.begin()->first);
  alive_.reset();
}

void jetstream::api_request(std::string subject, std::string_view body,
                            unique_function<void(nats_reply&&)> done) {
  ++stats_.api_requests;
  std::weak_ptr<jetstream*> alive = alive_;
  nc_.request("$JS.API." + subject, {}, body, api_timeout_ms_,
              [this, alive, done = std::move(done)](nats_reply&& r) mutable {
                if (alive.expired()) return;
                done(std::move(r));
              });
}

namespace {

// Runs `parse` on a transport-clean answer, else fills in the transport error.
template <class Result, class Parse>
Result parse_reply(const nats_reply& r, Parse parse) {
  js_error e = js_transport_error(r);
  if (!e.ok()) {
    Result out;
    out.err = std::move(e);
    return out;
  }
  return parse(r.data);
}

}  // namespace

void jetstream::ensure_stream(const js_stream_config& c,
                              unique_function<void(js_stream_info&&)> done) {
  std::string name = c.name;
  api_request("STREAM.CREATE." + name, js_wire::stream_config_json(c),
              [this, c, name, done = std::move(done)](nats_reply&& r) mutable {
                js_stream_info info = parse_reply<js_stream_info>(r, js_wire::parse_stream_info);
                if (info.err.err_code != js_err_stream_name_in_use) {
                  if (!info.err.ok()) ++stats_.api_errors;
                  done(std::move(info));
                  return;
                }
                // It exists with another configuration: bring it to this one, keeping the
                // description it has (the first creator's wins; see js_stream_config).
                api_request("STREAM.INFO." + name, {},
                            [this, c = std::move(c), name,
                             done = std::move(done)](nats_reply&& got) mutable {
                              js_stream_info existing =
                                  parse_reply<js_stream_info>(got, js_wire::parse_stream_info);
                              if (!existing.err.ok()) {
                                ++stats_.api_errors;
                                done(std::move(existing));
                                return;
                              }
                              if (c.adapt) {
                                c.adapt(c, existing);
                              } else if (!existing.description.empty()) {
                                c.description = existing.description;
                              }
                              update_stream(c, std::move(done));
                            });
              });
}

void jetstream::update_stream(const js_stream_config& c,
                              unique_function<void(js_stream_info&&)> done) {
  api_request("STREAM.UPDATE." + c.name, js_wire::stream_config_json(c),
              [this, done = std::move(done)](nats_reply&& updated) mutable {
                js_stream_info now = parse_reply<js_stream_info>(updated, js_wire::parse_stream_info);
                if (!now.err.ok()) ++stats_.api_errors;
                done(std::move(now));
              });
}

void jetstream::stream_info(std::string_view stream, unique_function<void(js_stream_info&&)> done) {
  api_request("STREAM.INFO." + std::string(stream), {},
              [this, done = std::move(done)](nats_reply&& r) mutable {
                js_stream_info info = parse_reply<js_stream_info>(r, js_wire::parse_stream_info);
                if (!info.err.ok()) ++stats_.api_errors;
                done(std::move(info));
              });
}

void jetstream::publish(std::string_view subject, std::string_view headers, std::string_view data,
                        unique_function<void(js_pub_ack&&)> done) {
  ++stats_.publishes;
  ++publishes_in_flight_;
  uint64_t start_ns = reactor_.now_ns();
  std::weak_ptr<jetstream*> alive = alive_;
  nc_.request(subject, headers, data, api_timeout_ms_,
              [this, alive, start_ns, done = std::move(done)](nats_reply&& r) mutable {
                if (alive.expired()) return;
                --publishes_in_flight_;
                js_pub_ack ack = parse_reply<js_pub_ack>(r, js_wire::parse_pub_ack);
                if (ack.err.ok()) {
                  publish_latency_.observe_us((reactor_.now_ns() - start_ns) / 1000);
                } else if (ack.err.err_code != js_err_wrong_last_sequence) {
                  // A refused conditional write (a lost KV race) is an answer, not a failure.
                  ++stats_.publish_errors;
                }
                done(std::move(ack));
              });
}

void jetstream::get_last(std::string_view stream, std::string_view subject,
                         unique_function<void(js_stored_msg&&)> done) {
  api_request("STREAM.MSG.GET." + std::string(stream), js_wire::msg_get_last_json(subject),
              [this, done = std::move(done)](nats_reply&& r) mutable {
                js_stored_msg m = parse_reply<js_stored_msg>(r, js_wire::parse_stored_msg);
                if (!m.err.ok()) ++stats_.api_errors;
                done(std::move(m));
              });
}

void jetstream::get(std::string_view stream, uint64_t seq,
                    unique_function<void(js_stored_msg&&)> done) {
  api_request("STREAM.MSG.GET." + std::string(stream), js_wire::msg_get_by_seq_json(seq),
              [this, done = std::move(done)](nats_reply&& r) mutable {
                js_stored_msg m = parse_reply<js_stored_msg>(r, js_wire::parse_stored_msg);
                if (!m.err.ok()) ++stats_.api_errors;
                done(std::move(m));
              });
}

void jetstream::delete_msg(std::string_view stream, uint64_t seq,
                           unique_function<void(js_error&&)> done) {
  api_request("STREAM.MSG.DELETE." + std::string(stream), js_wire::msg_delete_json(seq),
              [this, done = std::move(done)](nats_reply&& r) mutable {
                js_error e = js_transport_error(r);
                if (e.ok()) e = js_wire::parse_success(r.data);
                if (!e.ok()) ++stats_.api_errors;
                done(std::move(e));
              });
}

}  // namespace rc::server
