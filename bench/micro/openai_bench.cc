// Micro-benchmarks of the OpenAI codecs on the paths that matter: parsing and validating a
// typical chat request, encoding one streamed token (chat chunk, Responses delta), encoding an
// embedding, and the JSON string escaper underneath them. Each benchmark checks its result so
// the work cannot be optimised away or silently go wrong.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "proto/json_reader.h"
#include "proto/json_writer.h"
#include "proto/openai_chat.h"
#include "proto/openai_embeddings.h"
#include "proto/openai_responses.h"

namespace {

using namespace rc;
using namespace rc::openai;

// About 1 KiB: a system prompt, a user turn, an assistant turn and one tool with a schema.
const std::string chat_body = R"({
  "model": "gpt-4o-mini",
  "stream": true,
  "stream_options": {"include_usage": true},
  "temperature": 0.7,
  "max_completion_tokens": 512,
  "messages": [
    {"role": "system", "content": "You are a helpful assistant that answers questions about the weather. Keep answers short and cite the tool output when you use it. Never invent numbers."},
    {"role": "user", "content": "What is the weather like in Paris today? I am planning a walk along the Seine this afternoon and would like to know whether I need an umbrella or sunglasses."},
    {"role": "assistant", "content": "Let me look that up for you. One moment while I check the current conditions and the forecast for this afternoon."}
  ],
  "tools": [{
    "type": "function",
    "function": {
      "name": "get_weather",
      "description": "Get the current weather and the forecast for a city.",
      "parameters": {
        "type": "object",
        "properties": {
          "city": {"type": "string", "description": "City name, e.g. Paris"},
          "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
          "hours": {"type": "integer", "minimum": 1, "maximum": 48}
        },
        "required": ["city"]
      }
    }
  }],
  "tool_choice": "auto",
  "user": "user-1234"
})";

void check(benchmark::State& state, bool ok, const char* what) {
  if (!ok) state.SkipWithError(what);
}

void BM_ParseChatRequestInPlace(benchmark::State& state) {
  std::vector<char> buf(chat_body.begin(), chat_body.end());
  buf.resize(chat_body.size() + json::padding_bytes, ' ');
  json::parser p;
  chat_request req;
  for (auto _ : state) {
    json::value root;
    auto e = parse_json_body(p, buf.data(), chat_body.size(), buf.size(), root);
    if (!e) e = parse_chat_request(root, req);
    benchmark::DoNotOptimize(req);
    check(state, !e && req.messages.size() == 3 && req.tools.size() == 1, "parse failed");
  }
  check(state, p.parsed_copied() == 0, "expected in-place parsing");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * chat_body.size()));
}
BENCHMARK(BM_ParseChatRequestInPlace);

void BM_ParseChatRequestCopied(benchmark::State& state) {
  json::parser p;
  chat_request req;
  for (auto _ : state) {
    json::value root;
    auto e = parse_json_body(p, chat_body.data(), chat_body.size(), chat_body.size(), root);
    if (!e) e = parse_chat_request(root, req);
    benchmark::DoNotOptimize(req);
    check(state, !e && req.messages.size() == 3, "parse failed");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * chat_body.size()));
}
BENCHMARK(BM_ParseChatRequestCopied);

completion_header header() {
  return completion_header{.id = std::string("chatcmpl-0_8f3a9c2e1b7d4f60a5e3"),
                           .created = 1732240000,
                           .model = std::string("gpt-4o-mini"),
                           .system_fingerprint = std::string("fp_44709d6fcb")};
}

void BM_ChatContentChunk(benchmark::State& state) {
  chat_chunk_writer w(header(), usage_chunk::on);
  byte_buffer out(1024);
  size_t expected = 0;
  for (auto _ : state) {
    out.clear();
    w.content(out, 0, " umbrella");
    benchmark::DoNotOptimize(out.data());
    if (expected == 0) expected = out.size();
    check(state, out.size() == expected && out.size() > 200, "unexpected chunk size");
  }
}
BENCHMARK(BM_ChatContentChunk);

void BM_ResponsesTextDelta(benchmark::State& state) {
  response_object r;
  r.id = "resp_0_8f3a9c2e1b7d4f60a5e3";
  r.created_at = 1732240000;
  r.settings.model = "gpt-4o-mini";
  byte_buffer out(1024);
  auto fresh = [&] {
    auto w = std::make_unique<response_event_writer>(r);
    w->begin_message(out, "msg_0_8f3a9c2e1b7d4f60a5e3");
    w->content_part_added(out, 0);
    return w;
  };
  auto w = fresh();
  int64_t n = 0;
  for (auto _ : state) {
    // The writer accumulates the text for output_text.done; start a new message now and then
    // so that the benchmark measures the delta, not an ever-growing string.
    if (++n % 4096 == 0) w = fresh();
    out.clear();
    w->text_delta(out, 0, " umbrella");
    benchmark::DoNotOptimize(out.data());
    check(state, out.size() > 100, "unexpected delta size");
  }
}
BENCHMARK(BM_ResponsesTextDelta);

void BM_Embedding1536(benchmark::State& state) {
  const auto encoding = static_cast<embedding_encoding>(state.range(0));
  std::vector<float> v(1536);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 97) * 0.0173f - 0.83f;
  byte_buffer out(64 << 10);
  for (auto _ : state) {
    out.clear();
    write_embeddings(out, "text-embedding-3-small", v, v.size(), encoding, 8);
    benchmark::DoNotOptimize(out.data());
    check(state, out.size() > 8000, "embedding too short");
  }
  state.SetLabel(encoding == embedding_encoding::base64 ? "base64" : "float");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * v.size() * sizeof(float)));
}
BENCHMARK(BM_Embedding1536)
    ->Arg(static_cast<int>(embedding_encoding::float_array))
    ->Arg(static_cast<int>(embedding_encoding::base64));

void BM_WriteString(benchmark::State& state) {
  // range(0): 0 = ASCII prose, 1 = mixed UTF-8 (French/emoji), 2 = code with quotes/newlines.
  static const std::string samples[] = {
      std::string(4, ' ') + "The quick brown fox jumps over the lazy dog near the river bank.",
      "Il fait beau \xC3\xA0 Paris aujourd'hui \xE2\x98\x80\xEF\xB8\x8F, pas besoin de parapluie "
      "\xF0\x9F\x98\x8E.",
      "def f(x):\n    return \"value: \" + str(x)\n\tprint('done')\n",
  };
  const std::string& s = samples[state.range(0)];
  byte_buffer out(1024);
  for (auto _ : state) {
    out.clear();
    json::write_string(out, s);
    benchmark::DoNotOptimize(out.data());
    check(state, out.size() >= s.size() + 2, "string too short");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * s.size()));
}
BENCHMARK(BM_WriteString)->Arg(0)->Arg(1)->Arg(2);

}  // namespace
