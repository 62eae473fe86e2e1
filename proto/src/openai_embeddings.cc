#include "proto/openai_embeddings.h"

#include <bit>
#include <cstring>

#include "base/assert.h"
#include "openai_validate.h"
#include "proto/base64.h"
#include "proto/json_writer.h"

namespace rc::openai {

using namespace detail;

namespace {

constexpr int64_t token_max = UINT32_MAX;

maybe_error read_token_list(const value& v, const path& p, std::vector<uint32_t>& out) {
  if (auto e = expect_array(v, p)) return e;
  if (size_t n = v.size(); n > embedding_tokens_per_input_max) {
    return array_too_long(p, embedding_tokens_per_input_max, n);
  }
  size_t i = 0;
  for (value t : v.elements()) {
    int64_t token = 0;
    if (auto e = read_int(t, p.index(i++), 0, token_max, token)) return e;
    out.push_back(static_cast<uint32_t>(token));
  }
  if (i == 0) return empty_array(p);
  return std::nullopt;
}

maybe_error read_text(const value& v, const path& p, std::vector<std::string>& out) {
  std::string_view s;
  if (auto e = read_string_view(v, p, s)) return e;
  if (s.empty()) return empty_string(p);
  out.emplace_back(s);
  return std::nullopt;
}

maybe_error read_input(const value& v, embeddings_request& out) {
  path p("input");
  if (v.is_string()) return read_text(v, p, out.texts);
  if (!v.is_array()) return wrong_type(p, "one of a string or array", v);
  size_t n = v.size();
  if (n == 0) return empty_array(p);

  // The first element decides which of the array shapes this is; the rest must match it.
  value first = *v.elements().begin();
  if (first.is_number()) {  // one input of token ids
    out.input_kind = embedding_input_kind::tokens;
    out.token_lists.emplace_back();
    return read_token_list(v, p, out.token_lists.back());
  }
  if (n > embedding_inputs_max) return array_too_long(p, embedding_inputs_max, n);
  if (first.is_array()) {
    out.input_kind = embedding_input_kind::tokens;
    size_t i = 0;
    for (value list : v.elements()) {
      out.token_lists.emplace_back();
      if (auto e = read_token_list(list, p.index(i++), out.token_lists.back())) return e;
    }
    return std::nullopt;
  }
  if (!first.is_string()) {
    return wrong_type(p.index(0), "one of a string, integer or array of integers", first);
  }
  size_t i = 0;
  for (value s : v.elements()) {
    if (auto e = read_text(s, p.index(i++), out.texts)) return e;
  }
  return std::nullopt;
}

constexpr std::string_view member_names[] = {"model", "input", "encoding_format", "dimensions",
                                             "user"};
enum member_slot { m_model, m_input, m_encoding_format, m_dimensions, m_user, m_count };

}  // namespace

std::optional<api_error> parse_embeddings_request(const json::value& root,
                                                  embeddings_request& out) {
  out = embeddings_request{};
  if (!root.is_object()) return body_not_object(root.kind());
  value s[m_count];
  collect_members(root, member_names, s);
  if (absent(s[m_model])) return missing(path("model"));
  if (auto e = read_string(s[m_model], path("model"), out.model)) return e;
  if (absent(s[m_input])) return missing(path("input"));
  if (auto e = read_input(s[m_input], out)) return e;
  if (!absent(s[m_encoding_format])) {
    size_t i = 0;
    if (auto e = read_enum(s[m_encoding_format], path("encoding_format"), {"float", "base64"}, i)) {
      return e;
    }
    out.encoding = i == 0 ? embedding_encoding::float_array : embedding_encoding::base64;
  }
  if (!absent(s[m_dimensions])) {
    int64_t d = 0;
    if (auto e = read_int(s[m_dimensions], path("dimensions"), 1, UINT32_MAX, d)) return e;
    out.dimensions = static_cast<uint32_t>(d);
  }
  if (!absent(s[m_user])) {
    if (auto e = read_string(s[m_user], path("user"), out.user)) return e;
  }
  return std::nullopt;
}

std::optional<api_error> check_embedding_dimensions(const embeddings_request& req,
                                                    uint32_t model_dimensions) {
  if (!req.dimensions || *req.dimensions <= model_dimensions) return std::nullopt;
  return integer_above_max(path("dimensions"), model_dimensions, *req.dimensions);
}

namespace {

void write_float_array(byte_buffer& out, std::span<const float> v) {
  // At most number_chars_max per value plus a comma: reserve once, then format in place.
  char* d = out.prepare(2 + v.size() * (json::number_chars_max + 1));
  char* p = d;
  *p++ = '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) *p++ = ',';
    p += json::format_float(v[i], p);
  }
  *p++ = ']';
  out.commit(static_cast<size_t>(p - d));
}

void write_base64(byte_buffer& out, std::span<const float> v) {
  const size_t bytes = v.size() * sizeof(float);
  char* d = out.prepare(base64::encoded_size(bytes) + 2);
  d[0] = '"';
  if constexpr (std::endian::native == std::endian::little) {
    base64::encode(v.data(), bytes, d + 1);
  } else {
    std::vector<uint32_t> le(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      le[i] = __builtin_bswap32(std::bit_cast<uint32_t>(v[i]));
    }
    base64::encode(le.data(), bytes, d + 1);
  }
  d[base64::encoded_size(bytes) + 1] = '"';
  out.commit(base64::encoded_size(bytes) + 2);
}

}  // namespace

void write_embeddings_begin(byte_buffer& out) {
  out.append("{\"object\":\"list\",\"data\":[");
}

void write_embedding_item(byte_buffer& out, size_t index, std::span<const float> values,
                          embedding_encoding encoding) {
  if (index > 0) out.push_back(',');
  out.append("{\"object\":\"embedding\",\"index\":");
  json::write_uint64(out, index);
  out.append(",\"embedding\":");
  if (encoding == embedding_encoding::base64) {
    write_base64(out, values);
  } else {
    write_float_array(out, values);
  }
  out.push_back('}');
}

void write_embeddings_end(byte_buffer& out, std::string_view model, uint64_t prompt_tokens) {
  out.append("],\"model\":");
  json::write_string(out, model);
  out.append(",\"usage\":{\"prompt_tokens\":");
  json::write_uint64(out, prompt_tokens);
  out.append(",\"total_tokens\":");
  json::write_uint64(out, prompt_tokens);
  out.append("}}");
}

void write_embeddings(byte_buffer& out, std::string_view model, std::span<const float> values,
                      size_t dimensions, embedding_encoding encoding, uint64_t prompt_tokens) {
  RC_ASSERT(dimensions > 0 && values.size() % dimensions == 0);
  const size_t count = values.size() / dimensions;
  write_embeddings_begin(out);
  for (size_t i = 0; i < count; ++i) {
    write_embedding_item(out, i, values.subspan(i * dimensions, dimensions), encoding);
  }
  write_embeddings_end(out, model, prompt_tokens);
}

}  // namespace rc::openai
