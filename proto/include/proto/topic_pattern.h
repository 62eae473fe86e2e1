// Topic patterns: which topics an API key or a subscription token may use (docs/api.md,
// "Authentication"). Topic names are 1 to 128 of `A-Z a-z 0-9 _ - . :`; a pattern reads a name
// as segments separated by '.', NATS-style:
//
//   news.sports   that topic only
//   news.*        '*' stands for exactly one segment: news.sports, not news nor news.sports.eu
//   news.>        '>' (last segment only) stands for one or more: news.sports, news.sports.eu
//   >             every topic
//
// '*' and '>' are whole segments ("news*" is invalid, not a prefix match); matching is exact
// and case-sensitive.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace rc::topic_pattern {

inline constexpr size_t pattern_bytes_max = 128;

// Why `pattern` is not a valid pattern, or empty when it is.
std::string_view check(std::string_view pattern);

// Whether `topic` matches `pattern`. REQUIRES: check(pattern) is empty.
bool matches(std::string_view pattern, std::string_view topic);

// Whether any of `patterns` matches `topic`.
bool any_matches(const std::vector<std::string>& patterns, std::string_view topic);

}  // namespace rc::topic_pattern
