// Ordered push consumers (see jetstream.h), after the Go client's ordered consumer:
// * an incarnation = a fresh deliver subject (subscribed before the CONSUMER.CREATE request, so
//   nothing is missed) and an ephemeral consumer: ack none, max_deliver 1, flow control, idle
//   heartbeat, memory storage, one replica;
// * each message's ack subject carries its stream and consumer sequences; a consumer sequence
//   other than the next expected one is a gap (the server lost track of us): the incarnation is
//   retired and a new one starts at the last delivered stream sequence + 1;
// * "100 FlowControl Request" (a status message with a reply subject) is answered at once with
//   an empty message (messages are handed to on_msg synchronously, so everything before it has
//   been delivered); an idle heartbeat carrying Nats-Consumer-Stalled is answered likewise, and
//   one whose Nats-Last-Consumer differs from the last consumer sequence seen is a gap too;
// * no message nor heartbeat for heartbeats_missed_max heartbeat intervals (the consumer was
//   deleted, the server restarted) → recreate; a reconnect → recreate.
// The server may deliver before it answers the creation request; those messages are held
// (bounded in count and bytes) and handed over after on_ready; flow control requests of that
// time are answered after the handover (the server's window bounds what it sends meanwhile),
// and an incarnation that had to drop messages is recreated after the handover (no loss: it
// starts after the last message handed over).
#include <cerrno>

#include "base/assert.h"
#include "core/reactor.h"
#include "jetstream_internal.h"
#include "proto/nats.h"
#include "server/jetstream_wire.h"
#include "server/nats_client.h"

namespace rc::server {

namespace {
constexpr uint32_t retry_ms = 1000;
}  // namespace

jetstream::dispatch_guard::~dispatch_guard() {
  if (--js.dispatch_depth_ == 0) js.retired_.clear();
}

uint64_t jetstream::consume_ordered(std::string_view stream, std::string_view filter_subject,
                                    uint64_t start_seq, bool deliver_last_per_subject,
                                    ordered_handlers h) {
  return consume_ordered_impl(stream, filter_subject, start_seq, deliver_last_per_subject, false,
                              std::move(h));
}

uint64_t jetstream::consume_ordered_impl(std::string_view stream, std::string_view filter_subject,
                                         uint64_t start_seq, bool deliver_last_per_subject,
                                         bool headers_only, ordered_handlers h) {
  auto o = std::make_unique<ordered>();
  o->js = this;
  o->id = next_consumer_id_++;
  o->stream = std::string(stream);
  o->filter = std::string(filter_subject);
  o->start_seq = start_seq;
  o->last_per_subject = deliver_last_per_subject;
  o->headers_only = headers_only;
  o->h = std::move(h);
  o->check_timer.set_callback(&jetstream::ordered_check, o.get());
  o->retry_timer.set_callback(&jetstream::ordered_retry, o.get());
  ordered& ref = *o;
  consumers_.emplace(ref.id, std::move(o));
  if (nc_.connected()) ordered_create(ref);  // else when the client connects
  return ref.id;
}

std::string_view jetstream::consumer_name(uint64_t id) const {
  auto it = consumers_.find(id);
  return it == consumers_.end() ? std::string_view() : std::string_view(it->second->name);
}

void jetstream::stop_consumer(uint64_t id) {
  auto it = consumers_.find(id);
  if (it == consumers_.end()) return;
  std::unique_ptr<ordered> o = std::move(it->second);
  consumers_.erase(it);
  ordered_retire(*o);
  // It may be running one of its own handlers right now: free it once that returns.
  retired_.push_back(std::move(o));
  if (dispatch_depth_ == 0) retired_.clear();
}

// Drops the current incarnation: no more messages from it, and the server forgets it (best
// effort; without interest it would go after inactive_threshold anyway).
void jetstream::ordered_retire(ordered& o) {
  reactor_.cancel_timer(o.check_timer);
  reactor_.cancel_timer(o.retry_timer);
  if (o.sid != 0) nc_.unsubscribe(o.sid);
  o.sid = 0;
  if (!o.name.empty() && nc_.connected()) {
    api_request("CONSUMER.DELETE." + o.stream + "." + o.name, {}, [](nats_reply&&) {});
  }
  o.name.clear();
  o.created = false;
  o.held_msgs.clear();
  o.held_bytes = 0;
  o.held_overflow = false;
  o.held_fc.clear();
  ++o.generation;
}

void jetstream::ordered_reset(ordered& o) {
  ++stats_.consumers_recreated;
  ordered_retire(o);
  if (nc_.connected()) ordered_create(o);  // else when the client connects again
}

void jetstream::ordered_create(ordered& o) {
  RC_ASSERT(o.sid == 0 && !o.created);
  std::string deliver = nc_.new_inbox();
  uint64_t id = o.id, generation = o.generation;
  o.sid = nc_.subscribe(deliver, {}, [this, id, generation](const nats_msg& m) {
    ordered_on_msg(id, generation, m);
  });
  js_wire::ordered_request req;
  req.stream = o.stream;
  req.deliver_subject = deliver;
  req.filter_subject = o.filter;
  req.start_seq = o.started ? o.last_sseq + 1 : o.start_seq;
  req.deliver_last_per_subject = !o.started && o.last_per_subject;
  req.headers_only = o.headers_only;
  req.heartbeat_ms = heartbeat_ms;
  o.next_cseq = 1;
  o.caught_up = false;
  o.active = true;
  o.connection = nc_.stats().connects;
  api_request("CONSUMER.CREATE." + o.stream, js_wire::ordered_consumer_json(req),
              [this, id, generation, stream = o.stream](nats_reply&& r) {
                ordered_on_created(id, generation, stream, std::move(r));
              });
  reactor_.arm_after_ms(o.check_timer, uint64_t(heartbeat_ms) * heartbeats_missed_max);
}

jetstream::ordered* jetstream::find_ordered(uint64_t id, uint64_t generation) {
  auto it = consumers_.find(id);
  if (it == consumers_.end() || it->second->generation != generation) return nullptr;
  return it->second.get();
}

void jetstream::ordered_on_created(uint64_t id, uint64_t generation, const std::string& stream,
                                   nats_reply&& r) {
  js_error te = js_transport_error(r);
  js_wire::consumer_created c;
  if (te.ok()) {
    c = js_wire::parse_consumer_created(r.data);
  } else {
    c.err = std::move(te);
  }
  ordered* o = find_ordered(id, generation);
  if (o == nullptr) {
    // Stopped or replaced meanwhile: the consumer it made is nobody's.
    if (c.err.ok() && nc_.connected()) {
      api_request("CONSUMER.DELETE." + stream + "." + c.name, {}, [](nats_reply&&) {});
    }
    return;
  }
  dispatch_guard guard(*this);
  if (!c.err.ok()) {
    ++stats_.api_errors;
    reactor_.cancel_timer(o->check_timer);
    if (nc_.connected()) reactor_.arm_after_ms(o->retry_timer, retry_ms);
    if (o->h.on_error) o->h.on_error(c.err);
    return;
  }
  o->name = std::move(c.name);
  o->created = true;
  if (!o->started) {
    o->started = true;
    o->last_sseq = c.delivered_stream_seq;
  }
  if (o->h.on_ready) {
    o->h.on_ready(c.delivered_stream_seq);
    if ((o = find_ordered(id, generation)) == nullptr) return;
  }
  std::vector<ordered::held> held = std::move(o->held_msgs);
  o->held_msgs.clear();
  o->held_bytes = 0;
  for (const ordered::held& m : held) {
    if (!ordered_deliver(*o, m.subject, m.reply, m.headers, m.data)) return;
    if ((o = find_ordered(id, generation)) == nullptr) return;
  }
  if (o->held_overflow) {
    ordered_reset(*o);  // from the last message handed over + 1
    return;
  }
  std::vector<std::string> fc = std::move(o->held_fc);
  o->held_fc.clear();
  for (const std::string& subject : fc) nc_.publish(subject, {}, {}, {});
  if (c.num_pending == 0 && held.empty()) ordered_caught_up(id, generation);
}

void jetstream::ordered_caught_up(uint64_t id, uint64_t generation) {
  ordered* o = find_ordered(id, generation);
  if (o == nullptr || o->caught_up) return;
  o->caught_up = true;
  if (o->h.on_caught_up) o->h.on_caught_up();
}

void jetstream::ordered_on_msg(uint64_t id, uint64_t generation, const nats_msg& m) {
  ordered* o = find_ordered(id, generation);
  if (o == nullptr) return;
  o->active = true;
  // A delivery whose reply is a $JS.ACK subject is a stored message, whatever its headers say (a
  // publisher may store a block with a status line and no body). Control messages (heartbeats,
  // flow control requests, 409s) come with an empty reply or a $JS.FC. one.
  bool control_reply = m.reply.empty() || m.reply.starts_with("$JS.FC.");
  if (m.data.empty() && !m.headers.empty() && control_reply) {
    auto h = nats::header_block::parse(m.headers);
    if (h && h->status != 0) {
      ordered_on_status(*o, *h, m.reply);
      return;
    }
  }
  if (!o->created) {
    size_t bytes = m.subject.size() + m.reply.size() + m.headers.size() + m.data.size();
    if (o->held_overflow ||
        (!o->held_msgs.empty() && (o->held_msgs.size() >= ordered::held_max ||
                                   o->held_bytes + bytes > ordered::held_bytes_max))) {
      o->held_overflow = true;  // dropped; the answer (or its timeout) decides what comes next
      return;
    }
    o->held_bytes += bytes;
    o->held_msgs.push_back({std::string(m.subject), std::string(m.reply), std::string(m.headers),
                            std::string(m.data)});
    return;
  }
  dispatch_guard guard(*this);
  ordered_deliver(*o, m.subject, m.reply, m.headers, m.data);
}

void jetstream::ordered_on_status(ordered& o, const nats::header_block& h, std::string_view reply) {
  if (h.status != 100) {
    // 409 Consumer Deleted and the like: this incarnation is gone.
    if (h.status == 409) ordered_reset(o);
    return;
  }
  // A flow control request, or an idle heartbeat saying the consumer stalled waiting for one:
  // answered once everything before it was handed to on_msg (after the held messages).
  std::string_view fc = !reply.empty() ? reply : h.get("Nats-Consumer-Stalled");
  if (!fc.empty()) {
    if (o.created) {
      nc_.publish(fc, {}, {}, {});
    } else if (o.held_fc.size() < ordered::held_fc_max) {
      o.held_fc.emplace_back(fc);
    }
  }
  if (!reply.empty() || !o.created) return;
  // Idle heartbeat.
  auto last = js_wire::parse_u64(h.get("Nats-Last-Consumer"));
  if (last && *last != o.next_cseq - 1) ordered_reset(o);
}

// Hands one message to on_msg, or recreates on a gap. False when the consumer was stopped or
// recreated meanwhile (the caller must look it up again before touching it).
bool jetstream::ordered_deliver(ordered& o, std::string_view subject, std::string_view reply,
                                std::string_view headers, std::string_view data) {
  js_delivery d;
  if (!parse_ack_reply(reply, d)) return true;  // not a JetStream delivery: ignore
  if (d.consumer_seq != o.next_cseq) {
    ordered_reset(o);
    return false;
  }
  ++o.next_cseq;
  o.last_sseq = d.stream_seq;
  o.started = true;
  d.subject = subject;
  d.reply = reply;
  d.headers = headers;
  d.data = data;
  uint64_t id = o.id, generation = o.generation;
  o.h.on_msg(d);
  if (find_ordered(id, generation) == nullptr) return false;
  if (d.pending == 0) {
    ordered_caught_up(id, generation);
    return find_ordered(id, generation) != nullptr;
  }
  return true;
}

void jetstream::ordered_on_state(bool connected) {
  std::vector<uint64_t> ids;
  for (auto& [id, o] : consumers_) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = consumers_.find(id);
    if (it == consumers_.end()) continue;
    ordered& o = *it->second;
    if (connected) {
      if (o.sid == 0) {
        ordered_create(o);  // never created, or retired while disconnected
      } else if (o.connection != nc_.stats().connects) {
        ordered_reset(o);  // made on an earlier connection
      }  // else made on this one already (by a listener that heard `connected` before us)
    } else {
      // The incarnation's fate is unknown; a new one starts when the client is back.
      reactor_.cancel_timer(o.check_timer);
      reactor_.cancel_timer(o.retry_timer);
      o.created = false;
    }
  }
}

void jetstream::ordered_check(timer&, void* ctx) {
  ordered& o = *static_cast<ordered*>(ctx);
  jetstream& js = *o.js;
  if (!js.nc_.connected()) return;  // the reconnect recreates it
  // While the creation request is out, its answer (or its timeout) decides what comes next.
  if (!o.active && o.created) {
    js.ordered_reset(o);
    return;
  }
  o.active = false;
  js.reactor_.arm_after_ms(o.check_timer, uint64_t(heartbeat_ms) * heartbeats_missed_max);
}

// A creation failed a while ago: try again (not counted as a recreation).
void jetstream::ordered_retry(timer&, void* ctx) {
  ordered& o = *static_cast<ordered*>(ctx);
  jetstream& js = *o.js;
  if (!js.nc_.connected()) return;  // the reconnect recreates it
  js.ordered_retire(o);
  js.ordered_create(o);
}

}  // namespace rc::server
