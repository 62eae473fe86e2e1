// HTTP/1.1 codec micro-benchmarks: ns per request for parse_head on a minimal request, a
// browser-like one and a pipelined batch; chunked body decoding; writing a small response.
// Each iteration checks its result (the parse length, the body size), so the work cannot be
// optimised away and a regression that breaks parsing cannot pass as a speed-up.
#include <benchmark/benchmark.h>

#include <string>

#include "proto/http1_parser.h"
#include "proto/http1_writer.h"

namespace {

using namespace rc::http1;

const std::string small_request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

// Chrome 124's headers for a top-level navigation, about 600 bytes.
const std::string browser_request =
    "GET /v1/models?limit=20 HTTP/1.1\r\n"
    "Host: api.example.com\r\n"
    "Connection: keep-alive\r\n"
    "sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n"
    "sec-ch-ua-mobile: ?0\r\n"
    "sec-ch-ua-platform: \"Linux\"\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8\r\n"
    "Sec-Fetch-Site: none\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "Sec-Fetch-User: ?1\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n"
    "Cookie: session=7f3a9c2e4b1d; theme=dark\r\n"
    "\r\n";

void parse_one(benchmark::State& state, const std::string& s) {
  request req;
  const limits lim;
  for (auto _ : state) {
    result r = parse_head(s.data(), s.size(), lim, req);
    if (r.status != status::complete || r.consumed != s.size()) {
      state.SkipWithError("parse failed");
      break;
    }
    benchmark::DoNotOptimize(req.header_count);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * s.size()));
  state.counters["bytes"] = static_cast<double>(s.size());
}

void BM_parse_small(benchmark::State& state) {
  parse_one(state, small_request);
}
BENCHMARK(BM_parse_small);

void BM_parse_browser(benchmark::State& state) {
  parse_one(state, browser_request);
}
BENCHMARK(BM_parse_browser);

// 16 small requests in one receive buffer, parsed back to back as a connection would.
void BM_parse_pipelined_16(benchmark::State& state) {
  constexpr int batch_size = 16;
  std::string batch;
  for (int i = 0; i < batch_size; ++i) batch += small_request;
  request req;
  const limits lim;
  for (auto _ : state) {
    size_t pos = 0;
    for (int i = 0; i < batch_size; ++i) {
      result r = parse_head(batch.data() + pos, batch.size() - pos, lim, req);
      benchmark::DoNotOptimize(req.path);
      pos += r.consumed;
    }
    if (pos != batch.size()) {
      state.SkipWithError("pipelined parse failed");
      break;
    }
  }
  state.counters["ns_per_request"] =
      benchmark::Counter(static_cast<double>(state.iterations() * batch_size),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_parse_pipelined_16);

// A 4 KiB body in 64 chunks of 64 bytes, some with extensions, and a trailer.
void BM_chunked_decode(benchmark::State& state) {
  std::string body;
  std::string payload(64, 'd');
  for (int i = 0; i < 64; ++i) body += (i % 8 == 0 ? "40;ext=v\r\n" : "40\r\n") + payload + "\r\n";
  body += "0\r\nX-Checksum: 1234\r\n\r\n";
  const limits lim;
  rc::byte_buffer out(8192);
  for (auto _ : state) {
    chunked_decoder dec(lim);
    out.clear();
    result r = dec.feed(body.data(), body.size(), out);
    if (r.status != status::complete || r.consumed != body.size() || out.size() != 4096) {
      state.SkipWithError("chunked decode failed");
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_chunked_decode);

// A 200 with two fields and a 2-byte body, appended to a reused buffer.
void BM_write_response(benchmark::State& state) {
  date_cache date;
  date.refresh(784111777);
  rc::byte_buffer out(512);
  const std::string expected =
      "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
      "Content-Type: application/json\r\nx-request-id: req-12345\r\n"
      "Content-Length: 2\r\n\r\n{}";
  for (auto _ : state) {
    out.clear();
    response_writer w(out, date);
    w.start(200);
    w.header("Content-Type", "application/json");
    w.header("x-request-id", "req-12345");
    w.end_with_body("{}");
    if (out.size() != expected.size()) {
      state.SkipWithError("unexpected response size");
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  if (out.view() != expected) state.SkipWithError("unexpected response bytes");
}
BENCHMARK(BM_write_response);

}  // namespace
