// Query strings: the value of one parameter, percent-decoded ("+" is a space, as forms send it).
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace rc::server {

// The decoded value of the first `name=` in `query`; nullopt when absent or malformed (a bad %XX
// escape).
std::optional<std::string> query_value(std::string_view query, std::string_view name);

}  // namespace rc::server
