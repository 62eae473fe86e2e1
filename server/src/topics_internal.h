// The topic registry's private state (topics.h), shared by topics.cc (one node), topics_cluster.cc
// (the JetStream side of a home topic) and topics_replay.cc (resumes read from the stream).
//
// Thread-safety: everything here belongs to one shard's registry.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/timer_wheel.h"
#include "server/topics.h"

namespace rc::server {

// How long a node keeps a topic's consumer (and its history) after its last local subscriber
// left, so a client that reconnects at once resumes from memory.
inline constexpr uint64_t topic_consumer_linger_ms = 2000;

// How long a resume may take to read the stream before it gives up.
inline constexpr uint64_t topic_replay_timeout_ms = 10000;

struct topic_registry::home_topic {
  std::string name;
  std::string epoch;
  uint64_t seq = 0;  // the last event (one node: assigned here; cluster: the stream's)
  std::deque<topic_event> history;
  uint64_t history_bytes = 0;
  std::vector<bool> shards;  // shards with subscribers
  uint64_t last_used = 0;
  std::unique_ptr<topic_stream> stream;  // cluster mode only
  ~home_topic();
};

struct topic_registry::local_topic {
  intrusive_list<topic_subscription, topic_sub_tag> subs;
  size_t count = 0;
  bool delivering = false;  // on_event is iterating subs: don't free this topic now
};

struct topic_registry::catch_up {
  std::string epoch;
  uint64_t seq = 0;     // the home's sequence number when it answered
  uint64_t oldest = 0;  // the oldest event still in history (seq + 1 when none)
  bool reset = false;   // the resume point was lost: the client starts over
  std::vector<topic_event> events;
  std::string error_code;  // the subscription cannot start: ended with this error
  std::string error_message;
};

// A subscriber waiting for its home's answer.
struct topic_waiter {
  unsigned shard = 0;
  uint64_t sub_id = 0;
};

// Identifies a topic_stream in callbacks that may outlive it (the home topic can go meanwhile).
struct topic_registry::stream_origin {
  std::string name;
  uint64_t generation = 0;
};

// How a replay from the stream ended.
enum class replay_end : uint8_t {
  running,
  complete,  // it reached the history (or the stream's end): replayed events + history
  failed,    // the stream could not be read (in time)
};

// A resume from before the home's history, read from the stream by a temporary ordered consumer.
// Subscribers resuming from the same point share one.
struct topic_registry::js_replay {
  stream_origin origin;
  replay_end end = replay_end::running;
  bool reset = false;  // the resume point is lost or too far back: the answer is a reset
  uint64_t consumer = 0;
  uint64_t after = 0;  // the resume point: events after it are wanted
  std::vector<topic_waiter> waiters;
  std::vector<topic_event> events;
  uint64_t bytes = 0;
  uint64_t last = 0;  // the last stream sequence read (the first is `after` itself, when > 0)
  timer deadline;     // topic_replay_timeout_ms
};

// The JetStream side of a home topic on one node.
struct topic_registry::topic_stream {
  topic_stream(topic_registry& reg, std::string name, uint64_t generation);
  ~topic_stream();  // stops the consumers

  topic_registry& registry;
  stream_origin origin;
  std::string stream;   // "RC_T<i>"
  std::string subject;  // "rc.t<i>.<epoch>.<topic>" (the epoch of this consumer)
  uint64_t consumer = 0;
  bool ready = false;          // the consumer exists: `floor` and the history are meaningful
  uint64_t floor = 0;          // the history holds every event after this sequence
  bool floor_dropped = false;  // `floor` moved because the history dropped an event
  std::vector<std::pair<topic_waiter, std::string>> waiting;  // (subscriber, since) until ready
  std::map<uint64_t, std::unique_ptr<js_replay>> replays;     // by resume point
  size_t checks = 0;  // resume points being checked (get) before a replay
  timer linger;
};

// A resume point that never parses: the answer to it is a reset from what the home has.
inline constexpr std::string_view lost_resume_point = "-";

// "<epoch>-<seq>" or "<seq>": the epoch (possibly empty) and the sequence number.
bool parse_topic_since(std::string_view since, std::string_view& epoch, uint64_t& seq);

}  // namespace rc::server
