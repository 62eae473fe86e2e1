// Follow-ups whose retained session lives on another shard (responses_ws_engine.h).
//
// The client's shard keeps a remote_stream (the engine_stream the front holds); the session's
// shard runs the response under a forwarder (the run's sink). Each event is copied into a message
// to the client's shard; the forwarder lets at most `window` events be unacknowledged, and the
// remote_stream acknowledges what it delivered, so a client that stops reading (its sink returns
// false) stops the acknowledgements and, through the run, the upstream socket. Destroying the
// remote_stream sends a cancel; the run then ends and drops the session (its state is unknown).
// Both sides find each other by a stream number in per-shard tables, so a late message for a
// stream that is gone is ignored.
#include <deque>
#include <unordered_map>

#include "server/responses_ws_internal.h"
#include "server/shard.h"

namespace rc::server {
namespace {

constexpr uint32_t window = 64;

class remote_stream;
class forwarder;

thread_local std::unordered_map<uint64_t, remote_stream*> remotes;  // on client shards
thread_local std::unordered_map<uint64_t, std::unique_ptr<forwarder>> forwarders;  // on homes
thread_local uint64_t next_remote = 1;

// A stream key unique across shards: the client shard in the top bits.
uint64_t key_of(unsigned shard, uint64_t n) { return (uint64_t{shard} << 48) | n; }

class remote_stream final : public engine_stream {
 public:
  remote_stream(shard_server& shard, unsigned home, uint64_t key, engine_sink& sink)
      : shard_(shard), home_(home), key_(key), sink_(sink) {
    remotes[key_] = this;
  }
  ~remote_stream() override {
    remotes.erase(key_);
    if (!ended_) {
      uint64_t key = key_;
      shard_.loop().post(home_, [key] { forwarders.erase(key); });
    }
  }

  void resume() override {
    paused_ = false;
    drain();
  }

  void receive(owned_event&& e) {
    queue_.push_back(std::move(e));
    drain();
  }

  // The request could not reach the home shard: answer here, in a later turn.
  void fail_now(owned_event e) {
    ended_ = true;
    uint64_t key = key_;
    shard_.loop().post(shard_.id(), [key, e = std::move(e)]() mutable {
      auto it = remotes.find(key);
      if (it != remotes.end()) it->second->receive(std::move(e));
    });
  }

 private:
  void drain() {
    uint32_t delivered = 0;
    while (!paused_ && !queue_.empty()) {
      owned_event e = std::move(queue_.front());
      queue_.pop_front();
      ++delivered;
      bool terminal = e.base.type == event_type::usage || e.base.type == event_type::error;
      if (terminal) ended_ = true;  // the home forgets the stream by itself
      bool more = sink_.on_event(e.view());
      if (terminal) return;  // the front may delete this stream from now on
      if (!more) paused_ = true;
    }
    if (delivered == 0 || ended_) return;
    uint64_t key = key_;
    shard_.loop().post(home_, [key, delivered] { ack(key, delivered); });
  }

  static void ack(uint64_t key, uint32_t n);

  shard_server& shard_;
  unsigned home_;
  uint64_t key_;
  engine_sink& sink_;
  std::deque<owned_event> queue_;
  bool paused_ = false;
  bool ended_ = false;
};

// On the home shard: the sink of the run, forwarding its events to the client's shard.
class forwarder final : public engine_sink {
 public:
  forwarder(unsigned client, uint64_t key) : client_(client), key_(key) {}

  void start(ws_engine& e, const generation_request& req) {
    // A reload may replace the engine while this runs: the run keeps it, as a generation would.
    keep_ = shard_server::current()->share_engine(e);
    run_ = e.run_here(req, *this);
  }

  bool on_event(const engine_event& ev) override {
    bool terminal = ev.type == event_type::usage || ev.type == event_type::error;
    uint64_t key = key_;
    shard_server::current()->loop().post(client_, [key, e = owned_event(ev)]() mutable {
      auto it = remotes.find(key);
      if (it != remotes.end()) it->second->receive(std::move(e));
    });
    if (terminal) {
      // Forget the stream in a later turn: the run is still on the stack.
      shard_server::current()->loop().post(shard_server::current()->id(),
                                           [key] { forwarders.erase(key); });
      return true;
    }
    if (++unacked_ >= window) {
      paused_ = true;
      return false;
    }
    return true;
  }

  void on_ack(uint32_t n) {
    unacked_ = n >= unacked_ ? 0 : unacked_ - n;
    if (paused_ && unacked_ < window / 2 && run_) {
      paused_ = false;
      run_->resume();
    }
  }

 private:
  unsigned client_;
  uint64_t key_;
  uint32_t unacked_ = 0;
  bool paused_ = false;
  std::shared_ptr<engine> keep_;  // declared first: outlives the run
  std::unique_ptr<engine_stream> run_;
};

void remote_stream::ack(uint64_t key, uint32_t n) {
  auto it = forwarders.find(key);
  if (it != forwarders.end()) it->second->on_ack(n);
}

}  // namespace

std::unique_ptr<engine_stream> start_remote(shard_server& shard, const std::string& upstream,
                                            unsigned home, const generation_request& req,
                                            engine_sink& sink) {
  unsigned me = shard.id();
  uint64_t key = key_of(me, next_remote++);
  auto stream = std::make_unique<remote_stream>(shard, home, key, sink);
  bool posted = shard.loop().post(home, [me, key, upstream, req]() mutable {
    ws_engine* e = ws_engine::on_this_shard(upstream);
    if (!e) {  // the upstream is gone from that shard (a reload): nothing is retained
      owned_event err = error_event("previous_response_not_found",
                                    "Previous response with id '" +
                                        req.original.previous_response_id + "' not found.",
                                    400, "invalid_request_error", "previous_response_id");
      shard_server::current()->loop().post(me, [key, err = std::move(err)]() mutable {
        auto it = remotes.find(key);
        if (it != remotes.end()) it->second->receive(std::move(err));
      });
      return;
    }
    auto f = std::make_unique<forwarder>(me, key);
    forwarder* raw = f.get();
    forwarders[key] = std::move(f);
    raw->start(*e, req);
  });
  if (!posted) {
    stream->fail_now(error_event("server_overloaded",
                                 "The server is overloaded. Please retry your request later.",
                                 503, "server_error", {}, 1000));
  }
  return stream;
}

}  // namespace rc::server
