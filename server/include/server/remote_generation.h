// remote_generation: engine work that must run on another shard (the shard that owns a retained
// upstream session, a worker process, …) for a client on this one.
//
// A generation: this shard (the client's) keeps a remote_stream, the engine_stream the front
// holds; the home shard runs the stream `start` returns under a forwarder, the sink that copies
// each event into a message to the client's shard. Flow control: the forwarder lets at most
// `remote_window` events be unacknowledged; the client side acknowledges what its sink accepted,
// so a sink that pauses stops the acknowledgements and, once the window is full, the home's
// stream (which then stops its upstream socket or worker). The home stream resumes when half
// the window is acknowledged. Both sides find each other by a stream key unique across shards
// (the client shard in its top bits) in per-shard tables, so a message for a stream that is gone
// (a late event, a late acknowledgement, a cancel after the end) is ignored.
//
// Lifetimes: destroying the remote_stream sends a cancel; the home then destroys its stream (a
// cancel, in engine terms). After a usage or error event both sides forget the stream by
// themselves. `start` (and what it captured) lives on the home shard until the home stream is
// destroyed, so that stream may refer to it (the request, a shared engine, …).
//
// Mailbox refusals (reactor::post returns false: the target's queue and backlog are full) never
// lose events silently. Each side ends the stream with the error event `internal_error` (HTTP
// 503, type server_error, Retry-After 1 s; docs/api.md):
//   * the start message is refused: the client's stream gets the error in a later turn;
//   * an event is refused on the home side: the home stream is cancelled, and a failure notice
//     follows the events already sent (retried every few ms until the client's mailbox takes it);
//     the client delivers those events, then the error;
//   * an acknowledgement is refused on the client side: the client stream delivers what it holds,
//     then the error, and sends the cancel (retried until the home's mailbox takes it).
// Embeddings: a refused request or result gives `done` an `internal_error` result.
//
// Shutdown: a shard stopping with forwarders or remote streams alive (release_remote_generations,
// called by ~shard_server) destroys its forwarders (so their streams are cancelled while the
// engines still exist), unlinks its remote streams (their owners destroy them later; they send
// nothing), drops waiting embeddings and pending notices.
//
// Thread-safety: every function runs on the shard it names (`self`, or the current shard);
// what crosses shards travels by message and is owned by it.
#pragma once

#include <cstdint>
#include <memory>

#include "core/unique_function.h"
#include "server/engine.h"
#include "server/owned_event.h"

namespace rc::server {

class shard_server;

// Events the home side forwards before it waits for an acknowledgement.
inline constexpr uint32_t remote_window = 64;

// Runs `start` on shard `home` (its argument: that shard, and the sink that forwards to us) and
// streams the events back to `sink` on this shard by mailbox, flow-controlled (a window of
// unacknowledged events; our sink's pause stops the acks). Destroying the returned stream
// cancels the remote one. If the mailbox refuses a message, the stream ends with error
// `internal_error` (never a silent loss). `start` may return nullptr after emitting an error
// event to its sink (without one: `internal_error`). Copies what it needs from the request
// before returning. No event reaches `sink` from inside this call.
using remote_start =
    unique_function<std::unique_ptr<engine_stream>(shard_server& home, engine_sink& sink)>;
std::unique_ptr<engine_stream> generate_on_shard(shard_server& self, unsigned home,
                                                 remote_start start, engine_sink& sink);

// Runs `start` on shard `home`; the result it passes to its `done` (exactly once, on `home`)
// comes back to `done` here, on `self`'s shard, never from inside this call.
using remote_embed =
    unique_function<void(shard_server& home, unique_function<void(embedding_result&&)> done)>;
void embed_on_shard(shard_server& self, unsigned home, remote_embed start,
                    unique_function<void(embedding_result&&)> done);  // done on `self`'s shard

// The error both calls end with when a mailbox refuses a message.
owned_event mailbox_refused_event();
embedding_result mailbox_refused_embedding();

// Frees this shard's side of every remote generation and embedding (see "Shutdown" above).
// Called by ~shard_server; safe to call more than once.
void release_remote_generations();

}  // namespace rc::server
