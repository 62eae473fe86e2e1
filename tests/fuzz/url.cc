// Fuzz target: url::parse. Whatever parses must print (to_string) as a URL that parses to the
// same endpoint, and a refusal must come with a reason.
#include <cstdlib>
#include <string>

#include "proto/url.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string error;
  auto e = rc::url::parse(text, error);
  if (!e) {
    if (error.empty()) std::abort();
    return 0;
  }
  if (!error.empty() || e->host.empty() || e->port == 0) std::abort();
  if (!e->base_path.empty() && (e->base_path.front() != '/' || e->base_path.back() == '/'))
    std::abort();
  std::string printed = rc::url::to_string(*e);
  auto again = rc::url::parse(printed, error);
  if (!again || again->kind != e->kind || again->host != e->host || again->port != e->port ||
      again->base_path != e->base_path || again->host_is_literal != e->host_is_literal)
    std::abort();
  if (rc::url::to_string(*again) != printed) std::abort();
  return 0;
}
