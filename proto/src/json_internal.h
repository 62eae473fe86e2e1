// Private bridge between rc::json's public handles and simdjson's DOM, for proto/src/*.cc only.
//
// json::value and the iterators store a simdjson DOM element/iterator by value in an opaque,
// suitably sized buffer; these helpers convert in both directions. The sizes and trivial
// copyability are checked at compile time here, so a simdjson upgrade that changes the layout
// fails the build instead of corrupting memory.
#pragma once

#include <simdjson.h>

#include <cstring>
#include <type_traits>

#include "base/byte_buffer.h"
#include "proto/json_reader.h"

namespace rc::json {

using dom_element = simdjson::dom::element;

struct access {
  template <class T, size_t N>
  static T load(const unsigned char (&storage)[N]) {
    static_assert(sizeof(T) <= N && std::is_trivially_copyable_v<T>);
    T t;
    std::memcpy(static_cast<void*>(&t), storage, sizeof(T));
    return t;
  }
  template <class T, size_t N>
  static void store(unsigned char (&storage)[N], const T& t) {
    static_assert(sizeof(T) <= N && std::is_trivially_copyable_v<T>);
    std::memcpy(storage, static_cast<const void*>(&t), sizeof(T));
  }

  static dom_element element(const value& v) { return load<dom_element>(v.storage_); }
  static value make(dom_element e) {
    value v;
    store(v.storage_, e);
    v.valid_ = true;
    return v;
  }
  static simdjson::dom::array::iterator array_it(const array_iterator& it) {
    return load<simdjson::dom::array::iterator>(it.storage_);
  }
  static array_iterator make(simdjson::dom::array::iterator i) {
    array_iterator it;
    store(it.storage_, i);
    return it;
  }
  static simdjson::dom::object::iterator object_it(const object_iterator& it) {
    return load<simdjson::dom::object::iterator>(it.storage_);
  }
  static object_iterator make(simdjson::dom::object::iterator i) {
    object_iterator it;
    store(it.storage_, i);
    return it;
  }
};

inline dom_element to_dom(const value& v) {
  return access::element(v);
}
inline value from_dom(dom_element e) {
  return access::make(e);
}

// Appends `e` as compact JSON (see value::write_to).
void write_dom(byte_buffer& out, dom_element e);

}  // namespace rc::json
