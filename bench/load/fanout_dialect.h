// fanout dialects: how the fanout mode talks to servers other than ringcast (--dialect).
//
// ringcast (and uws, whose peer speaks ringcast's protocol subset: the same bytes on the wire,
// kept apart so reports say which was used): subscribers subscribe with `since` 0 and read the
// server-assigned sequence number; the publisher's acknowledgement carries it.
//
// nchan and pushpin number nothing themselves, so the publication carries its own sequence:
// {"seq":N,"ts":<ns>,"pad":"..."} and subscribers read both from the body. There is no history
// to ask for: every subscriber must be subscribed before the first publication, which the mode
// ensures by waiting for all of them to be ready (WebSocket: the 101; SSE: the response head)
// and then for the warm-up.
//   nchan:   POST /pub/<topic> (keep-alive, body = the publication); subscribers GET
//            /sub/<topic> as WebSocket (one text frame per publication) or SSE (`data:`).
//   pushpin: subscribers GET /sub/<topic> on pushpin's HTTP port (proxied to a GRIP origin
//            that holds the stream or subscribes the WebSocket to channel <topic>); the
//            publisher POSTs /publish/ on pushpin's control port (--pub-target) with both
//            formats (ws-message and http-stream) of one item.
// The answer to the n-th publication is for sequence n (HTTP/1.1 answers come in order).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/byte_buffer.h"
#include "load/options.h"

namespace rc::load {

std::optional<fanout_dialect> parse_dialect(std::string_view name);
std::string_view dialect_name(fanout_dialect d);

// True for nchan and pushpin: the publication carries its own sequence number.
bool self_numbered(fanout_dialect d);

// The subscriber's request target: /ws (ringcast WebSocket), /v1/topics/<t>/events?since=0
// (ringcast SSE), /sub/<t> (nchan, pushpin).
std::string subscribe_path(fanout_dialect d, sub_protocol sub, std::string_view topic);

// The publication's JSON: {"ts":T,"pad":"P"} (ringcast), {"seq":S,"ts":T,"pad":"P"} (others).
// The pad of a publication: `bytes` of 'x', or (tokens) escaped chat.completion.chunk JSON
// objects whose content words are drawn from a small vocabulary by a fixed pseudo-random
// sequence: compressible like a real token stream, not like a run of one byte. JSON-string safe.
std::string make_pad(size_t bytes, bool tokens);
void write_publication(byte_buffer& out, fanout_dialect d, uint64_t seq, uint64_t ts,
                       std::string_view pad);

// One complete HTTP publish request carrying `publication` (Host: `host`).
void write_publish_request(byte_buffer& out, fanout_dialect d, std::string_view topic,
                           std::string_view host, std::string_view publication);

// The answer to a publish request: the sequence number it acknowledges, or nothing if it was
// refused. `nth` is which answer this is (1, 2, ...): self-numbered dialects' sequence.
// ringcast: 200 with "seq":N in the body; nchan: 200, 201 or 202; pushpin: 200.
std::optional<uint64_t> publish_answer(fanout_dialect d, int status, std::string_view body,
                                       uint64_t nth);

// A self-numbered delivery's body: its "seq" and "ts"; false if either is missing.
bool parse_publication(std::string_view body, uint64_t& seq, uint64_t& ts);

}  // namespace rc::load
