#include "proto/json_reader.h"

#include <cstring>

#include "base/assert.h"
#include "json_internal.h"
#include "proto/json_writer.h"

namespace rc::json {

static_assert(padding_bytes == simdjson::SIMDJSON_PADDING,
              "json::padding_bytes must equal SIMDJSON_PADDING: receive buffers are sized by it");

namespace sj = simdjson;
namespace dom = simdjson::dom;

// ---- value ----

kind value::kind() const {
  RC_ASSERT(valid_);
  switch (to_dom(*this).type()) {
    case dom::element_type::NULL_VALUE:
      return json::kind::null;
    case dom::element_type::BOOL:
      return json::kind::boolean;
    case dom::element_type::INT64:
      return json::kind::int64;
    case dom::element_type::UINT64:
      return json::kind::uint64;
    case dom::element_type::DOUBLE:
      return json::kind::number;
    case dom::element_type::STRING:
      return json::kind::string;
    case dom::element_type::ARRAY:
      return json::kind::array;
    case dom::element_type::OBJECT:
      return json::kind::object;
  }
  RC_ASSERT(false);
  return json::kind::null;
}

bool value::is_number() const {
  json::kind k = kind();
  return k == json::kind::int64 || k == json::kind::uint64 || k == json::kind::number;
}

bool value::get_bool() const {
  RC_ASSERT(kind() == json::kind::boolean);
  return to_dom(*this).get_bool().value_unsafe();
}

int64_t value::get_int64() const {
  RC_ASSERT(kind() == json::kind::int64);
  return to_dom(*this).get_int64().value_unsafe();
}

uint64_t value::get_uint64() const {
  json::kind k = kind();
  RC_ASSERT(k == json::kind::uint64 || (k == json::kind::int64 && get_int64() >= 0));
  return to_dom(*this).get_uint64().value_unsafe();
}

double value::get_double() const {
  RC_ASSERT(is_number());
  return to_dom(*this).get_double().value_unsafe();
}

std::string_view value::get_string() const {
  RC_ASSERT(kind() == json::kind::string);
  return to_dom(*this).get_string().value_unsafe();
}

range<array_iterator> value::elements() const {
  RC_ASSERT(kind() == json::kind::array);
  dom::array a = to_dom(*this).get_array().value_unsafe();
  return {access::make(a.begin()), access::make(a.end())};
}

range<object_iterator> value::members() const {
  RC_ASSERT(kind() == json::kind::object);
  dom::object o = to_dom(*this).get_object().value_unsafe();
  return {access::make(o.begin()), access::make(o.end())};
}

size_t value::size() const {
  size_t n = 0;
  if (kind() == json::kind::array) {
    dom::array a = to_dom(*this).get_array().value_unsafe();
    for (auto it = a.begin(); it != a.end(); ++it) ++n;
  } else {
    RC_ASSERT(kind() == json::kind::object);
    dom::object o = to_dom(*this).get_object().value_unsafe();
    for (auto it = o.begin(); it != o.end(); ++it) ++n;
  }
  return n;
}

value value::find(std::string_view key) const {
  RC_ASSERT(kind() == json::kind::object);
  value found;
  // Copied out of the simdjson_result first: iterating its value_unsafe() directly would
  // iterate a temporary that is already gone.
  dom::object o = to_dom(*this).get_object().value_unsafe();
  for (dom::key_value_pair kv : o) {
    if (kv.key == key) found = from_dom(kv.value);
  }
  return found;
}

void value::write_to(byte_buffer& out) const {
  write_dom(out, to_dom(*this));
}

std::string value::to_json() const {
  byte_buffer b;
  write_to(b);
  return std::string(b.view());
}

value array_iterator::operator*() const {
  return from_dom(*access::array_it(*this));
}
array_iterator& array_iterator::operator++() {
  auto it = access::array_it(*this);
  ++it;
  access::store(storage_, it);
  return *this;
}
bool array_iterator::operator==(const array_iterator& o) const {
  return !(access::array_it(*this) != access::array_it(o));
}

member object_iterator::operator*() const {
  auto it = access::object_it(*this);
  return {it.key(), from_dom(it.value())};
}
object_iterator& object_iterator::operator++() {
  auto it = access::object_it(*this);
  ++it;
  access::store(storage_, it);
  return *this;
}
bool object_iterator::operator==(const object_iterator& o) const {
  return !(access::object_it(*this) != access::object_it(o));
}

// ---- re-encoding ----

// Recursion depth is bounded by the parser's depth_max.
void write_dom(byte_buffer& out, dom::element e) {
  switch (e.type()) {
    case dom::element_type::NULL_VALUE:
      out.append("null");
      return;
    case dom::element_type::BOOL:
      out.append(e.get_bool().value_unsafe() ? std::string_view("true") : "false");
      return;
    case dom::element_type::INT64:
      write_int64(out, e.get_int64().value_unsafe());
      return;
    case dom::element_type::UINT64:
      write_uint64(out, e.get_uint64().value_unsafe());
      return;
    case dom::element_type::DOUBLE:
      write_double(out, e.get_double().value_unsafe());
      return;
    case dom::element_type::STRING:
      write_string(out, e.get_string().value_unsafe());
      return;
    case dom::element_type::ARRAY: {
      out.push_back('[');
      bool first = true;
      dom::array a = e.get_array().value_unsafe();
      for (dom::element x : a) {
        if (!first) out.push_back(',');
        first = false;
        write_dom(out, x);
      }
      out.push_back(']');
      return;
    }
    case dom::element_type::OBJECT: {
      out.push_back('{');
      bool first = true;
      dom::object o = e.get_object().value_unsafe();
      for (dom::key_value_pair kv : o) {
        if (!first) out.push_back(',');
        first = false;
        write_string(out, kv.key);
        out.push_back(':');
        write_dom(out, kv.value);
      }
      out.push_back('}');
      return;
    }
  }
}

// ---- parser ----

struct parser::impl {
  // The limit goes through the constructor: simdjson 3.0.1's set_max_capacity() inverts its
  // comparison and clamps every limit of 32 bytes or more down to 32.
  // simdjson sizes every document at least MINIMAL_DOCUMENT_CAPACITY (32 bytes), so its own
  // limit may not be smaller; parse() enforces document_bytes_max itself.
  explicit impl(size_t document_bytes_max)
      : dom(std::max(document_bytes_max, simdjson::dom::MINIMAL_DOCUMENT_CAPACITY)) {}
  dom::parser dom;
  std::unique_ptr<char[]> copy;  // padded copy of inputs that lack slack
  size_t copy_capacity = 0;      // usable bytes in `copy`, excluding the padding
};

namespace {

constexpr size_t initial_capacity_bytes = 64 << 10;

parse_status status_of(sj::error_code e) {
  switch (e) {
    case sj::SUCCESS:
      return parse_status::ok;
    case sj::EMPTY:
      return parse_status::empty;
    case sj::CAPACITY:
      return parse_status::too_large;
    case sj::DEPTH_ERROR:
      return parse_status::too_deep;
    case sj::UTF8_ERROR:
      return parse_status::invalid_utf8;
    case sj::NUMBER_ERROR:
    case sj::NUMBER_OUT_OF_RANGE:
      return parse_status::invalid_number;
    case sj::STRING_ERROR:
    case sj::UNESCAPED_CHARS:
    case sj::UNCLOSED_STRING:
      return parse_status::invalid_string;
    case sj::MEMALLOC:
      return parse_status::out_of_memory;
    default:
      return parse_status::invalid_json;
  }
}

}  // namespace

parser::parser(parse_limits limits)
    : limits_(limits), impl_(std::make_unique<impl>(limits.document_bytes_max)) {
  RC_ASSERT(limits_.depth_max >= 1);
  size_t initial = std::min(initial_capacity_bytes, std::max(limits_.document_bytes_max,
                                                             sj::dom::MINIMAL_DOCUMENT_CAPACITY));
  // An allocation failure here resurfaces as out_of_memory from the first parse, which
  // allocates again when its capacity is short.
  if (impl_->dom.allocate(initial, limits_.depth_max) != sj::SUCCESS) return;
}

parser::~parser() = default;

parse_result parser::parse(const char* data, size_t size, size_t capacity) {
  RC_ASSERT(capacity >= size);
  parse_result r;
  if (size > limits_.document_bytes_max) {
    r.status = parse_status::too_large;
    r.message = "the document is larger than the configured limit";
    return r;
  }
  dom::parser& dp = impl_->dom;
  // Give back memory held since an unusually large document (see parse_limits).
  if (dp.capacity() > limits_.retained_bytes_max && size <= limits_.retained_bytes_max) {
    size_t smaller = std::max(size, std::min(initial_capacity_bytes, limits_.retained_bytes_max));
    if (dp.allocate(smaller, limits_.depth_max) != sj::SUCCESS) {
      r.status = parse_status::out_of_memory;
      r.message = sj::error_message(sj::MEMALLOC);
      return r;
    }
    if (impl_->copy_capacity > limits_.retained_bytes_max) {
      impl_->copy.reset();
      impl_->copy_capacity = 0;
    }
  }
  const char* input = data;
  if (capacity - size < padding_bytes) {
    if (!impl_->copy || impl_->copy_capacity < size) {
      size_t want = std::max(size, size_t{4096});
      impl_->copy.reset(new (std::nothrow) char[want + padding_bytes]);
      impl_->copy_capacity = impl_->copy ? want : 0;
      if (!impl_->copy) {
        r.status = parse_status::out_of_memory;
        r.message = sj::error_message(sj::MEMALLOC);
        return r;
      }
    }
    std::memcpy(impl_->copy.get(), data, size);
    std::memset(impl_->copy.get() + size, 0, padding_bytes);
    input = impl_->copy.get();
    copied_ += size;
  } else {
    in_place_ += size;
  }
  auto result = dp.parse(input, size, /*realloc_if_needed=*/false);
  if (result.error() != sj::SUCCESS) {
    r.status = status_of(result.error());
    r.message = sj::error_message(result.error());
    return r;
  }
  r.root = from_dom(result.value_unsafe());
  return r;
}

std::string_view to_string(parse_status s) {
  switch (s) {
    case parse_status::ok:
      return "ok";
    case parse_status::empty:
      return "empty";
    case parse_status::too_large:
      return "too_large";
    case parse_status::too_deep:
      return "too_deep";
    case parse_status::invalid_utf8:
      return "invalid_utf8";
    case parse_status::invalid_number:
      return "invalid_number";
    case parse_status::invalid_string:
      return "invalid_string";
    case parse_status::invalid_json:
      return "invalid_json";
    case parse_status::out_of_memory:
      return "out_of_memory";
  }
  return "unknown";
}

}  // namespace rc::json
