// Topics across nodes (topics.h, "Across nodes"): publishing through JetStream, the home's
// ordered consumer while the node has subscribers, and the answers to subscribers from it.
// Resumes from before the home's history are in topics_replay.cc.
#include <algorithm>
#include <cerrno>

#include "core/log.h"
#include "server/cluster.h"
#include "server/jetstream.h"
#include "server/shard.h"
#include "topics_internal.h"

namespace rc::server {

// ---- state ----

topic_registry::home_topic::~home_topic() = default;

topic_registry::topic_stream::topic_stream(topic_registry& reg, std::string name,
                                           uint64_t generation)
    : registry(reg), origin{std::move(name), generation} {
  linger.set_callback(
      [](timer&, void* ctx) {
        auto* ts = static_cast<topic_stream*>(ctx);
        std::string topic = ts->origin.name;  // on_linger_end may destroy *ts
        ts->registry.on_linger_end(topic);
      },
      this);
}

topic_registry::topic_stream::~topic_stream() {
  cluster* cl = registry.shard_.cluster_link();
  if (!cl) return;
  if (consumer) cl->js().stop_consumer(consumer);
  for (auto& [after, r] : replays)
    if (r->consumer) cl->js().stop_consumer(r->consumer);
}

topic_registry::home_topic* topic_registry::find_stream_home(const stream_origin& o) {
  auto it = homes_.find(o.name);
  if (it == homes_.end() || !it->second->stream) return nullptr;
  if (it->second->stream->origin.generation != o.generation) return nullptr;
  return it->second.get();
}

std::string_view topic_registry::unavailable_reason() const {
  cluster* cl = shard_.cluster_link();
  if (!cl || cl->available()) return {};
  std::string_view why = cl->unavailable_reason();
  return why.empty() ? std::string_view("nats: unavailable") : why;
}

uint64_t topic_registry::retry_after_ms() const {
  cluster* cl = shard_.cluster_link();
  return cl ? std::max<uint64_t>(cl->retry_after_ms(), 1000) : 1000;
}

// ---- publishing ----

void topic_registry::cluster_publish(std::string topic, std::string json,
                                     unique_function<void(publish_result&&)> done) {
  cluster& cl = *shard_.cluster_link();
  if (std::string_view why = unavailable_reason(); !why.empty()) {
    publish_result res;
    res.topic = std::move(topic);
    res.error_code = "nats_unavailable";
    res.error_message = "The publication was not stored (" + std::string(why) + "); retry later";
    res.retry_after_ms = retry_after_ms();
    return done(std::move(res));
  }
  // The origin shard publishes on its own connection: publications of one client keep their
  // order, and the home learns of them from its consumer like every other node.
  cluster::topic_route route = cl.route_topic(topic);
  cl.js().publish(route.subject, {}, json,
                  [topic = std::move(topic), epoch = std::string(route.epoch),
                   done = std::move(done)](js_pub_ack&& ack) mutable {
                    shard_server& s = *shard_server::current();
                    publish_result res;
                    res.topic = std::move(topic);
                    if (!ack.err.ok() || ack.seq == 0) {
                      // No stream takes the subject: the stream is gone, or was created again
                      // with another epoch than the one in the subject (this node has not seen
                      // it yet). Nothing was stored; the streams are checked now.
                      bool missing = ack.err.error == EHOSTUNREACH;
                      if (missing) s.cluster_link()->streams_missing();
                      res.error_code = "nats_unavailable";
                      res.error_message =
                          "The publication was not stored (" +
                          (missing ? std::string("no stream takes it: the topic's stream is gone "
                                                 "or was created again")
                           : ack.err.description.empty() ? std::string("no acknowledgement")
                                                         : ack.err.description) +
                          "); retry later";
                      res.retry_after_ms = s.topics().retry_after_ms();
                      return done(std::move(res));
                    }
                    ++s.metrics().publications;
                    res.seq = ack.seq;
                    res.id = epoch + "-" + std::to_string(ack.seq);
                    done(std::move(res));
                  });
}

// ---- the home's consumer ----

void topic_registry::cluster_catch_up(home_topic& t, unsigned shard, uint64_t sub_id,
                                      std::string since) {
  t.shards[shard] = true;
  if (!t.stream) {
    if (std::string_view why = unavailable_reason(); !why.empty()) {
      // This shard's own connection is not ready (the subscriber's shard's was).
      catch_up c;
      c.error_code = "nats_unavailable";
      c.error_message = "Topics are unavailable (" + std::string(why) + "); retry later";
      return send_catch_up(shard, sub_id, std::move(c));
    }
    t.stream = std::make_unique<topic_stream>(*this, t.name, next_stream_id_++);
  }
  topic_stream& ts = *t.stream;
  if (ts.linger.armed()) shard_.loop().cancel_timer(ts.linger);
  if (!ts.ready) {
    ts.waiting.push_back({topic_waiter{shard, sub_id}, std::move(since)});
    if (!ts.consumer) start_consumer(t);
    return;
  }
  answer_from_stream(t, shard, sub_id, std::move(since));
}

void topic_registry::start_consumer(home_topic& t) {
  cluster& cl = *shard_.cluster_link();
  topic_stream& ts = *t.stream;
  cluster::topic_route route = cl.route_topic(t.name);
  ts.stream = std::string(route.stream);
  ts.subject = std::move(route.subject);
  t.epoch = std::string(route.epoch);
  stream_origin o = ts.origin;
  jetstream::ordered_handlers h;
  h.on_msg = [o](const js_delivery& d) {
    topic_registry& reg = shard_server::current()->topics();
    if (home_topic* ht = reg.find_stream_home(o)) reg.on_stream_message(*ht, d.stream_seq, d.data);
  };
  h.on_ready = [o](uint64_t floor) {
    topic_registry& reg = shard_server::current()->topics();
    if (home_topic* ht = reg.find_stream_home(o)) reg.on_consumer_ready(*ht, floor);
  };
  h.on_error = [o](const js_error& e) {
    topic_registry& reg = shard_server::current()->topics();
    if (home_topic* ht = reg.find_stream_home(o)) {
      reg.fail_waiting(*ht, "The topic's stream cannot be read (" +
                                (e.description.empty() ? std::string("error") : e.description) +
                                "); retry later");
    }
  };
  // Deliver new only: what came before is the stream's to replay (topics_replay.cc).
  ts.consumer = cl.js().consume_ordered(ts.stream, ts.subject, 0, false, std::move(h));
}

void topic_registry::on_consumer_ready(home_topic& t, uint64_t floor) {
  topic_stream& ts = *t.stream;
  // Called again when the consumer was recreated (gap, heartbeats, reconnect): it continues
  // after the last event it delivered, so the history stays whole.
  if (ts.ready) return;
  ts.ready = true;
  ts.floor = floor;  // t.epoch: the one in the consumer's subject (start_consumer)
  ts.floor_dropped = false;
  t.seq = floor;
  auto waiting = std::move(ts.waiting);
  ts.waiting.clear();
  for (auto& [w, since] : waiting) answer_from_stream(t, w.shard, w.sub_id, std::move(since));
}

void topic_registry::fail_waiting(home_topic& t, std::string_view message) {
  topic_stream& ts = *t.stream;
  if (ts.ready) return;  // the consumer is being recreated: subscribers keep waiting for it
  auto waiting = std::move(ts.waiting);
  ts.waiting.clear();
  for (auto& [w, since] : waiting) {
    catch_up c;
    c.error_code = "nats_unavailable";
    c.error_message = std::string(message);
    send_catch_up(w.shard, w.sub_id, std::move(c));
  }
}

void topic_registry::on_stream_message(home_topic& t, uint64_t seq, std::string_view data) {
  topic_stream& ts = *t.stream;
  // The consumer delivers everything after its start: a delivery before its creation was
  // confirmed tells the floor as well as the answer would.
  if (!ts.ready) on_consumer_ready(t, seq - 1);
  if (seq <= t.seq) return;  // delivered already
  // Whatever reaches the subject is delivered as JSON: a message some other NATS client put
  // there that is not JSON is not a publication, and is skipped.
  if (!shard_.json_parser().parse(data).ok()) return;
  topic_event e = encode_event(t.name, t.epoch, seq, data);
  e.prev_seq = t.seq;
  t.seq = seq;
  if (uint64_t dropped = remember(t, e); dropped != 0) {
    ts.floor = std::max(ts.floor, dropped);
    ts.floor_dropped = true;
  }
  fan_out(t, e);
}

// ---- answers ----

topic_registry::catch_up topic_registry::stream_catch_up(home_topic& t, bool reset) const {
  catch_up c;
  c.epoch = t.epoch;
  c.seq = t.seq;
  c.oldest = t.history.empty() ? t.seq + 1 : t.history.front().seq;
  c.reset = reset;
  if (reset) c.events.assign(t.history.begin(), t.history.end());
  return c;
}

void topic_registry::answer_from_stream(home_topic& t, unsigned shard, uint64_t sub_id,
                                        std::string since) {
  topic_stream& ts = *t.stream;
  if (since.empty()) return send_catch_up(shard, sub_id, stream_catch_up(t, false));
  std::string_view epoch;
  uint64_t after = 0;
  if (!parse_topic_since(since, epoch, after) || (!epoch.empty() && epoch != t.epoch)) {
    // Unknown format, or another stream's ids (it was created again): start over from the
    // history.
    return send_catch_up(shard, sub_id, stream_catch_up(t, true));
  }
  if (after >= ts.floor && after <= t.seq) {
    catch_up c = stream_catch_up(t, false);
    for (const topic_event& e : t.history)
      if (e.seq > after) c.events.push_back(e);
    return send_catch_up(shard, sub_id, std::move(c));
  }
  // Before the history, or past what this node has seen (another node's publication that is
  // still on its way here): the stream knows whether that id is one of this topic's.
  check_resume_point(t, shard, sub_id, after);
}

void topic_registry::check_idle(home_topic& t) {
  topic_stream& ts = *t.stream;
  if (!ts.waiting.empty() || !ts.replays.empty() || ts.checks != 0) return;
  for (bool s : t.shards)
    if (s) return;
  if (!ts.linger.armed()) shard_.loop().arm_after_ms(ts.linger, topic_consumer_linger_ms);
}

void topic_registry::release_cluster() {
  for (auto& [name, t] : homes_) {
    if (!t->stream) continue;
    t->stream.reset();
    t->history.clear();
    t->history_bytes = 0;
    t->seq = 0;
  }
}

void topic_registry::on_epochs_changed() {
  cluster* cl = shard_.cluster_link();
  if (!cl) return;
  for (auto& [name, tp] : homes_) {
    home_topic& t = *tp;
    if (!t.stream || t.epoch == cl->route_topic(name).epoch) continue;
    RC_WARN("topics: the stream of topic %s was created again (epoch %s -> %.*s); its subscribers "
            "start over",
            name.c_str(), t.epoch.c_str(), static_cast<int>(cl->route_topic(name).epoch.size()),
            cl->route_topic(name).epoch.data());
    // Subscribers still waiting for an answer ask again; what they resumed from is gone.
    std::vector<std::pair<topic_waiter, std::string>> again = std::move(t.stream->waiting);
    for (auto& [after, r] : t.stream->replays)
      for (const topic_waiter& w : r->waiters) again.push_back({w, std::string(lost_resume_point)});
    // Resume points being checked are answered by on_resume_point (the origin is gone).
    t.stream.reset();
    t.history.clear();
    t.history_bytes = 0;
    t.seq = 0;
    for (auto& [w, since] : again)
      if (t.shards[w.shard]) cluster_catch_up(t, w.shard, w.sub_id, std::move(since));
    // Live subscribers ask again from their old-epoch position: a reset with the new epoch.
    for (unsigned s = 0; s < t.shards.size(); ++s) {
      if (!t.shards[s]) continue;
      shard_.loop().post(s, [name = name] {
        shard_server::current()->topics().restart_subscribers(name);
      });
    }
  }
}

void topic_registry::restart_subscribers(const std::string& name) {
  auto it = locals_.find(name);
  if (it == locals_.end()) return;
  it->second->subs.for_each([&](topic_subscription& s) {
    if (s.live_) request_catch_up(s, s.epoch_ + "-" + std::to_string(s.last_seq_));
  });
}

void topic_registry::on_linger_end(const std::string& name) {
  auto it = homes_.find(name);
  if (it == homes_.end() || !it->second->stream) return;
  home_topic& t = *it->second;
  topic_stream& ts = *t.stream;
  if (!ts.waiting.empty() || !ts.replays.empty() || ts.checks != 0) return;
  for (bool s : t.shards)
    if (s) return;
  // Nobody here follows the topic any more: the consumer goes (deleted on the server) and so
  // does the history it filled; the next subscriber starts a new one.
  t.stream.reset();
  t.history.clear();
  t.history_bytes = 0;
  t.seq = 0;
}

}  // namespace rc::server
