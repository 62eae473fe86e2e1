// What jetstream.cc, jetstream_ordered.cc and jetstream_kv.cc share: the state of one ordered
// consumer and the mapping of transport errors.
//
// Thread-safety: as jetstream (one shard).
#pragma once

#include <cerrno>
#include <set>
#include <string>
#include <vector>

#include "core/timer_wheel.h"
#include "server/jetstream.h"

namespace rc::server {

// A nats_reply's transport failure (error, or a status ≥ 400) as js_error; ok() when the reply
// carries an answer to parse.
js_error js_transport_error(const nats_reply& r);

// One ordered consumer. Each creation on the server is an incarnation (`generation`) with its own
// deliver subject; messages and answers of older incarnations are ignored.
struct jetstream::ordered {
  // A message that arrived before the creation's answer (the server may start delivering
  // first); replayed once the answer is in. Bounded by count and bytes (at least one is always
  // held); beyond, messages are dropped and the incarnation is recreated after the held ones
  // are handed over. Flow control requests of that time are answered only after the handover,
  // so the server's own window stops it meanwhile.
  struct held {
    std::string subject, reply, headers, data;
  };
  static constexpr size_t held_max = 4096;
  static constexpr size_t held_bytes_max = 4 << 20;
  static constexpr size_t held_fc_max = 64;

  jetstream* js = nullptr;
  uint64_t id = 0;
  std::string stream, filter;
  bool last_per_subject = false;
  bool headers_only = false;
  uint64_t start_seq = 0;  // as asked (first creation)
  ordered_handlers h;

  uint64_t generation = 0;
  uint64_t sid = 0;  // subscription of the current deliver subject (0: none)
  uint64_t connection = 0;  // the client's connects count when this incarnation was created
  std::string name;  // the server's name of the current incarnation ("" until created)
  bool created = false;
  bool started = false;    // some incarnation was created or delivered: last_sseq is meaningful
  uint64_t last_sseq = 0;  // last stream sequence delivered (or the floor)
  uint64_t next_cseq = 1;  // consumer sequence expected next
  bool caught_up = false;  // reported for this incarnation
  bool active = false;     // a message or heartbeat since the last check
  std::vector<held> held_msgs;
  size_t held_bytes = 0;
  bool held_overflow = false;         // some were dropped: recreate after the handover
  std::vector<std::string> held_fc;  // flow control subjects to answer after the handover

  timer check_timer;  // missed heartbeats
  timer retry_timer;  // after a failed creation
};

// One kv_keys walk: an ordered consumer over the bucket's last message per key (headers only)
// until nothing is pending, bounded by a deadline.
struct jetstream::keys_walk {
  jetstream* js = nullptr;
  uint64_t consumer = 0;
  size_t prefix_len = 0;
  std::set<std::string> keys;
  unique_function<void(js_error&&, std::vector<std::string>&&)> done;
  timer deadline;
  int deadline_error = ETIMEDOUT;  // ENOTCONN: started or cut off while disconnected

  // Stops the consumer, frees the walk, then calls done (keys only when err is ok).
  void finish(js_error err);
};

}  // namespace rc::server
