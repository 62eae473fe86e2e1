// Ordered consumers when the server delivers before it answers CONSUMER.CREATE (nats-server
// starts delivering from the consumer's own goroutine and answers through another queue): a fake
// JetStream (fake_nats_server.h) forges those deliveries, which a real server cannot be made to
// do on demand. Held messages are handed over in order after the answer; a flow control request
// of that time is answered only after them; held bytes are bounded, and what was dropped comes
// from a recreation that starts after the last message handed over. Also: a consumer-sequence
// gap in a delivery, and stopping the client with JetStream requests in flight.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fake_nats_server.h"
#include "nats_server_fixture.h"
#include "server/jetstream.h"
#include "server/nats_client.h"

namespace rc::server {
namespace {

using test::fake_peer;
using test::fake_server;
using test::nats_loop;
using test::run_nats;

#define NEEDS_URING() \
  if (!test::nats_uring_usable()) GTEST_SKIP() << "io_uring unavailable"

// What the fake JetStream reads from the client: subscriptions (subject → sid) and publications.
struct fake_js {
  fake_peer& p;
  std::map<std::string, std::string> sids;
  std::string inbox_sid;
  struct pub {
    std::string subject, reply, payload;
  };

  // Reads until a PUB whose subject starts with `prefix` (answering PINGs, noting SUBs); false
  // on EOF or after timeout_ms without a line.
  bool until_pub(std::string_view prefix, pub& out, int timeout_ms = 5000) {
    for (;;) {
      std::string l = p.line(timeout_ms);
      if (l.empty()) return false;
      std::vector<std::string> tok;
      for (size_t i = 0; i < l.size();) {
        size_t sp = l.find(' ', i);
        if (sp == std::string::npos) sp = l.size();
        if (sp > i) tok.push_back(l.substr(i, sp - i));
        i = sp + 1;
      }
      if (tok[0] == "PING") {
        p.send("PONG\r\n");
      } else if (tok[0] == "SUB" && tok.size() >= 3) {
        sids[tok[1]] = tok.back();
        if (tok[1].ends_with(".*")) inbox_sid = tok.back();
      } else if (tok[0] == "PUB" && tok.size() >= 3) {
        std::string payload = tok.back() == "0" ? std::string() : p.line(timeout_ms);
        if (tok.back() == "0") p.line(timeout_ms);  // the empty payload's "\r\n"
        if (tok[1].starts_with(prefix)) {
          out = {tok[1], tok.size() == 4 ? tok[2] : "", payload};
          return true;
        }
      }
    }
  }
  static std::string field(const std::string& json, std::string_view name) {
    std::string key = "\"";
    key.append(name).append("\":");
    size_t at = json.find(key);
    if (at == std::string::npos) return {};
    at += key.size();
    if (json[at] == '"') return json.substr(at + 1, json.find('"', at + 1) - at - 1);
    size_t end = json.find_first_of(",}", at);
    return json.substr(at, end - at);
  }
  // A stored message as JetStream delivers it (reply = the ack subject with its sequences).
  void deliver(const std::string& subject, uint64_t sseq, uint64_t cseq, uint64_t pending,
               const std::string& data) {
    p.send("MSG " + subject + " " + sids[subject] + " $JS.ACK.S.C.1." + std::to_string(sseq) +
           "." + std::to_string(cseq) + ".0." + std::to_string(pending) + " " +
           std::to_string(data.size()) + "\r\n" + data + "\r\n");
  }
  void flow_control(const std::string& subject, const std::string& reply) {
    std::string h = "NATS/1.0 100 FlowControl Request\r\n\r\n";
    std::string n = std::to_string(h.size());
    p.send("HMSG " + subject + " " + sids[subject] + " " + reply + " " + n + " " + n + "\r\n" + h +
           "\r\n");
  }
  void created(const pub& req, std::string_view name, uint64_t pending) {
    std::string json =
        "{\"type\":\"io.nats.jetstream.api.v1.consumer_create_response\",\"stream_name\":\"S\","
        "\"name\":\"" +
        std::string(name) + "\",\"delivered\":{\"consumer_seq\":0,\"stream_seq\":0},\"num_pending\":" +
        std::to_string(pending) + "}";
    p.send("MSG " + req.reply + " " + inbox_sid + " " + std::to_string(json.size()) + "\r\n" +
           json + "\r\n");
  }
};

struct result {
  std::vector<uint64_t> seqs;
  std::vector<size_t> sizes;
  uint64_t recreated = 99;
};

// Runs an ordered consumer of "S" (from stream seq 1) on a client of `srv` until `want`
// messages arrived (then 300 ms more).
result consume(const fake_server& srv, size_t want) {
  result out;
  std::unique_ptr<jetstream> js;
  run_nats(
      [&](nats_loop& run) {
        nats_options o;
        o.urls = {srv.url()};
        nats_client& nc = run.client(o);
        js = std::make_unique<jetstream>(nc);
        run.poll(5, [&] {
          if (!nc.connected()) return false;
          jetstream::ordered_handlers h;
          h.on_msg = [&](const js_delivery& d) {
            out.seqs.push_back(d.stream_seq);
            out.sizes.push_back(d.data.size());
            if (out.seqs.size() != want) return;
            out.recreated = js->counters().consumers_recreated;
            run.later(300, [&] {
              js.reset();
              run.done();
            });
          };
          js->consume_ordered("S", "s.a", 1, false, std::move(h));
          return true;
        });
      },
      20000);
  if (js) (void)js.release();  // the test failed; its client may be gone
  return out;
}

TEST(JetstreamHeld, FlowControlIsAnsweredOnlyAfterTheHeldMessages) {
  NEEDS_URING();
  std::atomic<bool> answered_early{false}, answered_after{false};
  result got;
  {
    fake_server srv([&](fake_peer& p, int n) {
      if (n > 0 || !p.handshake()) return;
      fake_js js{p, {}, {}};
      fake_js::pub create, fc;
      if (!js.until_pub("$JS.API.CONSUMER.CREATE.S", create)) return;
      std::string deliver = fake_js::field(create.payload, "deliver_subject");
      for (uint64_t i = 1; i <= 3; ++i) js.deliver(deliver, i, i, 3 - i, std::string("m").append(std::to_string(i)));
      js.flow_control(deliver, "$JS.FC.S.C.fc1");
      answered_early = js.until_pub("$JS.FC.", fc, 300);
      js.created(create, "C1", 3);
      answered_after = answered_early || js.until_pub("$JS.FC.", fc);
      p.wait_closed();
    });
    got = consume(srv, 3);
  }
  EXPECT_FALSE(answered_early) << "flow control answered before the held messages were handed over";
  EXPECT_TRUE(answered_after);
  EXPECT_EQ(got.seqs, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(got.recreated, 0u);
}

TEST(JetstreamHeld, HeldBytesAreBoundedTheRestComesFromARecreation) {
  NEEDS_URING();
  std::atomic<uint64_t> second_start{0};
  result got;
  {
    fake_server srv([&](fake_peer& p, int n) {
      if (n > 0 || !p.handshake()) return;
      fake_js js{p, {}, {}};
      fake_js::pub create, again;
      if (!js.until_pub("$JS.API.CONSUMER.CREATE.S", create)) return;
      std::string deliver = fake_js::field(create.payload, "deliver_subject");
      std::string mib(1 << 20, 'x');
      for (uint64_t i = 1; i <= 6; ++i) js.deliver(deliver, i, i, 6 - i, mib);
      js.created(create, "C1", 6);
      if (!js.until_pub("$JS.API.CONSUMER.CREATE.S", again)) {
        p.wait_closed();
        return;
      }
      uint64_t start = std::strtoull(fake_js::field(again.payload, "opt_start_seq").c_str(), nullptr, 10);
      second_start = start;
      js.created(again, "C2", 7 - start);
      std::string deliver2 = fake_js::field(again.payload, "deliver_subject");
      for (uint64_t s = start, c = 1; s <= 6; ++s, ++c) js.deliver(deliver2, s, c, 6 - s, mib);
      p.wait_closed();
    });
    got = consume(srv, 6);
  }
  // 4 MiB of held messages at most: fewer than 6 of 1 MiB were kept.
  EXPECT_GT(second_start.load(), 1u);
  EXPECT_LT(second_start.load(), 6u);
  EXPECT_EQ(got.seqs, (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(got.sizes, std::vector<size_t>(6, size_t{1} << 20));
  EXPECT_EQ(got.recreated, 1u);
}

// A consumer sequence other than the next expected one in a delivery (the server lost track of
// us): the incarnation is recreated from the last delivered stream sequence + 1, nothing is
// skipped or delivered twice.
TEST(JetstreamHeld, ConsumerSequenceGapRecreatesFromTheLastDelivered) {
  NEEDS_URING();
  std::atomic<uint64_t> second_start{0};
  result got;
  {
    fake_server srv([&](fake_peer& p, int n) {
      if (n > 0 || !p.handshake()) return;
      fake_js js{p, {}, {}};
      fake_js::pub create, again;
      if (!js.until_pub("$JS.API.CONSUMER.CREATE.S", create)) return;
      std::string deliver = fake_js::field(create.payload, "deliver_subject");
      js.created(create, "C1", 3);
      js.deliver(deliver, 1, 1, 2, "m1");
      js.deliver(deliver, 3, 3, 0, "m3");  // consumer seq 2 never came
      if (!js.until_pub("$JS.API.CONSUMER.CREATE.S", again)) {
        p.wait_closed();
        return;
      }
      uint64_t start = std::strtoull(fake_js::field(again.payload, "opt_start_seq").c_str(),
                                     nullptr, 10);
      second_start = start;
      js.created(again, "C2", 2);
      std::string deliver2 = fake_js::field(again.payload, "deliver_subject");
      js.deliver(deliver2, 2, 1, 1, "m2");
      js.deliver(deliver2, 3, 2, 0, "m3");
      p.wait_closed();
    });
    got = consume(srv, 3);
  }
  EXPECT_EQ(second_start.load(), 2u);
  EXPECT_EQ(got.seqs, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(got.recreated, 1u);
}

// The client stops while a JetStream publish, a key listing and a consumer creation wait for
// answers (the fake never answers): each `done` is called once, with ECANCELED, before the
// jetstream is destroyed, and nothing is called after.
TEST(JetstreamHeld, StopWithRequestsInFlightCallsEachDoneOnceAndNothingAfter) {
  NEEDS_URING();
  int publish_calls = 0, keys_calls = 0, after = 0;
  int publish_error = 0, keys_error = 0;
  {
    fake_server srv([&](fake_peer& p, int n) {
      if (n > 0 || !p.handshake()) return;
      fake_js js{p, {}, {}};
      fake_js::pub never;
      js.until_pub("$never", never, 20000);  // reads (and answers PINGs) until the client goes
    });
    std::unique_ptr<jetstream> js;
    bool destroyed = false;
    run_nats(
        [&](nats_loop& run) {
          nats_options o;
          o.urls = {srv.url()};
          nats_client& nc = run.client(o);
          js = std::make_unique<jetstream>(nc);
          run.poll(5, [&] {
            if (!nc.connected()) return false;
            js->publish("s.a", "", "x", [&](js_pub_ack&& a) {
              ++publish_calls;
              publish_error = a.err.error;
              if (destroyed) ++after;
            });
            js->kv_keys("b", "", [&](js_error&& e, std::vector<std::string>&&) {
              ++keys_calls;
              keys_error = e.error;
              if (destroyed) ++after;
            });
            jetstream::ordered_handlers h;
            h.on_msg = [&](const js_delivery&) { ++after; };
            h.on_ready = [&](uint64_t) { ++after; };
            js->consume_ordered("S", "s.a", 0, false, std::move(h));
            run.later(100, [&] {
              nc.stop([&] {
                js.reset();
                destroyed = true;
                run.later(200, [&] { run.done(); });
              });
            });
            return true;
          });
        },
        20000);
    if (js) (void)js.release();
  }
  EXPECT_EQ(publish_calls, 1);
  EXPECT_EQ(publish_error, ECANCELED);
  EXPECT_EQ(keys_calls, 1);
  EXPECT_EQ(keys_error, ECANCELED);
  EXPECT_EQ(after, 0);
}

}  // namespace
}  // namespace rc::server
