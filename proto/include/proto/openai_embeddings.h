// OpenAI Embeddings (POST /v1/embeddings): request parsing and validation, and the response.
//
// `input` is a string, an array of strings, an array of token ids, or an array of arrays of
// token ids (OpenAI's four shapes); it must not be empty, strings must not be empty, and an
// array holds at most 2048 inputs
// and a token array at most 8192 ids. Policies as in openai_chat.h (unknown members ignored,
// null means absent, last duplicate wins, OpenAI's wording and param paths).
//
// The response is {"object":"list","data":[{"object":"embedding","index":i,"embedding":…}],
// "model":…,"usage":{"prompt_tokens","total_tokens"}}; with encoding_format "base64" each
// embedding is the base64 of its little-endian float32 values (what the official SDKs, which
// ask for base64 by default, decode).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/byte_buffer.h"
#include "proto/json_reader.h"
#include "proto/openai_errors.h"

namespace rc::openai {

enum class embedding_encoding : uint8_t { float_array, base64 };
enum class embedding_input_kind : uint8_t { text, tokens };

struct embeddings_request {
  std::string model;
  embedding_input_kind input_kind = embedding_input_kind::text;
  std::vector<std::string> texts;                  // input_kind == text (a string is one input)
  std::vector<std::vector<uint32_t>> token_lists;  // input_kind == tokens (one list per input)
  embedding_encoding encoding = embedding_encoding::float_array;
  std::optional<uint32_t> dimensions;  // >= 1
  std::string user;

  size_t input_count() const {
    return input_kind == embedding_input_kind::text ? texts.size() : token_lists.size();
  }
};

inline constexpr size_t embedding_inputs_max = 2048;
// Token ids in one token-array input (OpenAI's per-input context of its embedding models).
inline constexpr size_t embedding_tokens_per_input_max = 8192;

std::optional<api_error> parse_embeddings_request(const json::value& root, embeddings_request& out);

// `dimensions` may shorten a model's embeddings, never lengthen them: a request asking for more
// than the model's `model_dimensions` is a 400 naming the field and the bound (checked once the
// model is known, like check_completion_tokens). Unbounded, a client could make the server build
// gigabytes of output from a one-line request.
std::optional<api_error> check_embedding_dimensions(const embeddings_request& req,
                                                    uint32_t model_dimensions);

// `values` holds values.size() / dimensions embeddings of `dimensions` floats each, in input
// order. REQUIRES: dimensions > 0 and values.size() % dimensions == 0.
void write_embeddings(byte_buffer& out, std::string_view model, std::span<const float> values,
                      size_t dimensions, embedding_encoding encoding, uint64_t prompt_tokens);

// The same response in pieces, for a writer that spreads a large one over several loop turns:
// begin, then one item per embedding in index order, then end.
void write_embeddings_begin(byte_buffer& out);
void write_embedding_item(byte_buffer& out, size_t index, std::span<const float> values,
                          embedding_encoding encoding);
void write_embeddings_end(byte_buffer& out, std::string_view model, uint64_t prompt_tokens);

}  // namespace rc::openai
