// guarded_input: places test input so that its last byte is the last readable byte before a
// PROT_NONE page, so a decoder that reads even one byte past the end crashes the test
// (picohttpparser's test.c does the same). Unit tests only.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace rc::test {

class guarded_input {
 public:
  // Room for inputs up to `bytes_max` bytes.
  explicit guarded_input(size_t bytes_max = 1 << 16) {
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    data_bytes_ = (bytes_max + page_ - 1) / page_ * page_;
    size_ = data_bytes_ + page_;
    void* m = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) std::abort();
    base_ = static_cast<char*>(m);
    if (mprotect(base_ + data_bytes_, page_, PROT_NONE) != 0) std::abort();
  }
  guarded_input(const guarded_input&) = delete;
  guarded_input& operator=(const guarded_input&) = delete;
  ~guarded_input() { munmap(base_, size_); }

  // Copies s to end exactly at the guard page and returns a view of the copy.
  std::string_view place(std::string_view s) {
    if (s.size() > data_bytes_) std::abort();
    char* p = base_ + data_bytes_ - s.size();
    if (!s.empty()) std::memcpy(p, s.data(), s.size());
    return {p, s.size()};
  }

 private:
  char* base_ = nullptr;
  size_t page_ = 0;
  size_t data_bytes_ = 0;
  size_t size_ = 0;
};

}  // namespace rc::test
