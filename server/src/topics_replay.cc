// Resumes across nodes from before the home's history (topics.h, "Across nodes"): the resume
// point is checked against the stream, then the events after it are read by a temporary ordered
// consumer until they meet the history. Bounded like the history (--topic-history events and
// --topic-history-bytes-max); a resume from further back, or from an id the stream no longer
// holds, gets a reset. Subscribers resuming from the same point share one replay.
//
// Why the history and the replay meet without a gap: the history holds every event of the topic
// after `floor` (the stream's last sequence when the home's consumer started, or the newest event
// the history dropped). The replay starts at the resume point itself (so a resume point the
// stream has lost shows) and stops at the first event past `floor`, or when the stream has
// nothing more for the topic; either way it has read every event up to where the history starts.
#include <algorithm>

#include "server/cluster.h"
#include "server/jetstream.h"
#include "server/shard.h"
#include "topics_internal.h"

namespace rc::server {

// Ends a replay in a later turn (the deadline timer fires at once): its consumer is stopped
// outside the consumer's own callback.
void topic_registry::end_replay(reactor& loop, js_replay& r, replay_end how) {
  if (r.end != replay_end::running) return;
  r.end = how;
  loop.cancel_timer(r.deadline);
  loop.arm_after_ms(r.deadline, 0);
}

void topic_registry::check_resume_point(home_topic& t, unsigned shard, uint64_t sub_id,
                                        uint64_t after) {
  topic_stream& ts = *t.stream;
  if (auto it = ts.replays.find(after); it != ts.replays.end()) {
    it->second->waiters.push_back({shard, sub_id});
    return;
  }
  ++ts.checks;
  stream_origin o = ts.origin;
  if (after == 0) {
    // "From the very start": possible while the stream has dropped nothing at all.
    shard_.cluster_link()->js().stream_info(ts.stream, [o, shard, sub_id](js_stream_info&& info) {
      js_stored_msg m;
      m.err = std::move(info.err);
      m.found = m.err.ok() && info.first_seq <= 1;
      shard_server::current()->topics().on_resume_point(o, shard, sub_id, 0, m);
    });
    return;
  }
  shard_.cluster_link()->js().get(ts.stream, after, [o, shard, sub_id, after](js_stored_msg&& m) {
    shard_server::current()->topics().on_resume_point(o, shard, sub_id, after, m);
  });
}

void topic_registry::on_resume_point(const stream_origin& o, unsigned shard, uint64_t sub_id,
                                     uint64_t after, const js_stored_msg& m) {
  home_topic* t = find_stream_home(o);
  if (!t) return;
  topic_stream& ts = *t->stream;
  --ts.checks;
  if (!m.found && m.err.error != 0) {
    catch_up c;
    c.error_code = "nats_unavailable";
    c.error_message = "The topic's stream cannot be read (" + m.err.description + "); retry later";
    send_catch_up(shard, sub_id, std::move(c));
  } else if (!m.found || (after != 0 && m.subject != ts.subject)) {
    // Not an event of this topic, or one the stream's retention has dropped.
    send_catch_up(shard, sub_id, stream_catch_up(*t, true));
  } else if (after >= ts.floor && after != 0) {
    // Past what this node has seen: the events up to it are on their way and are skipped.
    catch_up c = stream_catch_up(*t, false);
    c.seq = std::max(c.seq, after);
    for (const topic_event& e : t->history)
      if (e.seq > after) c.events.push_back(e);
    send_catch_up(shard, sub_id, std::move(c));
  } else {
    start_replay(*t, shard, sub_id, after);
  }
  check_idle(*t);
}

void topic_registry::start_replay(home_topic& t, unsigned shard, uint64_t sub_id, uint64_t after) {
  topic_stream& ts = *t.stream;
  std::unique_ptr<js_replay>& slot = ts.replays[after];
  if (slot) {
    slot->waiters.push_back({shard, sub_id});
    return;
  }
  slot = std::make_unique<js_replay>();
  js_replay& r = *slot;
  r.origin = ts.origin;
  r.after = after;
  r.waiters.push_back({shard, sub_id});
  r.deadline.set_callback(
      [](timer&, void* ctx) {
        auto* rp = static_cast<js_replay*>(ctx);
        if (rp->end == replay_end::running) rp->end = replay_end::failed;  // too slow
        topic_registry& reg = shard_server::current()->topics();
        stream_origin from = rp->origin;
        uint64_t point = rp->after;
        if (home_topic* ht = reg.find_stream_home(from)) reg.finish_replay(*ht, point);  // frees rp
      },
      &r);
  shard_.loop().arm_after_ms(r.deadline, topic_replay_timeout_ms);
  stream_origin o = ts.origin;
  auto find = [o, after]() -> std::pair<home_topic*, js_replay*> {
    topic_registry& reg = shard_server::current()->topics();
    home_topic* ht = reg.find_stream_home(o);
    if (!ht) return {nullptr, nullptr};
    auto it = ht->stream->replays.find(after);
    return {ht, it == ht->stream->replays.end() ? nullptr : it->second.get()};
  };
  jetstream::ordered_handlers h;
  h.on_msg = [find](const js_delivery& d) {
    auto [ht, rp] = find();
    if (rp)
      shard_server::current()->topics().on_replay_message(*ht, *rp, d.stream_seq, d.pending,
                                                          d.data);
  };
  h.on_caught_up = [find]() {  // the stream has nothing more for the topic
    auto [ht, rp] = find();
    if (!rp) return;
    // Not even the resume point came: the stream dropped it (and maybe more) since the check.
    bool lost = rp->after != 0 && rp->last == 0;
    end_replay(shard_server::current()->loop(), *rp,
               lost ? replay_end::reset : replay_end::complete);
  };
  h.on_error = [find](const js_error&) {
    auto [ht, rp] = find();
    if (rp) end_replay(shard_server::current()->loop(), *rp, replay_end::failed);
  };
  r.consumer = shard_.cluster_link()->js().consume_ordered(
      ts.stream, ts.subject, std::max<uint64_t>(after, 1), false, std::move(h));
}

void topic_registry::on_replay_message(home_topic& t, js_replay& r, uint64_t seq, uint64_t pending,
                                       std::string_view data) {
  if (r.end != replay_end::running || seq <= r.last) return;
  topic_stream& ts = *t.stream;
  reactor& loop = shard_.loop();
  if (r.after != 0 && r.last == 0) {
    // The first event must be the resume point itself: it was there when checked, and retention
    // drops the oldest first, so nothing after it is missing if it still is.
    r.last = seq;
    if (seq != r.after) return end_replay(loop, r, replay_end::reset);
    if (pending == 0) end_replay(loop, r, replay_end::complete);
    return;
  }
  if (seq > ts.floor) return end_replay(loop, r, replay_end::complete);  // the history has it
  r.last = seq;
  if (shard_.json_parser().parse(data).ok()) {  // not JSON: not a publication (as live)
    r.events.push_back(encode_event(t.name, t.epoch, seq, data));
    r.bytes += r.events.back().bytes();
  }
  const auto& cfg = shard_.config();
  if (r.events.size() > cfg.topic_history || r.bytes > cfg.topic_history_bytes_max)
    return end_replay(loop, r, replay_end::reset);  // further back than a resume may reach
  if (pending == 0) end_replay(loop, r, replay_end::complete);
}

void topic_registry::finish_replay(home_topic& t, uint64_t after) {
  topic_stream& ts = *t.stream;
  auto it = ts.replays.find(after);
  if (it == ts.replays.end()) return;
  std::unique_ptr<js_replay> r = std::move(it->second);
  ts.replays.erase(it);
  shard_.loop().cancel_timer(r->deadline);
  if (r->consumer) shard_.cluster_link()->js().stop_consumer(r->consumer);
  replay_end how = r->end;
  // The history dropped an event the replay did not reach (it ran past the replay meanwhile):
  // what lies between is lost to this answer.
  if (how == replay_end::complete && r->last < ts.floor && ts.floor_dropped)
    how = replay_end::reset;
  catch_up c;
  if (how == replay_end::complete) {
    c = stream_catch_up(t, false);
    c.events = std::move(r->events);
    uint64_t upto = std::max(r->last, after);
    for (const topic_event& e : t.history)
      if (e.seq > upto) c.events.push_back(e);
  } else if (how == replay_end::reset) {
    c = stream_catch_up(t, true);
  } else {
    c.error_code = "nats_unavailable";
    c.error_message = "The topic's stream could not be read in time; retry later";
  }
  for (size_t i = 0; i < r->waiters.size(); ++i) {
    const topic_waiter& w = r->waiters[i];
    send_catch_up(w.shard, w.sub_id, i + 1 == r->waiters.size() ? std::move(c) : catch_up(c));
  }
  check_idle(t);
}

}  // namespace rc::server
