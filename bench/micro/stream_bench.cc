// Micro-benchmarks of the streaming codecs: SSE encode/decode, WebSocket frame writing and
// masking, ws::session input, UTF-8 validation. Each checks its own result (RC_ASSERT stays on in
// release builds) so the work cannot be optimised away or silently go wrong.
#include <benchmark/benchmark.h>
#include <simdjson.h>

#include <string>
#include <vector>

#include "base/assert.h"
#include "proto/sse.h"
#include "proto/utf8.h"
#include "proto/ws.h"
#include "proto/ws_session.h"

namespace {

using namespace rc;

// A chat.completion.chunk as OpenAI-compatible servers stream it (~230 bytes).
std::string chat_chunk(int i) {
  return R"({"id":"chatcmpl-8f2c1e","object":"chat.completion.chunk","created":1732240000,)"
         R"("model":"mock-1","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":")" +
         std::string(" tok") + std::to_string(i % 1000) +
         R"("},"logprobs":null,"finish_reason":null}]})";
}

void BM_SseEncodeSmallEvent(benchmark::State& state) {
  const std::string data = chat_chunk(7);
  const sse::event e{.data = data};
  byte_buffer out(4096);
  const size_t want = data.size() + 8;  // "data: " + data + "\n\n"
  for (auto _ : state) {
    out.clear();
    sse::write_event(out, e);
    benchmark::DoNotOptimize(out.data());
  }
  RC_ASSERT(out.size() == want);
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * want));
}
BENCHMARK(BM_SseEncodeSmallEvent);

void BM_SseEncodeNamedEventWithId(benchmark::State& state) {
  const std::string data = chat_chunk(7);
  const sse::event e{.id = "1732240000-42", .type = "response.output_text.delta", .data = data};
  byte_buffer out(4096);
  for (auto _ : state) {
    out.clear();
    sse::write_event(out, e);
    benchmark::DoNotOptimize(out.data());
  }
  RC_ASSERT(out.size() == sse::encoded_size(e));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SseEncodeNamedEventWithId);

// A whole chat completion stream: 200 chunks, a heartbeat, [DONE]. Arg = bytes per read (0: the
// whole stream at once), to include the cost of lines split across reads.
void BM_SseDecodeOpenAiStream(benchmark::State& state) {
  constexpr int chunks = 200;
  std::string stream;
  for (int i = 0; i < chunks; ++i) stream += "data: " + chat_chunk(i) + "\n\n";
  stream += ": ping\n\ndata: [DONE]\n\n";
  const size_t read_bytes = state.range(0) ? static_cast<size_t>(state.range(0)) : stream.size();
  sse::decoder d;
  for (auto _ : state) {
    d.restart();
    int events = 0;
    bool done = false;
    for (size_t off = 0; off < stream.size(); off += read_bytes) {
      std::string_view piece = std::string_view(stream).substr(off, read_bytes);
      sse::decode_error e = d.feed(piece, [&](const sse::decoded_event& ev) {
        ++events;
        done = sse::is_openai_done(ev.data);
        benchmark::DoNotOptimize(ev.data.data());
      });
      RC_ASSERT(e == sse::decode_error::none);
    }
    RC_ASSERT(events == chunks + 1 && done);
  }
  state.SetItemsProcessed(state.iterations() * (chunks + 1));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
}
BENCHMARK(BM_SseDecodeOpenAiStream)->Arg(0)->Arg(1400);

// Server frame (unmasked) of Arg payload bytes, the fan-out encoding.
void BM_WsWriteFrame(benchmark::State& state) {
  const std::string payload(static_cast<size_t>(state.range(0)), 'x');
  byte_buffer out(payload.size() + 64);
  for (auto _ : state) {
    out.clear();
    ws::write_frame(out, ws::opcode::text, payload);
    benchmark::DoNotOptimize(out.data());
  }
  RC_ASSERT(out.size() == ws::frame_header_size(payload.size(), false) + payload.size());
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * payload.size()));
}
BENCHMARK(BM_WsWriteFrame)->Arg(20)->Arg(4096);

// Client frame: the payload is masked while it is copied.
void BM_WsWriteMaskedFrame(benchmark::State& state) {
  const std::string payload(static_cast<size_t>(state.range(0)), 'x');
  byte_buffer out(payload.size() + 64);
  const ws::mask_key key = {1, 2, 3, 4};
  for (auto _ : state) {
    out.clear();
    ws::write_frame(out, ws::opcode::text, payload, ws::fin::yes, key);
    benchmark::DoNotOptimize(out.data());
  }
  RC_ASSERT(out.size() == ws::frame_header_size(payload.size(), true) + payload.size());
  RC_ASSERT(out.data()[out.size() - 1] == ('x' ^ 4));  // 4096 and 20 are multiples of 4
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * payload.size()));
}
BENCHMARK(BM_WsWriteMaskedFrame)->Arg(20)->Arg(4096);

struct counter {
  void on(ws::message_kind kind, std::string_view payload) {
    RC_ASSERT(kind == ws::message_kind::text && payload.size() == 20);
    ++messages;
  }
  size_t messages = 0;
};

// 20-byte masked text frames from a client, fed in 16 KiB reads: messages per second through
// wslay and the session's checks.
void BM_WsSessionFeed20ByteMessages(benchmark::State& state) {
  constexpr size_t messages = 4096;
  byte_buffer wire;
  const std::string payload = R"({"action":"ping!!!"})";
  RC_ASSERT(payload.size() == 20);
  for (size_t i = 0; i < messages; ++i) {
    ws::write_frame(wire, ws::opcode::text, payload, ws::fin::yes,
                    ws::mask_key{uint8_t(i), uint8_t(i >> 8), 7, 9});
  }
  counter c;
  byte_buffer out;
  ws::session s(ws::role::server, ws::bind_handler<&counter::on>(&c), out);
  constexpr size_t read_bytes = 16 * 1024;
  for (auto _ : state) {
    for (size_t off = 0; off < wire.size(); off += read_bytes) {
      s.feed(wire.view().substr(off, read_bytes));
    }
  }
  RC_ASSERT(c.messages == messages * state.iterations());
  RC_ASSERT(s.state() == ws::session_state::open && out.empty());
  state.SetItemsProcessed(static_cast<int64_t>(c.messages));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * wire.size()));
}
BENCHMARK(BM_WsSessionFeed20ByteMessages);

void BM_WsApplyMask(benchmark::State& state) {
  std::string payload(static_cast<size_t>(state.range(0)), 'x');
  const ws::mask_key key = {1, 2, 3, 4};
  for (auto _ : state) {
    ws::apply_mask(payload.data(), payload.size(), key);
    benchmark::DoNotOptimize(payload.data());
  }
  RC_ASSERT(state.iterations() % 2 != 0 || payload[0] == 'x');
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * payload.size()));
}
BENCHMARK(BM_WsApplyMask)->Arg(4096);

// 64 KiB of text: Arg 0 = ASCII (JSON), 1 = mixed (Latin-1 supplement, CJK, emoji in ASCII).
std::string utf8_text(int kind) {
  std::string unit = kind == 0 ? R"({"delta":{"content":"Hello, world. "}},)"
                               : "h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x98\x80 ok, ";
  std::string s;
  while (s.size() < 64 * 1024) s += unit;
  return s;
}

void BM_Utf8Valid(benchmark::State& state) {
  const std::string text = utf8_text(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    bool ok = utf8::valid(text);
    RC_ASSERT(ok);
    benchmark::DoNotOptimize(ok);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_Utf8Valid)->Arg(0)->Arg(1);

// The portable fallback, for comparison with the SSSE3 path behind utf8::valid.
void BM_Utf8ValidScalar(benchmark::State& state) {
  const std::string text = utf8_text(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    bool ok = utf8::detail::valid_scalar(text.data(), text.size());
    RC_ASSERT(ok);
    benchmark::DoNotOptimize(ok);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_Utf8ValidScalar)->Arg(0)->Arg(1);

// Reference point: simdjson's runtime-dispatched validator on the same inputs.
void BM_Utf8ValidSimdjson(benchmark::State& state) {
  const std::string text = utf8_text(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    bool ok = simdjson::validate_utf8(text.data(), text.size());
    RC_ASSERT(ok);
    benchmark::DoNotOptimize(ok);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_Utf8ValidSimdjson)->Arg(0)->Arg(1);

}  // namespace
