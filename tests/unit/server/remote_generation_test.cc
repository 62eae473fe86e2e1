// generate_on_shard / embed_on_shard across two real shards (remote_generation.h): shard 1 is the
// client, shard 0 the home. Mailbox refusals are provoked with tiny mailboxes (capacity 4, no
// backlog) and a shard held busy on purpose (spinning in a message until the other side lets go).
// Runs in the TSan build too (label unit-tsan).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/shard_group.h"
#include "server/config.h"
#include "server/remote_generation.h"
#include "server/rules.h"
#include "server/shard.h"

namespace rc::server {
namespace {

constexpr unsigned home_shard = 0, client_shard = 1;

// Spins until `flag` is set (bounded: a broken test fails instead of hanging).
bool spin_until(const std::atomic<bool>& flag) {
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!flag.load(std::memory_order_acquire)) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return true;
}

// Posts no-op messages to `to` until the mailbox refuses one; returns how many it took.
int fill_mailbox(reactor& r, unsigned to) {
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int n = 0;
  while (r.post(to, [] {})) {
    ++n;
    if (std::chrono::steady_clock::now() > until) return -1;
  }
  return n;
}

// What happened on the home shard (read by the test thread after the shards stopped).
struct probe {
  std::atomic<uint64_t> produced{0};    // events the producer handed to its sink
  std::atomic<int> resumed{0};
  std::atomic<int> home{-1};            // the shard the producer ran on
  std::atomic<bool> destroyed{false};   // the producer (the home's stream) was destroyed
  std::atomic<bool> start_gone{false};  // the start function (and its captures) was destroyed
  std::atomic<bool> release{false};     // lets a spinning shard go
  std::atomic<bool> blocked{false};     // the shard that must spin is spinning (pops nothing)
};

// Sets probe::start_gone when destroyed (captured by a start function).
struct start_guard {
  explicit start_guard(probe& p) : p_(&p) {}
  start_guard(start_guard&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  start_guard& operator=(start_guard&&) = delete;
  ~start_guard() {
    if (p_) p_->start_gone = true;
  }
  probe* p_;
};

// The home's stream: deltas "0", "1", … (`count` of them, then usage), from the loop, honouring
// pauses, yielding to the loop every 16 events. `before(i)` runs before event i; when it returns
// false the stream stalls there (an upstream that never answers: only a cancel ends it).
class producer final : public engine_stream {
 public:
  producer(reactor& r, engine_sink& sink, uint64_t count, probe& p,
           std::function<bool(uint64_t)> before = {})
      : r_(r), sink_(sink), count_(count), p_(p), before_(std::move(before)),
        alive_(std::make_shared<bool>(true)) {
    p_.home = static_cast<int>(r.shard_id());
    schedule();
  }
  ~producer() override {
    *alive_ = false;
    p_.destroyed = true;
  }
  void resume() override {
    ++p_.resumed;
    schedule();
  }

 private:
  void schedule() {
    r_.post(r_.shard_id(), [this, alive = alive_] {
      if (*alive) run();
    });
  }
  void run() {
    auto alive = alive_;
    while (next_ < count_) {
      if (before_ && !before_(next_)) return;
      std::string text = std::to_string(next_);
      engine_event e;
      e.type = event_type::delta;
      e.text = text;
      ++next_;
      ++p_.produced;
      bool more = sink_.on_event(e);
      if (!*alive || !more) return;
      if (next_ % 16 == 0) {
        schedule();
        return;
      }
    }
    engine_event u;
    u.type = event_type::usage;
    u.usage.output_tokens = count_;
    sink_.on_event(u);
  }

  reactor& r_;
  engine_sink& sink_;
  uint64_t count_;
  probe& p_;
  std::function<bool(uint64_t)> before_;
  std::shared_ptr<bool> alive_;
  uint64_t next_ = 0;
};

struct seen_event {
  event_type type = event_type::delta;
  std::string text, code, message, error_type;
  uint16_t status = 0;
  uint32_t retry_after_ms = 0;
  unsigned shard = 99;
};

// The client shard's side of a test: the sink of the remote stream, and helpers that run later
// on the loop. Created before the shard_server and destroyed after it, as a front holding a
// stream can be.
class client_side final : public engine_sink {
 public:
  explicit client_side(reactor& r) : r_(r) {
    watchdog_.set_callback([](timer&, void* self) {
      auto* c = static_cast<client_side*>(self);
      c->timed_out = true;
      c->stop();
    }, this);
    r_.arm_after_ms(watchdog_, 30000);
  }

  bool on_event(const engine_event& e) override {
    if (stream_gone) ++events_after_destroy;
    seen_event s;
    s.type = e.type;
    s.text = std::string(e.text);
    s.code = std::string(e.error_code);
    s.message = std::string(e.error_message);
    s.error_type = std::string(e.error_type);
    s.status = e.http_status;
    s.retry_after_ms = e.retry_after_ms;
    s.shard = shard_server::current()->id();
    events.push_back(std::move(s));
    return hook ? hook(e) : true;
  }

  // Runs `then` on this shard once `ready()` holds (checked every millisecond).
  void when(std::function<bool()> ready, std::function<void()> then) {
    auto p = std::make_unique<poll>();
    p->ready = std::move(ready);
    p->then = std::move(then);
    p->t.set_callback([](timer& t, void* ctx) {
      auto* self = static_cast<poll*>(ctx);
      if (self->ready()) {
        self->then();
      } else {
        self->r->arm_after_ms(t, 1);
      }
    }, p.get());
    p->r = &r_;
    r_.arm_after_ms(p->t, 1);
    polls_.push_back(std::move(p));
  }
  void after_ms(uint64_t ms, std::function<void()> then) {
    uint64_t at = r_.now_ms() + ms;
    when([this, at] { return r_.now_ms() >= at; }, std::move(then));
  }

  // Stops both shards (the post to the home is retried while its mailbox is full).
  void stop() {
    when([this] { return r_.post(home_shard, [] { reactor::current()->stop(); }); },
         [this] { r_.stop(); });
  }

  void destroy_stream() {
    stream.reset();
    stream_gone = true;
  }

  std::vector<seen_event> events;
  std::function<bool(const engine_event&)> hook;  // what on_event returns (default: true)
  std::unique_ptr<engine_stream> stream;
  bool stream_gone = false;
  int events_after_destroy = 0;
  bool timed_out = false;

 private:
  struct poll {
    timer t;
    reactor* r = nullptr;
    std::function<bool()> ready;
    std::function<void()> then;
  };
  reactor& r_;
  timer watchdog_;
  std::vector<std::unique_ptr<poll>> polls_;
};

class RemoteGenerationTest : public ::testing::Test {
 protected:
  // Runs `begin` on the client shard (shard 1) of two shards; returns when both have stopped
  // (begin calls client_side::stop when done). The client's results are copied out.
  void run(std::function<void(shard_server&, client_side&)> begin, size_t mailbox_capacity = 4096,
           uint32_t backlog_max = 65536) {
    server_config cfg;
    std::vector<std::string> notes;
    std::string error;
    process_.initial = make_rules(cfg, nullptr, notes, error);
    ASSERT_TRUE(process_.initial) << error;
    shard_group_options opts;
    opts.shards = 2;
    opts.mailbox_capacity = mailbox_capacity;
    opts.reactor.mailbox_backlog_max = backlog_max;
    std::string err = run_shards(opts, [&](reactor& r) {
      if (r.shard_id() != client_shard) {
        shard_server shard(r, process_, -1);
        r.run();
        return;
      }
      client_side client(r);
      {
        shard_server shard(r, process_, -1);
        r.post(client_shard, [&] { begin(shard, client); });
        r.run();
      }
      events_ = client.events;
      events_after_destroy_ = client.events_after_destroy;
      timed_out_ = client.timed_out;
      // `client` (and the stream it may still hold) goes after the shard: released, it is inert.
    });
    ASSERT_EQ(err, "");
    EXPECT_FALSE(timed_out_) << "the test did not finish in time";
  }

  // Checks that events_ are the deltas "0".."n-1" (all delivered on the client shard).
  void expect_deltas(size_t n) {
    ASSERT_GE(events_.size(), n);
    for (size_t i = 0; i < n; ++i) {
      EXPECT_EQ(events_[i].type, event_type::delta) << i;
      EXPECT_EQ(events_[i].text, std::to_string(i)) << i;
      EXPECT_EQ(events_[i].shard, client_shard) << i;
    }
  }
  void expect_refused_error(const seen_event& e) {
    EXPECT_EQ(e.type, event_type::error);
    EXPECT_EQ(e.code, "internal_error");
    EXPECT_EQ(e.status, 503);
    EXPECT_EQ(e.error_type, "server_error");
    EXPECT_EQ(e.retry_after_ms, 1000u);
    EXPECT_NE(e.message.find("retry"), std::string::npos) << e.message;
    EXPECT_EQ(e.shard, client_shard);
  }

  // A start function running a producer of `count` events on the home.
  remote_start producing(uint64_t count, std::function<bool(uint64_t)> before = {}) {
    return [this, count, before = std::move(before), guard = start_guard(probe_)](
               shard_server& home, engine_sink& sink) -> std::unique_ptr<engine_stream> {
      return std::make_unique<producer>(home.loop(), sink, count, probe_, before);
    };
  }

  process_state process_;
  probe probe_;
  std::vector<seen_event> events_;
  int events_after_destroy_ = 0;
  bool timed_out_ = false;
};

TEST_F(RemoteGenerationTest, EventsArriveInOrderThroughManyWindows) {
  constexpr uint64_t count = 20 * remote_window + 7;
  run([&](shard_server& shard, client_side& c) {
    c.stream = generate_on_shard(shard, home_shard, producing(count), c);
    EXPECT_TRUE(c.events.empty());  // nothing from inside the call
    c.when([&] { return !c.events.empty() && c.events.back().type == event_type::usage &&
                        probe_.destroyed && probe_.start_gone; },
           [&] { c.stop(); });
  });
  expect_deltas(count);
  ASSERT_EQ(events_.size(), count + 1);
  EXPECT_EQ(events_.back().type, event_type::usage);
  EXPECT_EQ(probe_.home.load(), static_cast<int>(home_shard));
  EXPECT_GT(probe_.resumed.load(), 0);  // the window paused and resumed it
}

TEST_F(RemoteGenerationTest, APausedSinkStopsTheProducerAtTheWindow) {
  constexpr uint64_t count = 5 * remote_window;
  run([&](shard_server& shard, client_side& c) {
    c.hook = [](const engine_event&) { return false; };  // pause after every event
    c.stream = generate_on_shard(shard, home_shard, producing(count), c);
    c.when([&] { return probe_.produced >= remote_window; }, [&] {
      // Give the home time to (wrongly) go on: it must stop at the window. (The one event the
      // client delivered is acknowledged: if that arrives before the window fills, one more.)
      c.after_ms(100, [&] {
        EXPECT_LE(probe_.produced.load(), remote_window + 1);
        EXPECT_EQ(c.events.size(), 1u);
        c.hook = nullptr;
        c.stream->resume();
        c.when([&] { return !c.events.empty() && c.events.back().type == event_type::usage; },
               [&] { c.stop(); });
      });
    });
  });
  expect_deltas(count);
  ASSERT_EQ(events_.size(), count + 1);
  EXPECT_EQ(events_.back().type, event_type::usage);
}

TEST_F(RemoteGenerationTest, DestroyingTheClientStreamCancelsTheRemoteOne) {
  run([&](shard_server& shard, client_side& c) {
    c.hook = [&](const engine_event&) {
      // Destroyed in a later turn, while more events are on their way: they are ignored.
      if (c.events.size() == 10) shard.loop().post(client_shard, [&] { c.destroy_stream(); });
      return true;
    };
    c.stream = generate_on_shard(shard, home_shard, producing(uint64_t{1} << 40), c);
    c.when([&] { return probe_.destroyed && probe_.start_gone; }, [&] { c.after_ms(20, [&] {
      c.stop();
    }); });
  });
  EXPECT_EQ(events_after_destroy_, 0);
  expect_deltas(events_.size());
  EXPECT_GE(events_.size(), 10u);
  EXPECT_TRUE(probe_.destroyed);
}

TEST_F(RemoteGenerationTest, AStartReturningNullAfterAnErrorEndsWithThatError) {
  run([&](shard_server& shard, client_side& c) {
    remote_start start = [guard = start_guard(probe_)](shard_server&, engine_sink& sink)
        -> std::unique_ptr<engine_stream> {
      owned_event e = error_event("model_not_found", "The model 'x' does not exist.", 404,
                                  "invalid_request_error", "model");
      sink.on_event(e.view());
      return nullptr;
    };
    c.stream = generate_on_shard(shard, home_shard, std::move(start), c);
    c.when([&] { return !c.events.empty() && probe_.start_gone; }, [&] { c.stop(); });
  });
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].type, event_type::error);
  EXPECT_EQ(events_[0].code, "model_not_found");
  EXPECT_EQ(events_[0].message, "The model 'x' does not exist.");
  EXPECT_EQ(events_[0].status, 404);
  EXPECT_EQ(events_[0].error_type, "invalid_request_error");
}

TEST_F(RemoteGenerationTest, AStartReturningNullWithoutAnErrorEndsWithInternalError) {
  run([&](shard_server& shard, client_side& c) {
    remote_start start = [](shard_server&, engine_sink&) -> std::unique_ptr<engine_stream> {
      return nullptr;
    };
    c.stream = generate_on_shard(shard, home_shard, std::move(start), c);
    c.when([&] { return !c.events.empty(); }, [&] { c.stop(); });
  });
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].type, event_type::error);
  EXPECT_EQ(events_[0].code, "internal_error");
}

// The home is busy (spinning) and the client's mailbox to it full: the start is refused.
TEST_F(RemoteGenerationTest, ARefusedStartEndsWithInternalError) {
  run(
      [&](shard_server& shard, client_side& c) {
        ASSERT_TRUE(shard.loop().post(home_shard, [&] {
          probe_.blocked = true;
          spin_until(probe_.release);
        }));
        // (Waiting in the loop, not spinning: the post's doorbell leaves at the turn's end.)
        c.when([&] { return probe_.blocked.load(); }, [&] {  // then the mailbox stays full
          ASSERT_GE(fill_mailbox(shard.loop(), home_shard), 0);
          c.stream = generate_on_shard(shard, home_shard, producing(10), c);
          EXPECT_TRUE(probe_.start_gone);  // refused: destroyed here, never run
          EXPECT_TRUE(c.events.empty());   // answered in a later turn
          probe_.release = true;
          c.when([&] { return !c.events.empty(); }, [&] { c.after_ms(20, [&] { c.stop(); }); });
        });
      },
      4, 0);
  ASSERT_EQ(events_.size(), 1u);
  expect_refused_error(events_[0]);
  EXPECT_EQ(probe_.produced.load(), 0u);
}

// The client is busy (spinning) and the home's mailbox to it fills: the home cancels its stream;
// the client gets every event that was sent, in order, then internal_error.
TEST_F(RemoteGenerationTest, AnEventRefusedOnTheHomeCancelsItAndEndsWithInternalError) {
  run(
      [&](shard_server& shard, client_side& c) {
        c.stream = generate_on_shard(shard, home_shard, producing(uint64_t{1} << 40), c);
        shard.loop().post(client_shard, [&] { EXPECT_TRUE(spin_until(probe_.destroyed)); });
        c.when([&] { return !c.events.empty() && c.events.back().type == event_type::error; },
               [&] { c.after_ms(20, [&] { c.stop(); }); });
      },
      4, 0);
  ASSERT_GE(events_.size(), 1u);
  expect_refused_error(events_.back());
  // The refused event was the last one produced; every one before it arrived.
  EXPECT_EQ(events_.size() - 1, probe_.produced.load() - 1);
  expect_deltas(events_.size() - 1);
  EXPECT_TRUE(probe_.destroyed);
}

// The home is busy (spinning inside its stream) and the client's mailbox to it full when the
// client acknowledges: the client ends the stream with internal_error and cancels the home's.
TEST_F(RemoteGenerationTest, ARefusedAcknowledgementEndsTheStreamAndCancelsTheHome) {
  run(
      [&](shard_server& shard, client_side& c) {
        auto before = [this](uint64_t i) {
          if (i == 3) spin_until(probe_.release);
          return i < 4;  // then it stalls: only the cancel can end it
        };
        c.hook = [&](const engine_event& e) {
          if (e.type == event_type::delta && c.events.size() == 1) {
            EXPECT_GE(fill_mailbox(shard.loop(), home_shard), 0);
          }
          if (e.type == event_type::error) probe_.release = true;
          return true;
        };
        c.stream = generate_on_shard(shard, home_shard, producing(uint64_t{1} << 40, before), c);
        c.when([&] { return probe_.destroyed.load(); }, [&] { c.after_ms(20, [&] { c.stop(); }); });
      },
      4, 0);
  ASSERT_EQ(events_.size(), 2u);
  expect_deltas(1);
  expect_refused_error(events_[1]);
  EXPECT_TRUE(probe_.destroyed);  // the cancel got through once the home's mailbox had room
}

// Both shards stop while the stream runs (paused at the window): everything is freed (the ASan
// build checks for leaks), the home's stream is cancelled, the client's stream (held past its
// shard) is inert.
TEST_F(RemoteGenerationTest, ShardsStoppingWithStreamsAliveFreeEverything) {
  run([&](shard_server& shard, client_side& c) {
    c.hook = [](const engine_event&) { return false; };
    c.stream = generate_on_shard(shard, home_shard, producing(uint64_t{1} << 40), c);
    c.when([&] { return probe_.produced >= remote_window; }, [&] { c.stop(); });
  });
  EXPECT_EQ(events_.size(), 1u);
  EXPECT_TRUE(probe_.destroyed);
  EXPECT_TRUE(probe_.start_gone);
}

embedding_request embed_req() {
  embedding_request req;
  req.model = "ringcast-mock";
  req.texts = {"hello", "world"};
  req.dimensions = 8;
  return req;
}

TEST_F(RemoteGenerationTest, EmbedOnShardRunsOnTheHomeAndAnswersOnTheClient) {
  embedding_result remote, local;
  unsigned remote_ran_on = 99, done_on = 99;
  run([&](shard_server& shard, client_side& c) {
    embed_on_shard(shard, home_shard,
                   [&](shard_server& home, unique_function<void(embedding_result&&)> done) {
                     remote_ran_on = home.id();  // (read after the shards stopped)
                     home.default_engine()->embed(embed_req(), std::move(done));
                   },
                   [&](embedding_result&& r) {
                     done_on = shard_server::current()->id();
                     remote = std::move(r);
                   });
    EXPECT_EQ(done_on, 99u);  // never from inside the call
    shard.default_engine()->embed(embed_req(), [&](embedding_result&& r) { local = std::move(r); });
    c.when([&] { return done_on != 99 && !local.vectors.empty(); }, [&] { c.stop(); });
  });
  EXPECT_EQ(remote_ran_on, home_shard);
  EXPECT_EQ(done_on, client_shard);
  EXPECT_EQ(remote.error_code, "");
  EXPECT_EQ(remote.dimensions, 8u);
  ASSERT_EQ(remote.vectors.size(), 16u);
  EXPECT_EQ(remote.vectors, local.vectors);  // the mock is deterministic: same answer
}

TEST_F(RemoteGenerationTest, ARefusedEmbeddingRequestAnswersInternalError) {
  embedding_result got;
  bool done = false;
  run(
      [&](shard_server& shard, client_side& c) {
        ASSERT_TRUE(shard.loop().post(home_shard, [&] {
          probe_.blocked = true;
          spin_until(probe_.release);
        }));
        c.when([&] { return probe_.blocked.load(); }, [&] {  // then the mailbox stays full
          ASSERT_GE(fill_mailbox(shard.loop(), home_shard), 0);
          embed_on_shard(
              shard, home_shard,
              [guard = start_guard(probe_)](shard_server& home,
                                            unique_function<void(embedding_result&&)> d) {
                home.default_engine()->embed(embed_req(), std::move(d));
              },
              [&](embedding_result&& r) {
                got = std::move(r);
                done = true;
              });
          EXPECT_TRUE(probe_.start_gone);
          EXPECT_FALSE(done);
          probe_.release = true;
          c.when([&] { return done; }, [&] { c.after_ms(20, [&] { c.stop(); }); });
        });
      },
      4, 0);
  EXPECT_EQ(got.error_code, "internal_error");
  EXPECT_EQ(got.http_status, 503);
  EXPECT_EQ(got.retry_after_ms, 1000u);
  EXPECT_TRUE(got.vectors.empty());
}

// The client is busy and its mailbox from the home full when the result is ready: the client
// still gets an answer (internal_error), once it has room.
TEST_F(RemoteGenerationTest, ARefusedEmbeddingResultAnswersInternalError) {
  embedding_result got;
  int calls = 0;
  run(
      [&](shard_server& shard, client_side& c) {
        embed_on_shard(shard, home_shard,
                       [this](shard_server& home, unique_function<void(embedding_result&&)> d) {
                         EXPECT_TRUE(spin_until(probe_.blocked));  // the client pops nothing
                         EXPECT_GE(fill_mailbox(home.loop(), client_shard), 0);
                         embedding_result r;
                         r.dimensions = 1;
                         r.vectors = {1.0f};
                         d(std::move(r));  // refused: the mailbox is full
                         probe_.release = true;
                       },
                       [&](embedding_result&& r) {
                         got = std::move(r);
                         ++calls;
                       });
        shard.loop().post(client_shard, [&] {
          probe_.blocked = true;
          EXPECT_TRUE(spin_until(probe_.release));
        });
        c.when([&] { return calls > 0; }, [&] { c.after_ms(20, [&] { c.stop(); }); });
      },
      4, 0);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(got.error_code, "internal_error");
  EXPECT_EQ(got.http_status, 503);
}

}  // namespace
}  // namespace rc::server
