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
// Thread-safety: producers attach to connections of their own shard only.
#pragma once

#include "core/intrusive_list.h"

namespace rc::server {

struct producer_list_tag;

class stream_producer : public list_node<producer_list_tag> {
 public:
  virtual void on_pause() {}
  virtual void on_resume() {}
  // The stream is over; detach (already done by the connection) and clean up.
  virtual void on_stream_closed() = 0;

 protected:
  ~stream_producer() = default;
};

}  // namespace rc::server
