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
// Thread-safety: the registry's shard only.
#include "server/shard.h"
#include "server/topics.h"
#include "topics_internal.h"

namespace rc::server {

void topic_registry::post_batched(unsigned to, message m) {
  if (to == shard_.id()) {
    // This shard needs no batching (a post to self is a vector push) and must not wait for the
    // turn's end: posted while the turn's completions are handled (a publisher's request), it
    // runs with the turn's messages, so the events reach the subscribers' buffers before this
    // turn's sends are prepared, in the same submit as the publisher's answer. Delivered a turn
    // later (through the outbox), a closed-loop publisher's runs reached each subscriber in
    // smaller batches, so more sends per delivery (1,000 WebSocket subscribers: 9.9 publications
    // per turn, hence per send, against 12.9 now).
    shard_.loop().post(to, std::move(m));
    return;
  }
  std::vector<message>& box = outbox_[to];
  // Posted after this turn's flush (from another end-of-turn hook): the next turn must not block
  // before flushing it.
  if (box.empty() && outbox_flushed_turn_ == shard_.loop().stats().loop_turns)
    shard_.loop().request_turn();
  box.push_back(std::move(m));
  outbox_pending_ = true;
}

void topic_registry::flush_outbox() {
  outbox_flushed_turn_ = shard_.loop().stats().loop_turns;
  if (!outbox_pending_) return;
  outbox_pending_ = false;
  for (unsigned to = 0; to < outbox_.size(); ++to) {
    std::vector<message>& box = outbox_[to];
    if (box.empty()) continue;
    // A refusal (the mailbox and its backlog full) is counted by the reactor (mailbox_dropped);
    // subscribers then see the gap in prev_seq and catch up from the home's history.
    if (box.size() == 1) {
      shard_.loop().post(to, std::move(box.front()));
      box.clear();
      continue;
    }
    std::vector<message> batch;
    batch.swap(box);
    shard_.loop().post(to, [batch = std::move(batch)]() mutable {
      for (message& m : batch) m();
    });
  }
}

void topic_registry::fan_out(const home_topic& t, const topic_event& e) {
  for (unsigned s = 0; s < t.shards.size(); ++s) {
    if (!t.shards[s]) continue;
    post_batched(s, [name = t.name, e] { shard_server::current()->topics().on_event(name, e); });
  }
}

}  // namespace rc::server
