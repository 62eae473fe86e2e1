// The `jsonrpc` upstream engine: a supervised pool of local worker processes speaking JSON-RPC
// on stdio, in a dialect (worker_dialect.h: `ringcast`, ours; `codex-app-server`). docs/workers.md
// is the operator's guide; this is the contract.
//
// Workers. `workers` processes per upstream, spawned (core/process.h) when the shards start;
// worker i belongs to shard i % shards, which spawns, reads, writes, pings and restarts it on
// its own io_uring (worker_process.h). A worker takes work only after the dialect's handshake
// answered (init_timeout_ms). A worker that exits, is killed, stops answering pings, writes a
// message over max_line_bytes or something that is not JSON-RPC is stopped (stdin closed,
// SIGTERM to its process group, SIGKILL after stop_grace_ms) and restarted after a jittered
// exponential backoff (restart_backoff_base_ms doubling up to restart_backoff_cap_ms; it starts
// over once a worker stayed ready that long). crash_loop_restarts abnormal exits within
// crash_loop_window_ms (across the upstream's workers) mark the upstream unavailable for
// restart_backoff_cap_ms: requests then get 503 worker_unavailable with Retry-After the time
// left, and no worker is spawned before then.
//
// Requests. Every shard's engine of the upstream shares a worker board (worker_board.h): a
// request takes a call slot on the least-loaded ready worker below max_concurrency_per_worker
// (this shard's first on ties). A worker of this shard runs it here; another shard's runs it
// there (remote_generation.h: events come back by mailbox, flow-controlled). With every slot
// taken, or no worker ready yet, the request waits in this shard's queue (queue_max; full: 503
// worker_busy, or worker_unavailable when no worker is ready) until a slot frees up, bounded by
// its deadline. If its worker crashes, or answers overloaded (or an error whose data says
// `retryable`) before anything reached the client, it is retried once — after a crash on any
// worker (the crashed one's replacement included, waiting if need be), after a refusal only on
// another worker with room. Otherwise the error ends the stream (worker_errors.h maps codes to
// statuses; a worker stopped for writing something that is not JSON-RPC, or too long, ends its
// calls with worker_protocol_error, not retried). starts_lazily() is true, so a request refused before its first event gets a plain
// HTTP error. A millisecond before the request's deadline the engine ends it with 504
// worker_timeout (503 worker_unavailable if it was still waiting with no worker ready); a
// stream destroyed early (the client left) is cancelled. Either way the worker gets the
// dialect's cancel.
//
// Flow control. A worker multiplexes many calls on one pipe, so a slow client never pauses the
// pipe: a call's events are buffered while its client is paused, up to 4 MiB; past that the
// call is cancelled on the worker and the stream ends with 503 slow_consumer after what was
// buffered.
//
// Embeddings take a slot the same way but never wait: no room → 503 at once. A dialect without
// embeddings answers 400 unsupported.
//
// models(): the union of the models the workers announced in their handshake. ready(): some
// worker of the upstream is ready (/readyz says not ready while a routed upstream of this
// family has none).
//
// Lifetime. The engine spawns on its first turn (a factory never blocks). When it is destroyed
// (its last stream ended after a reload replaced it, or the shard stops) its workers are
// stopped gracefully and kept in the shard's graveyard (worker_process.h: retire_worker) until
// reaped; the shard does not stop its loop before they are (kill_retiring_workers kills what
// is left when it goes away). Children get PR_SET_PDEATHSIG, so even a SIGKILLed ringcast
// leaves none behind.
//
// Metrics: ringcast_worker_* (worker_metrics.h).
//
// Thread-safety: an engine, its workers and streams belong to one shard; the board is shared.
#pragma once

#include <memory>

#include "server/engine.h"
#include "server/upstreams.h"

namespace rc::server {

class shard_server;

// The factory registered as kind "jsonrpc" (upstream_kinds.h, endpoint_family::none).
std::shared_ptr<engine> make_jsonrpc_engine(shard_server& shard,
                                            std::shared_ptr<const upstream_config> cfg);

}  // namespace rc::server
