// mock: the built-in engine, and the default, so ringcast is useful with zero setup and its tests
// and benchmarks need no backend.
//
// Everything it produces is a pure function of the request, so golden transcripts can be
// recorded from it:
// * text: words drawn from a fixed vocabulary by a generator seeded from the model, the request's
//   `seed` (0 when absent), the last user turn and the choice index; sentences end with a period.
//   One word (with its leading space) or one period is one token. Without max_tokens a choice
//   has mock_tokens tokens and finishes with "stop"; with max_tokens it has exactly that many and
//   finishes with "length". A stop sequence ends the text just before it ("stop").
// * usage: prompt tokens are counted by the same tokenizer over every turn (words and punctuation
//   marks, plus 3 per turn for the message framing); completion tokens are what was emitted,
//   over all choices; tool-call arguments count one token per 4 bytes.
// * tool calls: when tools are given and tool_choice is "required" or names a function, or is
//   "auto" and the last user turn mentions a tool by name and is the conversation's last turn
//   (once tool results follow it, the mock answers in text: an agent's loop ends). Arguments are valid JSON built from
//   the tool's parameter schema (required properties first), streamed in 8-byte fragments; the
//   choice finishes with "tool_calls".
// * embeddings: unit vectors of mock_embedding_dim (or the request's dimensions), derived from a
//   hash of the model and the text.
// * built-in tools for tool.invoke: echo, add, uppercase, word_count, now.
// * test aid: a last user turn containing "ringcast-mock:error-after=N" makes the stream fail
//   with an error event (code "mock_error") after N tokens.
//
// Timing: the first event comes mock_first_token_ms after the request, then one token every
// 1/mock_tokens_per_s seconds per stream (0: as fast as the sink takes them, in batches that
// yield to the loop). Timers are the shard's, with 100 µs resolution.
//
// Thread-safety: one mock_engine per shard; its streams run on that shard.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/reactor.h"
#include "server/engine.h"

namespace rc::server {

struct mock_options {
  std::vector<std::string> models = {"ringcast-mock"};
  uint32_t first_token_ms = 0;
  double tokens_per_s = 0;        // 0: unpaced
  uint32_t default_tokens = 16;   // tokens per choice without max_tokens
  uint64_t max_tokens = 4096;     // largest completion per choice
  uint32_t embedding_dim = 256;
};

class mock_engine final : public engine {
 public:
  mock_engine(reactor& r, mock_options opts);

  std::string_view name() const override { return "mock"; }
  const std::vector<std::string>& models() const override { return opts_.models; }
  uint64_t completion_tokens_max(std::string_view) const override { return opts_.max_tokens; }
  uint32_t embedding_dimensions(std::string_view) const override { return opts_.embedding_dim; }
  bool ready() const override { return true; }

  std::unique_ptr<engine_stream> generate(const generation_request& req,
                                          engine_sink& sink) override;
  void embed(const embedding_request& req,
             unique_function<void(embedding_result&&)> done) override;
  void invoke_tool(std::string_view name, std::string_view arguments_json,
                   unique_function<void(tool_result&&)> done) override;

  const mock_options& options() const { return opts_; }
  reactor& loop() { return reactor_; }

 private:
  reactor& reactor_;
  mock_options opts_;
};

// The mock's tokenizer: words and punctuation marks. Exposed for tests and usage accounting.
uint64_t mock_count_tokens(std::string_view text);

}  // namespace rc::server
