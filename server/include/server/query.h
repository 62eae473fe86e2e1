// Query strings: the value of one parameter, percent-decoded ("+" is a space, as forms send it);
// path segments; the syntax of resumption ids (?since=, last_event_id).
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "proto/http1_parser.h"

namespace rc::server {

// The decoded value of the first `name=` in `query`; nullopt when absent or malformed (a bad %XX
// escape).
std::optional<std::string> query_value(std::string_view query, std::string_view name);

// A path segment, percent-decoded ("+" stays "+"); nullopt for a bad %XX escape.
std::optional<std::string> path_segment_decode(std::string_view segment);

// Whether `v` is a topic or broker event id a client may resume after: "<seq>" or
// "<epoch>-<seq>", the epoch 1 to 64 letters and digits, the seq decimal digits that fit in 64
// bits. Anything else ("abc", "-1", "99999999999999999999") is a 400.
bool event_id_syntax_ok(std::string_view v);

// The value of every x-ringcast-timeout-ms field must be a positive decimal number of
// milliseconds that fits in 64 bits: nullopt when it is (or the field is absent), else the
// offending value ("abc", "-5", "0", or "" for an empty field).
std::optional<std::string_view> bad_timeout_header(const http1::request& req);

}  // namespace rc::server
