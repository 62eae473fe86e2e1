// remote_node: follow-ups of retained upstream WebSocket sessions (stateful `responses-ws`
// upstreams, responses_ws_engine.h) routed to the node that holds the session, over NATS.
//
// Owner records. When a shard retains a session under a response id (cluster mode), it writes
// the key `session.<id>` of the rc_responses bucket (responses_cluster.h; same TTL): the value
// "1 <node id> <shard>" (a version, then who holds it). A follow-up naming the id on any node
// reads the record first: another node → generate_on_node; this node, or no record, or the
// bucket cannot be asked → the local path as without a cluster (a follow-up for an id nobody
// retains still gets 400 previous_response_not_found there). The write is asynchronous: a
// follow-up sent on another node within the same millisecond the response ended may not find it.
//
// Subjects (one shard answers, no queue group: the session lives on one shard): the shard that
// retained a session subscribes, once, to
//   rc.node.<node>.s<shard>.gen   a request (node_wire.h); its reply subject is the client's
//                                 inbox, where every message for the stream goes:
//                                 "A" accepted, "K" keepalive, "E"<event bytes> an event;
//   rc.node.<node>.s<shard>.ctl   from the client: "a"<varint n><inbox> n events delivered (n may
//                                 be 0: a keepalive), "c"<inbox> cancel (the client left).
// Flow control as generate_on_shard (remote_generation.h): the owner sends at most
// remote_window unacknowledged events, then pauses its stream (and so the upstream socket); it
// resumes when fewer than half are unacknowledged. The client acknowledges what its sink
// accepted, every remote_window/4 events and with each keepalive.
//
// Failures are never silent. Both sides send a keepalive every node_keepalive_ms; the client
// ends the stream with an error when it hears nothing for node_silence_ms (the owner died, NATS
// went away, or the owner never answered; "no responders" ends it at once): before the first
// event that is HTTP 503 `node_unavailable` with Retry-After, after it an error event. The owner
// cancels its stream (dropping the session, as a client leaving does locally) when it hears
// nothing from the client for node_silence_ms, or on "c".
//
// Thread-safety: everything runs on the shard that created it; NATS callbacks come on that
// shard (its nats_client).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/unique_function.h"
#include "server/engine.h"
#include "server/owned_event.h"

namespace rc::server {

class shard_server;

inline constexpr uint64_t node_keepalive_ms = 1000;
inline constexpr uint64_t node_silence_ms = 5000;
inline constexpr std::string_view session_owner_key_prefix = "session.";

// Records that this shard retains the session of response `id` (cluster mode; else nothing),
// and makes sure this shard answers requests for it.
void note_session_owner(shard_server& s, const std::string& id);

// A follow-up (req.original.previous_response_id) on engine `upstream`: looks up who holds the
// session; runs it there through NATS, or with `local` (the path without a cluster; called at
// most once, on this shard, possibly in a later turn — what it needs must be kept alive by it).
// REQUIRES: s.cluster_link().
using local_start = unique_function<std::unique_ptr<engine_stream>(engine_sink& sink)>;
std::unique_ptr<engine_stream> route_follow_up(shard_server& s, const std::string& upstream,
                                               const generation_request& req, engine_sink& sink,
                                               local_start local);

// Runs `req` on shard `owner_shard` of node `owner` (its responses-ws engine `upstream`) and
// streams the events back to `sink`. Destroying the stream cancels the remote one. No event
// reaches `sink` from inside this call.
std::unique_ptr<engine_stream> generate_on_node(shard_server& s, const std::string& owner,
                                                unsigned owner_shard, const std::string& upstream,
                                                const generation_request& req, engine_sink& sink);

// The error a stream ends with when the owner does not answer (503 + Retry-After).
owned_event node_unavailable_event(const std::string& owner);

// "rc.node.<node>.s<shard>.<what>".
std::string node_subject(std::string_view node, unsigned shard, std::string_view what);
// An owner record's value "1 <node> <shard>" → node, shard; false if this build cannot read it.
bool parse_session_owner(std::string_view value, std::string& node, unsigned& shard);

// Frees this shard's side of node-routed streams (the shard stopping); from
// release_remote_generations.
void release_node_generations();
void release_node_service();  // the owner's side (called by release_node_generations)

}  // namespace rc::server
