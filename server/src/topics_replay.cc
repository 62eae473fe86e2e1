// Resumes across nodes from before the home's history (topics.h, "Across nodes"): the resume
// point is checked against the stream, then the events after it are read by a temporary ordered
// consumer until they meet the history. Bounded like the history: at most --topic-history events
// (and --topic-history-bytes-max) are read from the stream; a resume from further back, or from
// an id the stream no longer holds, gets a reset and the node's history, as on one node.
// Subscribers resuming from the same point share one replay.
//
// Why the history and the replay meet without a gap: the history holds every event of the topic
// after `floor` (where the home's consumer started, or the newest event the history dropped). The
// replay starts at the resume point itself (so a resume point the stream has lost shows) and
// stops at the first event past `floor`, or when the stream has nothing more for the topic;
// either way it has read every event up to where the history starts (at the stream's end, unless
// the history has meanwhile dropped events beyond the replay's last read: the live consumer ran
// ahead, and the replay reads on past the floor). The answer is made and sent
// at that moment: the history may drop events later, and live events sent to the subscriber's
// shard after the answer follow it in the same mailbox.
#include <algorithm>
#include <cstddef>
#include <iterator>

#include "server/cluster.h"
#include "server/jetstream.h"
#include "server/shard.h"
#include "topics_internal.h"

namespace rc::server {

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
  if (!t) {
    // The stream was created again meanwhile (on_epochs_changed): the point is lost.
    auto it = homes_.find(o.name);
    if (it != homes_.end() && it->second->shards[shard])
      cluster_catch_up(*it->second, shard, sub_id, std::string(lost_resume_point));
    return;
  }
  topic_stream& ts = *t->stream;
  --ts.checks;
  if (!m.found && m.err.error != 0) {
    catch_up c;
    c.error_code = "nats_unavailable";
    c.error_message = "The topic's stream cannot be read (" + m.err.description + "); retry later";
    send_catch_up(shard, sub_id, std::move(c));
  } else if (!m.found || (after != 0 && m.subject != ts.subject)) {
    // Not an event of this topic, or one the stream's retention has dropped: start over.
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
  uint64_t key = after;
  std::unique_ptr<js_replay>& slot = ts.replays[key];
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
        topic_registry& reg = shard_server::current()->topics();
        if (home_topic* ht = reg.find_stream_home(rp->origin))
          reg.end_replay(*ht, *rp, replay_end::failed);  // too slow; frees rp
      },
      &r);
  shard_.loop().arm_after_ms(r.deadline, topic_replay_timeout_ms);
  stream_origin o = ts.origin;
  auto find = [o, key]() -> std::pair<home_topic*, js_replay*> {
    topic_registry& reg = shard_server::current()->topics();
    home_topic* ht = reg.find_stream_home(o);
    if (!ht) return {nullptr, nullptr};
    auto it = ht->stream->replays.find(key);
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
    if (rp->after != 0 && rp->last == 0) rp->reset = true;
    if (rp->reset || rp->last >= ht->stream->floor || !ht->stream->floor_dropped)
      shard_server::current()->topics().end_replay(*ht, *rp, replay_end::complete);
  };
  h.on_error = [find](const js_error&) {
    auto [ht, rp] = find();
    if (rp) shard_server::current()->topics().end_replay(*ht, *rp, replay_end::failed);
  };
  r.consumer = shard_.cluster_link()->js().consume_ordered(
      ts.stream, ts.subject, std::max<uint64_t>(after, 1), false, std::move(h));
}

void topic_registry::on_replay_message(home_topic& t, js_replay& r, uint64_t seq, uint64_t pending,
                                       std::string_view data) {
  if (seq <= r.last) return;
  topic_stream& ts = *t.stream;
  if (!r.reset && r.after != 0 && r.last == 0) {
    // The first event must be the resume point itself: it was there when checked, and retention
    // drops the oldest first, so nothing after it is missing if it still is. If it is gone, the
    // client starts over.
    if (seq == r.after) {
      r.last = seq;
      if (pending == 0 && (r.last >= ts.floor || !ts.floor_dropped))
        end_replay(t, r, replay_end::complete);
      return;
    }
    r.reset = true;
    return end_replay(t, r, replay_end::complete);
  }
  if (seq > ts.floor) return end_replay(t, r, replay_end::complete);  // the history has it
  r.last = seq;
  if (shard_.json_parser().parse(data).ok()) {  // not JSON: not a publication (as live)
    r.events.push_back(encode_event(t.name, t.epoch, seq, data));
    r.bytes += r.events.back().bytes();
  }
  const auto& cfg = shard_.config();
  if (r.events.size() > cfg.topic_history || r.bytes > cfg.topic_history_bytes_max) {
    r.reset = true;  // further back than a resume may reach
    return end_replay(t, r, replay_end::complete);
  }
  if (pending == 0 && (r.last >= ts.floor || !ts.floor_dropped))
    end_replay(t, r, replay_end::complete);
}

topic_registry::catch_up topic_registry::replay_answer(home_topic& t, js_replay& r) {
  if (r.end == replay_end::failed) {
    catch_up c;
    c.error_code = "nats_unavailable";
    c.error_message = "The topic's stream could not be read in time; retry later";
    return c;
  }
  if (r.reset) return stream_catch_up(t, true);
  catch_up c = stream_catch_up(t, false);
  c.events.assign(std::make_move_iterator(r.events.begin()),
                  std::make_move_iterator(r.events.end()));
  uint64_t upto = std::max(r.last, r.after);
  for (const topic_event& e : t.history)
    if (e.seq > upto) c.events.push_back(e);
  return c;
}

void topic_registry::end_replay(home_topic& t, js_replay& r, replay_end how) {
  topic_stream& ts = *t.stream;
  auto it = ts.replays.find(r.after);
  if (it == ts.replays.end() || it->second.get() != &r) return;
  std::unique_ptr<js_replay> owned = std::move(it->second);
  ts.replays.erase(it);
  r.end = how;
  shard_.loop().cancel_timer(r.deadline);
  // Stopping from inside the consumer's own callback is allowed (jetstream.h).
  if (r.consumer) shard_.cluster_link()->js().stop_consumer(r.consumer);
  catch_up c = replay_answer(t, r);
  for (size_t i = 0; i < r.waiters.size(); ++i) {
    const topic_waiter& w = r.waiters[i];
    send_catch_up(w.shard, w.sub_id, i + 1 == r.waiters.size() ? std::move(c) : catch_up(c));
  }
  check_idle(t);
}

}  // namespace rc::server
