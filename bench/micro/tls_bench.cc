// Micro-benchmarks of the TLS codec (proto/tls.h), in memory on one core: what an upstream over
// https costs ringcast in CPU, apart from the network.
// * a full handshake (client + server sides, P-256 certificate, TLS 1.3 and 1.2), for the cost of
//   a new pooled connection;
// * one small record (an SSE token chunk) encrypted by the upstream's side and decrypted by
//   ringcast's client session, for the per-token cost of relaying;
// * decryption alone, per record (small token records, full 16 KiB records);
// * the heap an idle client session holds (a pooled keep-alive connection).
// Each iteration checks the bytes that came out, so nothing is optimised away.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "proto/tls.h"
#include "tls_test_certs.h"

namespace {

using namespace rc;
using namespace rc::tls;

struct fixture {
  fixture() {
    const auto& ca = certs.make_ca("ca", "bench CA");
    leaf = &certs.make_leaf("leaf", &ca, {"DNS:localhost"});
    std::string error;
    cctx = client_context::create({.verify = true, .ca_file = ca.cert_file}, error);
    for (int v : {0, TLS1_2_VERSION}) {
      sctx[v ? 1 : 0] = server_context::create(
          {.cert_file = leaf->cert_file, .key_file = leaf->key_file, .max_version = v}, error);
    }
  }
  testing::cert_factory certs;
  const testing::issued* leaf = nullptr;
  std::unique_ptr<client_context> cctx;
  std::unique_ptr<server_context> sctx[2];
};

fixture& shared() {
  static fixture f;
  return f;
}

// Moves bytes both ways until quiet.
void pump(session& c, session& s, byte_buffer& c_plain, byte_buffer& s_plain) {
  byte_buffer wire;
  for (int i = 0; i < 16; ++i) {
    wire.clear();
    c.take_output(wire);
    bool moved = !wire.empty();
    s.feed(reinterpret_cast<const uint8_t*>(wire.data()), wire.size());
    s.read(s_plain);
    wire.clear();
    s.take_output(wire);
    moved = moved || !wire.empty();
    c.feed(reinterpret_cast<const uint8_t*>(wire.data()), wire.size());
    c.read(c_plain);
    if (!moved) return;
  }
}

void BM_Handshake(benchmark::State& state) {
  fixture& f = shared();
  server_context& sctx = *f.sctx[state.range(0)];
  for (auto _ : state) {
    auto c = session::client(*f.cctx, "localhost");
    auto s = session::server(sctx);
    byte_buffer cp, sp;
    pump(*c, *s, cp, sp);
    if (!c->handshake_done() || !s->handshake_done()) state.SkipWithError("handshake failed");
  }
}
BENCHMARK(BM_Handshake)->Arg(0)->Arg(1)->ArgName("tls12");

// Server encrypts a record of range(0) bytes, client decrypts it: one relayed token's TLS work.
void BM_Record(benchmark::State& state) {
  fixture& f = shared();
  auto c = session::client(*f.cctx, "localhost");
  auto s = session::server(*f.sctx[0]);
  byte_buffer cp, sp, wire;
  pump(*c, *s, cp, sp);
  std::string payload(static_cast<size_t>(state.range(0)), 'x');
  for (auto _ : state) {
    s->write(payload);
    wire.clear();
    s->take_output(wire);
    c->feed(reinterpret_cast<const uint8_t*>(wire.data()), wire.size());
    cp.clear();
    c->read(cp);
    if (cp.size() != payload.size()) state.SkipWithError("lost bytes");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Record)->Arg(120)->Arg(1024)->Arg(16384);

// Client-side decryption alone: records of range(0) bytes, encrypted up front by the server, fed
// and read one at a time as they would arrive (a token per record on a streaming upstream).
void BM_Decrypt(benchmark::State& state) {
  fixture& f = shared();
  constexpr size_t records = 256;
  const size_t record_bytes = static_cast<size_t>(state.range(0));
  std::string payload(record_bytes, 'y');
  for (auto _ : state) {
    state.PauseTiming();
    auto c = session::client(*f.cctx, "localhost");
    auto s = session::server(*f.sctx[0]);
    byte_buffer cp, sp;
    pump(*c, *s, cp, sp);
    cp.clear();
    std::vector<byte_buffer> wire(records);
    for (size_t i = 0; i < records; ++i) {
      s->write(payload);
      s->take_output(wire[i]);
    }
    state.ResumeTiming();
    for (const byte_buffer& w : wire) {
      c->feed(reinterpret_cast<const uint8_t*>(w.data()), w.size());
      c->read(cp);
    }
    if (cp.size() != record_bytes * records) state.SkipWithError("lost bytes");
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * records));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * record_bytes * records));
}
BENCHMARK(BM_Decrypt)->Arg(120)->Arg(16384);

// Heap held by one idle client session after its handshake and a request/response (glibc's
// mallinfo2; the bench does not link mimalloc): what each pooled keep-alive connection costs.
// Reported as a counter; the timing is of making the sessions.
void BM_IdleSessionBytes(benchmark::State& state) {
  fixture& f = shared();
  constexpr size_t sessions = 200;
  double bytes_per_session = 0;
  for (auto _ : state) {
    std::vector<std::unique_ptr<session>> keep;
    size_t before = mallinfo2().uordblks;
    for (size_t i = 0; i < sessions; ++i) {
      auto c = session::client(*f.cctx, "localhost");
      auto s = session::server(*f.sctx[0]);
      byte_buffer cp, sp;
      c->write("GET / HTTP/1.1\r\n\r\n");
      pump(*c, *s, cp, sp);
      s->write("HTTP/1.1 200 OK\r\n\r\n");
      pump(*c, *s, cp, sp);
      if (cp.empty()) state.SkipWithError("no response");
      s.reset();
      keep.push_back(std::move(c));
    }
    size_t after = mallinfo2().uordblks;
    bytes_per_session = static_cast<double>(after - before) / sessions;
  }
  state.counters["heap_bytes_per_idle_session"] = bytes_per_session;
}
BENCHMARK(BM_IdleSessionBytes)->Iterations(3)->Unit(benchmark::kMillisecond);

}  // namespace
