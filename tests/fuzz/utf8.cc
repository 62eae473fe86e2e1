// Fuzz target: utf8::valid. Both implementations must agree with each other and with simdjson's
// validator on every input.
#include <simdjson.h>

#include <cstdlib>

#include "proto/utf8.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* p = reinterpret_cast<const char*>(data);
  bool want = simdjson::validate_utf8(p, size);
  if (rc::utf8::valid(p, size) != want) std::abort();
  if (rc::utf8::detail::valid_scalar(p, size) != want) std::abort();
#if defined(__SSSE3__)
  if (rc::utf8::detail::valid_ssse3(p, size) != want) std::abort();
#endif
  return 0;
}
