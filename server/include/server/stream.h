// stream_producer: anything that feeds a connection's outbound stream — a topic subscription, an
// engine generating tokens, a broker message log — and must follow its backpressure.
//
// A connection keeps the producers attached to it. When its outbound ring climbs to the high
// watermark it calls on_pause() on each (an engine stops pulling tokens; a topic subscription
// can't stop a topic, so it ignores the pause and the connection is eventually dropped as a slow
// consumer); when the ring drains to the low watermark, on_resume(). When the stream ends (the
// client left, the connection is closing, the SSE response ended), on_stream_closed() tells the
// producer to stop and let go: after it returns the connection no longer knows the producer, and
// the producer must not touch the connection again.
//
// When the server ends a stream before its natural end (the drain deadline, a second signal, or
// at once for an endless stream when draining starts), the connection calls on_cut() instead: the
// producer renders `code` as the stream's documented error event where the client can still read
// it (never a clean-looking end), and lets go. The connection has already detached it.
//
// Thread-safety: producers attach to connections of their own shard only.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/intrusive_list.h"

namespace rc::server {

struct producer_list_tag;

// Where a WebSocket close frame goes.
enum class ws_close_order : uint8_t {
  after_backlog,  // behind the messages already queued (drain, idle): the peer reads them first
  now,            // ahead of any backlog (protocol errors; slow consumers, whose backlog is dropped)
};

class stream_producer : public list_node<producer_list_tag> {
 public:
  virtual void on_pause() {}
  virtual void on_resume() {}
  // The stream is over; detach (already done by the connection) and clean up.
  virtual void on_stream_closed() = 0;
  // The server cuts the stream: render the error `code` (e.g. "draining"), then clean up.
  virtual void on_cut(std::string_view code, std::string_view message) = 0;
  // Whether the stream ends by itself (a generation, a broker message), so a drain lets it run
  // to its end; an endless one (a topic subscription) is cut as soon as draining starts.
  virtual bool ends_by_itself() const { return true; }

 protected:
  ~stream_producer() = default;
};

}  // namespace rc::server
