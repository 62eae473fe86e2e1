// Places bytes right before a PROT_NONE page, so a parser that reads past the end crashes.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string_view>

namespace rc::load::testing {

class guarded_bytes {
 public:
  explicit guarded_bytes(std::string_view s) {
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    size_t pages = (s.size() + page_ - 1) / page_ + 1;
    len_ = pages * page_;
    base_ = static_cast<char*>(
        mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    mprotect(base_ + len_ - page_, page_, PROT_NONE);
    data_ = base_ + len_ - page_ - s.size();
    std::memcpy(data_, s.data(), s.size());
    size_ = s.size();
  }
  ~guarded_bytes() { munmap(base_, len_); }
  guarded_bytes(const guarded_bytes&) = delete;
  guarded_bytes& operator=(const guarded_bytes&) = delete;
  std::string_view view() const { return {data_, size_}; }

 private:
  size_t page_ = 0;
  size_t len_ = 0;
  char* base_ = nullptr;
  char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace rc::load::testing
