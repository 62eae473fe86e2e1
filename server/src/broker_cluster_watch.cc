// Watching a message from its stored log (broker_cluster.h): on a node that does not work the
// message's partition, or when its home does not hold every event the watcher needs.
#include <charconv>

#include "proto/nats.h"
#include "server/cluster.h"
#include "server/connection.h"
#include "server/jetstream.h"
#include "server/shard.h"

#include "broker_cluster.h"
#include "broker_internal.h"

namespace rc::server {

void broker_cluster::watch_stored(broker_watch& w) {
  uint64_t wid = w.id_;
  if (!cluster_.available()) {
    answer_watch(wid, broker::watch_answer::unavailable);
    return;
  }
  std::string tag = user_tag(w.user_id_);
  std::string work = "rc.bq." + std::to_string(partition_of(w.user_id_)) + "." + w.message_id_;
  // Its log says it exists; before its first event is stored, its work item does.
  cluster_.js().get_last(
      broker_log_stream, "rc.bl." + w.message_id_,
      [this, alive = alive_, wid, tag, work](js_stored_msg&& m) {
        if (!*alive) return;
        if (!m.found && m.err.error != 0) {
          answer_watch(wid, broker::watch_answer::unavailable);
          return;
        }
        if (m.found) {
          auto h = nats::header_block::parse(m.headers);
          answer_watch(wid, h && h->get("Rc-User") == tag ? broker::watch_answer::found
                                                          : broker::watch_answer::not_found);
          return;
        }
        cluster_.js().get_last(broker_work_stream, work,
                               [this, alive, wid, tag](js_stored_msg&& item) {
                                 if (!*alive) return;
                                 broker::watch_answer a = broker::watch_answer::not_found;
                                 if (item.found) {
                                   auto h = nats::header_block::parse(item.headers);
                                   if (h && h->get("Rc-User") == tag)
                                     a = broker::watch_answer::found;
                                 } else if (item.err.error != 0) {
                                   a = broker::watch_answer::unavailable;
                                 }
                                 answer_watch(wid, a);
                               });
      });
}

void broker_cluster::answer_watch(uint64_t watch_id, broker::watch_answer a) {
  auto rit = broker_.pending_ready_.find(watch_id);
  unique_function<void(broker::watch_answer)> ready;
  if (rit != broker_.pending_ready_.end()) {
    ready = std::move(rit->second);
    broker_.pending_ready_.erase(rit);
  }
  auto it = broker_.watches_.find(watch_id);
  if (it == broker_.watches_.end()) return;  // the client left meanwhile
  broker_watch& w = *it->second;
  if (a != broker::watch_answer::found) {
    connection::detach(w);
    broker_.remove(w);
    if (ready) ready(a);
    return;
  }
  if (ready) ready(a);  // the SSE response begins here
  read_log(w);
}

void broker_cluster::read_log(broker_watch& w) {
  if (w.remote_) return;
  w.live_ = false;  // events come from the stored log only
  uint64_t wid = w.id_;
  jetstream::ordered_handlers h;
  h.on_msg = [this, alive = alive_, wid](const js_delivery& d) {
    if (*alive) on_stored_event(wid, d);
  };
  h.on_ready = [](uint64_t) {};
  h.on_error = [](const js_error&) {};  // it retries by itself while connected
  w.remote_ = cluster_.js().consume_ordered(broker_log_stream, "rc.bl." + w.message_id_, 1,
                                            false, std::move(h));
}

void broker_cluster::on_stored_event(uint64_t watch_id, const js_delivery& d) {
  auto it = broker_.watches_.find(watch_id);
  if (it == broker_.watches_.end()) return;
  broker_watch& w = *it->second;
  auto h = nats::header_block::parse(d.headers);
  if (!h) return;
  std::string_view seq_text = h->get("Rc-Seq"), type = h->get("Rc-Event");
  uint64_t seq = 0;
  auto [p, ec] = std::from_chars(seq_text.data(), seq_text.data() + seq_text.size(), seq);
  if (ec != std::errc() || seq == 0 || type.empty()) return;
  // Stored twice (a retried or re-sent publish, a takeover's overlap): each seq goes out once.
  if (seq <= w.last_seq_) return;
  bool terminal = type == "done" || type == "error";
  broker_event e = make_broker_event(seq, type, d.data, terminal);
  if (w.deliver(e) && terminal) w.finish();  // finish() stops the reader (stop_reading)
}

void broker_cluster::stop_reading(broker_watch& w) {
  uint64_t consumer = w.remote_;
  w.remote_ = 0;
  // Possibly from inside the consumer's own callback: stopped in a later turn (callbacks until
  // then find no watch and do nothing).
  shard_.loop().post(shard_.id(), [consumer] {
    broker_cluster* bc = shard_server::current()->broker_queue().cluster_side();
    if (bc) bc->cluster_.js().stop_consumer(consumer);
  });
}

void broker_cluster::on_moved(const std::string& message_id) {
  auto it = broker_.watching_.find(message_id);
  if (it == broker_.watching_.end()) return;
  std::vector<broker_watch*> moving;
  it->second.list.for_each([&](broker_watch& w) {
    if (w.live_) moving.push_back(&w);  // the others still wait for their home's answer
  });
  for (broker_watch* w : moving) read_log(*w);
}

}  // namespace rc::server
