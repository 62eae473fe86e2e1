// The `openai` upstream engine: any OpenAI-compatible HTTP(S) server (vLLM, llama.cpp's server,
// Ollama, a hosted API, another ringcast) behind ringcast's fronts. docs/upstreams.md is the
// operator's guide; this is the contract.
//
// What goes upstream. The client's own body (generation_request::original) with only `model`
// mapped (proto/openai_upstream.h) when the upstream speaks the client's API, translated when it
// speaks only the other one (chat <-> Responses; a Responses conversation continued with
// previous_response_id over a chat-only upstream is replayed from ringcast's response store).
// Headers: Authorization: Bearer <the config's key> (the client's credentials are never
// forwarded), Content-Type, Accept, the client's x-request-id, the config's extra headers; no
// hop-by-hop fields (the client's never reach the engine).
//
// What comes back. When the front renders the upstream's own API over HTTP
// (original.passthrough) the engine answers with `raw` events: every chunk / Responses event
// (or the whole object of a non-streamed request), `model` mapped back to the client's name;
// the chat usage chunk only if the client asked for it; then a typed `usage`. Otherwise (WS
// fronts, the broker, translation) the upstream is always asked to stream and its events are
// decoded into typed events. starts_lazily() is true: nothing reaches the client before the
// upstream's first event, so a refusal is answered with its own status.
//
// Failures (openai_failure.h has the mapping). Before the first event reached the client, what
// retry_policy.h calls retryable (connect failures, resets before an answer, first-byte
// timeouts, 408/409/429/5xx) is retried (retries_max, jittered exponential backoff from
// backoff_base_ms to backoff_cap_ms, the upstream's Retry-After up to retry_after_cap_ms, within
// the request's retry window), on another endpoint when there is one.
// After it, never: the stream ends with an error event (upstream_disconnected, upstream_timeout,
// upstream_protocol_error). Endpoints are chosen by fewest outstanding requests among those whose
// circuit breaker is closed (it opens after breaker_failures consecutive failures; after
// breaker_cooldown_ms one probe request is let through). Destroying a stream aborts its upstream
// request at once (the connection is closed, never reused).
//
// Thread-safety: an engine, its connection pools and its streams belong to one shard.
#pragma once

#include <memory>

#include "server/engine.h"
#include "server/upstreams.h"

namespace rc::server {

class shard_server;

// The factory registered as kind "openai" (upstream_kinds.h).
std::shared_ptr<engine> make_openai_engine(shard_server& shard,
                                           std::shared_ptr<const upstream_config> cfg);

}  // namespace rc::server
