// fanout: one publisher, N subscribers on one topic; every delivery's publish-to-deliver latency
// and every subscriber's sequence checked.
//
// Subscribers (WebSocket via /ws `subscribe`, or SSE via /v1/topics/{t}/events) ask for the
// topic's events after sequence 0 (`since`), so each must see 1, 2, 3, ... with no gap and no
// repeat, however its subscription raced the first publications (with --sparse-seq: every
// publication, in increasing order; see seq_tracker); other servers' protocols (--dialect
// nchan, pushpin: the publication carries its own sequence) are in fanout_dialect.h. The
// publisher (HTTP POST on a keep-alive connection, or WebSocket `publish`) lives on thread 0 and
// puts a CLOCK_MONOTONIC time into every publication: {"ts":<ns>,"pad":"..."}; a subscriber's
// latency is its receive time minus that (same machine, same clock). Subscribers are spread over
// the --target servers, the publisher goes to --pub-target (targets.h): across the nodes of a
// cluster. With --rate the time put in is when the publication was due by the schedule, not when
// it was written, so a publisher that fell behind shows in the latency (no coordinated omission).
//
// Loss: a gap, a repeat, a subscriber short of the last publication when the drain ends, or a
// publication never answered, fails the run unless --allow-loss; an overloaded server shows up
// here (a paced publisher offering more than it carries), so benchmarks may allow it and report
// the counts.
//
// Pacing: --rate R publishes R per second on a schedule (the publisher's lag behind it is
// reported); --rate 0 is a closed loop that keeps at most --window publications not yet
// delivered to every subscriber, which measures the most the server (or the client) can carry.
//
// Thread-safety: everything here lives on one client thread; threads share only run_control.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "load/connection.h"
#include "load/env.h"

namespace rc::load {

// One subscriber's view of the topic's sequence numbers. Dense (one node numbers a topic's
// events 1, 2, 3, ...): a gap shows at once. Sparse (--sparse-seq: a cluster numbers them by a
// stream that topics share, so a topic's are increasing but not consecutive): they must
// increase, and what is missing shows at the end, by count.
class seq_tracker {
 public:
  enum class verdict : uint8_t { ok, duplicate, gap };
  // Checks `seq` (repeated or going backwards: duplicate, nothing changes); a gap (dense only)
  // sets `missing` to the publications skipped.
  verdict accept(uint64_t seq, bool sparse, uint64_t& missing);
  uint64_t last() const { return last_; }
  uint64_t received() const { return received_; }
  // Publications this subscriber lacks at the end, when the last one published was `final_seq`
  // and `final_count` were published (counted only when sparse).
  uint64_t shortfall(uint64_t final_seq, uint64_t final_count, bool sparse) const;

 private:
  uint64_t last_ = 0;
  uint64_t received_ = 0;
};

// What the subscribers of one thread share: the topic, the parsing templates, the counters.
struct fanout_context {
  fanout_context(shard_env& e);

  shard_env& env;
  // The start of every WebSocket delivery up to the sequence number:
  // {"id":"s","event":"message","data":{"topic":"<topic>","seq":
  std::string ws_message_prefix;
  uint64_t delivered = 0;  // by this thread's subscribers, whole run

  // Checks `seq` against the subscriber's sequence and records the delivery's latency.
  void deliver(seq_tracker& t, uint64_t seq, uint64_t ts_ns, uint64_t now_ns);
};

// The decimal number right after `key` (e.g. "\"seq\":") in `text`, searching from `from`.
// Returns false if the key is absent or no digits follow.
bool find_number(std::string_view text, std::string_view key, uint64_t& out, size_t from = 0);

// A subscriber connection for the configured protocol; start() subscribes.
class subscriber {
 public:
  virtual ~subscriber() = default;
  virtual void start() = 0;
  virtual load_connection& connection() = 0;
  virtual const seq_tracker& seq() const = 0;
};
std::unique_ptr<subscriber> make_subscriber(fanout_context& ctx, int fd, uint64_t seed);

// The publisher: its connection, its pacing, its acknowledgements.
class publisher {
 public:
  virtual ~publisher() = default;
  // Connects and prepares (ready is reported when it can publish).
  virtual void start() = 0;
  virtual void on_running(uint64_t now_ns) = 0;
  // Publishes what is due; called every tick and at the end of every turn.
  virtual void pump(uint64_t now_ns) = 0;
  // After the window: true once every publication was answered (then the final sequence number
  // is published to run_control).
  virtual bool settled() = 0;
  virtual void finish() = 0;
};
std::unique_ptr<publisher> make_publisher(shard_env& env);

}  // namespace rc::load
