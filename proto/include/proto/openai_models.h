// OpenAI Models (GET /v1/models, GET /v1/models/{id}): the model objects ringcast serves.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "base/byte_buffer.h"

namespace rc::openai {

struct model_entry {
  std::string_view id;
  int64_t created = 0;  // Unix seconds
  std::string_view owned_by;
};

// {"object":"list","data":[{"id","object":"model","created","owned_by"},…]}
void write_model_list(byte_buffer& out, std::span<const model_entry> models);
// {"id","object":"model","created","owned_by"}
void write_model(byte_buffer& out, const model_entry& m);

}  // namespace rc::openai
