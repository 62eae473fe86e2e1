// unique_function<R(Args...)>: a move-only callable wrapper (std::move_only_function is C++23).
//
// Mailbox messages and deferred work are closures that own what they carry (a buffer, a
// request), so they must be movable but need not be copyable. Callables up to inline_bytes are
// stored in place (no allocation); larger ones go to the heap.
//
// Thread-safety: none; a unique_function is moved between threads, never shared.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

#include "base/assert.h"

namespace rc {

template <class Signature>
class unique_function;

template <class R, class... Args>
class unique_function<R(Args...)> {
 public:
  static constexpr size_t inline_bytes = 48;

  unique_function() = default;
  unique_function(std::nullptr_t) {}

  template <class F, class D = std::decay_t<F>,
            class = std::enable_if_t<!std::is_same_v<D, unique_function> &&
                                     std::is_invocable_r_v<R, D&, Args...>>>
  unique_function(F&& f) {  // NOLINT: implicit, like std::function
    if constexpr (fits_inline<D>()) {
      new (storage_) D(std::forward<F>(f));
      ops_ = &inline_ops<D>;
    } else {
      *reinterpret_cast<D**>(storage_) = new D(std::forward<F>(f));
      ops_ = &heap_ops<D>;
    }
  }

  unique_function(unique_function&& o) noexcept : ops_(o.ops_) {
    if (ops_) {
      ops_->move(o.storage_, storage_);
      o.ops_ = nullptr;
    }
  }
  unique_function& operator=(unique_function&& o) noexcept {
    if (this != &o) {
      reset();
      ops_ = o.ops_;
      if (ops_) {
        ops_->move(o.storage_, storage_);
        o.ops_ = nullptr;
      }
    }
    return *this;
  }
  unique_function(const unique_function&) = delete;
  unique_function& operator=(const unique_function&) = delete;
  ~unique_function() { reset(); }

  explicit operator bool() const { return ops_ != nullptr; }

  R operator()(Args... args) {
    RC_ASSERT(ops_ != nullptr);
    return ops_->call(storage_, std::forward<Args>(args)...);
  }

  void reset() {
    if (ops_) {
      ops_->destroy(storage_);
      ops_ = nullptr;
    }
  }

 private:
  struct ops {
    R (*call)(void*, Args&&...);
    void (*move)(void* from, void* to);  // move-constructs into `to`, destroys `from`
    void (*destroy)(void*);
  };

  template <class D>
  static constexpr bool fits_inline() {
    return sizeof(D) <= inline_bytes && alignof(D) <= alignof(std::max_align_t) &&
           std::is_nothrow_move_constructible_v<D>;
  }

  template <class D>
  static constexpr ops inline_ops = {
      [](void* s, Args&&... a) -> R { return (*static_cast<D*>(s))(std::forward<Args>(a)...); },
      [](void* from, void* to) {
        new (to) D(std::move(*static_cast<D*>(from)));
        static_cast<D*>(from)->~D();
      },
      [](void* s) { static_cast<D*>(s)->~D(); },
  };

  template <class D>
  static constexpr ops heap_ops = {
      [](void* s, Args&&... a) -> R { return (**static_cast<D**>(s))(std::forward<Args>(a)...); },
      [](void* from, void* to) { *static_cast<D**>(to) = *static_cast<D**>(from); },
      [](void* s) { delete *static_cast<D**>(s); },
  };

  alignas(std::max_align_t) unsigned char storage_[inline_bytes];
  const ops* ops_ = nullptr;
};

}  // namespace rc
