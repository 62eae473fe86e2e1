// Fuzz target: a TLS client session (proto/tls.h) fed arbitrary "server" bytes after its
// ClientHello, whole and then cut at fuzzer-chosen points (fuzz_split.h).
//
// Flag bits: 0 verify off, 1 connect to an IP literal instead of a name, 2 queue a request
// before the handshake, 3 shut down after the first chunk.
// The system OpenSSL is not instrumented, so libFuzzer cannot see which of its paths an input
// reached. The target makes up for part of that with extra counters: one per distinct error
// text (OpenSSL names the check that failed), so an input that fails somewhere new is kept.
// Invariants, beyond "no crash, no leak, no UB":
// * no plaintext comes out before the handshake is done (the fuzzer cannot finish one: the
//   client's key shares are fresh randomness, so nothing it sends decrypts);
// * an error is sticky and explained: state error <=> error() is non-empty, and later feed()
//   and read() calls answer error;
// * the outcome (state, error text, handshake done) is the same however the input is split.
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_split.h"
#include "proto/tls.h"

namespace {

using namespace rc::tls;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    std::abort();
  }
}

std::unique_ptr<client_context> make_context(bool verify) {
  std::string error;
  std::unique_ptr<client_context> ctx = client_context::create({.verify = verify}, error);
  check(ctx != nullptr, "a client context");
  return ctx;
}

// Index 1 verifies against the system store, index 0 does not verify.
client_context& context(bool verify) {
  static std::unique_ptr<client_context> ctx[2] = {make_context(false), make_context(true)};
  return *ctx[verify ? 1 : 0];
}

// libFuzzer treats every byte of this section as a coverage counter (Linux, clang).
constexpr size_t error_counters = 4096;
__attribute__((used, section("__libfuzzer_extra_counters"))) uint8_t error_seen[error_counters];

void count_error(std::string_view error) {
  if (error.empty()) return;
  size_t h = std::hash<std::string_view>()(error) % error_counters;
  if (error_seen[h] < 255) ++error_seen[h];
}

struct outcome {
  status state = status::ok;
  std::string error;
  bool handshake_done = false;
  bool operator==(const outcome&) const = default;
};

outcome run(uint8_t flags, const std::vector<std::string_view>& chunks) {
  std::unique_ptr<session> s =
      session::client(context(!(flags & 1)), (flags & 2) ? "127.0.0.1" : "upstream.example");
  rc::byte_buffer wire, plain;
  s->take_output(wire);
  check(s->state() == status::ok && !wire.empty(), "a ClientHello");
  if (flags & 4) s->write("GET / HTTP/1.1\r\nHost: upstream.example\r\n\r\n");
  bool first = true;
  for (std::string_view chunk : chunks) {
    status before = s->state();
    status fed = s->feed(reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size());
    status got = s->read(plain);
    if (before == status::error) check(fed == status::error && got == status::error, "sticky");
    check(got == s->state(), "read() answers the state");
    check(plain.empty() || s->handshake_done(), "no plaintext before the handshake");
    check((s->state() == status::error) == !s->error().empty(), "an error says why");
    if (first && (flags & 8)) s->shutdown();
    first = false;
    wire.clear();
    s->take_output(wire);
  }
  count_error(s->error());
  return {s->state(), std::string(s->error()), s->handshake_done()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rc::fuzz::split_input in;
  if (!rc::fuzz::parse_split_input(data, size, in)) return 0;
  outcome whole = run(in.flags, {in.payload});
  if (in.chunks.size() > 1) {
    outcome split = run(in.flags, in.chunks);
    check(whole == split, "the same outcome however the input is split");
  }
  return 0;
}
