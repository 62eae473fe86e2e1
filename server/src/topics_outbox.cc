// topic_registry: messages between shards batched per turn, and the fan-out of an event to the
// shards with subscribers (topics.h).
//
// A publication from another shard costs three messages: the publication to its home, the event
// to each shard with subscribers, and the answer back. Posted one by one, a run of publications
// (an HTTP publisher pipelining) would be as many mailbox pushes, and on the receiving side as
// many separate runs of on_event. The outbox keeps them per destination until the end of the
// turn (messages to this shard skip it and run in this turn: see post_batched), then posts one
// message per destination that runs them in order: the home sequences the
// whole run in one turn, and each subscriber shard delivers the run's events in one turn (one
// send per subscriber).
//
// Order: messages to one shard keep their order (one outbox, one mailbox queue). Relative to
// messages posted directly (subscribing, catch-up answers) a batched event may arrive later; the
// subscription protocol tolerates that (events at or below what a subscription has are ignored,
// and the catch-up answer covers what was sequenced before it).
//
// Per-turn limit: the reactor runs at most mailbox_batch messages from one shard per turn, and a
// batch is one message. The receiving side keeps that limit for what is inside: at most
// mailbox_batch batched messages from one shard (itself included) run per turn, the rest in the
// next turns, in order. Output is sent at the end of a turn, so without it a home running many
// pipelined publications in one turn would hand a subscriber thousands of events at once, past
// its backlog's entry limit, and cut it as a slow consumer although it reads everything sent.
//
// Refusals (the destination's mailbox and this shard's backlog full; the reactor counts them in
// mailbox_dropped): a batch's messages are lost. What was posted with a `refused` handler runs it
// (a publication is answered 503, retry later, like any refused request). An event lost this way
// shows as a gap in prev_seq: subscribers catch up from the home's history. An answer lost on its
// way back leaves its publisher waiting; the publisher's connection bounds that wait
// (connection_deferred.cc).
//
// Thread-safety: the registry's shard only.
#include "server/shard.h"
#include "server/topics.h"
#include "topics_internal.h"

namespace rc::server {

void topic_registry::post_batched(unsigned to, message m, message refused) {
  if (to == shard_.id()) {
    // This shard needs no batching (a post to self is a vector push, never refused) and must not
    // wait for the turn's end: posted while the turn's completions are handled (a publisher's
    // request), it runs with the turn's messages, so the events reach the subscribers' buffers
    // before this turn's sends are prepared, in the same submit as the publisher's answer.
    // Delivered a turn later (through the outbox), a closed-loop publisher's runs reached each
    // subscriber in smaller batches, so more sends per delivery (1,000 WebSocket subscribers:
    // 9.9 publications per turn, hence per send, against 12.9 now). It still goes through this
    // shard's inbox, so the per-turn limit below holds for it too; one posted run serves every
    // message queued before it runs.
    inbox& in = inbox_[to];
    in.pending.push_back(std::move(m));
    if (!in.scheduled) {
      in.scheduled = true;
      shard_.loop().post(to, [to] {
        topic_registry& t = shard_server::current()->topics();
        t.inbox_[to].scheduled = false;
        t.run_inbox(to);
      });
    }
    return;
  }
  std::vector<outbox_entry>& box = outbox_[to];
  // Posted after this turn's flush (from another end-of-turn hook): the next turn must not block
  // before flushing it.
  if (box.empty() && outbox_flushed_turn_ == shard_.loop().stats().loop_turns)
    shard_.loop().request_turn();
  box.push_back({std::move(m), std::move(refused)});
  outbox_pending_ = true;
}

void topic_registry::flush_outbox() {
  outbox_flushed_turn_ = shard_.loop().stats().loop_turns;
  if (!outbox_pending_) return;
  outbox_pending_ = false;
  std::vector<message> refusals;
  unsigned from = shard_.id();
  for (unsigned to = 0; to < outbox_.size(); ++to) {
    std::vector<outbox_entry>& box = outbox_[to];
    if (box.empty()) continue;
    std::vector<message> batch;
    std::vector<message> refused;
    batch.reserve(box.size());
    for (outbox_entry& e : box) {
      batch.push_back(std::move(e.run));
      if (e.refused) refused.push_back(std::move(e.refused));
    }
    box.clear();
    bool posted = shard_.loop().post(to, [from, batch = std::move(batch)]() mutable {
      shard_server::current()->topics().take_batch(from, std::move(batch));
    });
    if (!posted)
      for (message& r : refused) refusals.push_back(std::move(r));
  }
  if (refusals.empty()) return;
  for (message& r : refusals) r();
  shard_.loop().request_turn();  // what they answered is sent in the next turn
}

void topic_registry::take_batch(unsigned from, std::vector<message>&& batch) {
  inbox& in = inbox_[from];
  if (in.head == in.pending.size()) {
    in.pending.swap(batch);
    in.head = 0;
  } else {
    for (message& m : batch) in.pending.push_back(std::move(m));
  }
  run_inbox(from);
}

void topic_registry::run_inbox(unsigned from) {
  inbox& in = inbox_[from];
  uint64_t turn = shard_.loop().stats().loop_turns;
  if (in.turn != turn) {
    in.turn = turn;
    in.ran = 0;
  }
  uint32_t limit = shard_.loop().options().mailbox_batch;
  while (in.head < in.pending.size() && in.ran < limit) {
    message m = std::move(in.pending[in.head++]);
    ++in.ran;
    m();
  }
  if (in.head == in.pending.size()) {
    in.pending.clear();
    in.head = 0;
    return;
  }
  if (in.scheduled) return;
  in.scheduled = true;
  // Posts to self run first in the next turn, before anything more from `from` (which, arriving
  // meanwhile, queues behind the rest here).
  shard_.loop().post(shard_.id(), [from] {
    topic_registry& t = shard_server::current()->topics();
    t.inbox_[from].scheduled = false;
    t.run_inbox(from);
  });
}

void topic_registry::fan_out(const home_topic& t, const topic_event& e) {
  for (unsigned s = 0; s < t.shards.size(); ++s) {
    if (!t.shards[s]) continue;
    post_batched(s, [name = t.name, e] { shard_server::current()->topics().on_event(name, e); });
  }
}

}  // namespace rc::server
