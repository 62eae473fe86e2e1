#include "openai_validate.h"

#include <cmath>
#include <string>

#include "proto/json_writer.h"

namespace rc::openai::detail {

// ---- paths and wording ----

void path::render(std::string& out) const {
  if (parent_) parent_->render(out);
  if (index_ >= 0) {
    out += '[';
    out += std::to_string(index_);
    out += ']';
    return;
  }
  if (!out.empty()) out += '.';
  out.append(key_);
}

std::string path::str() const {
  std::string s;
  render(s);
  return s;
}

std::string_view kind_name(const value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::boolean:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "an integer";
    case json::kind::number:
      return "a decimal";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "a value";
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

namespace {

std::string quoted(const path& p) {
  std::string s(1, '\'');
  s += p.str();
  s += '\'';
  return s;
}

// How a number the client sent is quoted back: integers as integers, decimals like Python.
std::string number_text(const value& v) {
  switch (v.kind()) {
    case json::kind::int64:
      return std::to_string(v.get_int64());
    case json::kind::uint64:
      return std::to_string(v.get_uint64());
    default:
      break;
  }
  char buf[json::number_chars_max];
  return std::string(buf, json::format_double(v.get_double(), buf));
}

std::string decimal_text(double d) {
  char buf[json::number_chars_max];
  size_t n = json::format_double(d, buf);
  // Bounds are written like integers ("<= 2"), as OpenAI does.
  if (n > 2 && buf[n - 2] == '.' && buf[n - 1] == '0') n -= 2;
  return std::string(buf, n);
}

api_error bound_error(const path& p, std::string_view what, std::string_view relation,
                      const std::string& bound, const std::string& got, std::string code) {
  std::string m = "Invalid " + quoted(p) + ": ";
  m.append(what);
  m += ". Expected a value ";
  m.append(relation);
  m += ' ';
  m += bound;
  m += ", but got ";
  m += got;
  m += " instead.";
  return invalid_request(std::move(m), p.str(), std::move(code));
}

}  // namespace

api_error missing(const path& p) {
  return invalid_request("Missing required parameter: " + quoted(p) + ".", p.str(),
                         "missing_required_parameter");
}

api_error wrong_type(const path& p, std::string_view expected, const value& got) {
  std::string m = "Invalid type for " + quoted(p) + ": expected ";
  m.append(expected);
  m += ", but got ";
  m.append(kind_name(got));
  m += " instead.";
  return invalid_request(std::move(m), p.str(), "invalid_type");
}

api_error invalid_value(const path& p, std::string_view got,
                        std::initializer_list<std::string_view> supported) {
  std::string m = "Invalid value: '";
  m.append(got);
  m += "'. Supported values are: ";
  size_t i = 0;
  for (std::string_view s : supported) {
    if (i > 0) m += supported.size() == 2 ? " " : ", ";
    if (i > 0 && i + 1 == supported.size()) m += "and ";
    m += '\'';
    m.append(s);
    m += '\'';
    ++i;
  }
  m += '.';
  return invalid_request(std::move(m), p.str(), "invalid_value");
}

api_error empty_array(const path& p) {
  return invalid_request("Invalid " + quoted(p) +
                             ": empty array. Expected an array with minimum length 1, but got an "
                             "empty array instead.",
                         p.str(), "empty_array");
}

api_error array_too_long(const path& p, size_t max, size_t got) {
  return invalid_request("Invalid " + quoted(p) +
                             ": array too long. Expected an array with maximum length " +
                             std::to_string(max) + ", but got an array with length " +
                             std::to_string(got) + " instead.",
                         p.str(), "array_above_max_length");
}

api_error string_too_long(const path& p, size_t max, size_t got) {
  return invalid_request("Invalid " + quoted(p) +
                             ": string too long. Expected a string with maximum length " +
                             std::to_string(max) + ", but got a string with length " +
                             std::to_string(got) + " instead.",
                         p.str(), "string_above_max_length");
}

api_error empty_string(const path& p) {
  return invalid_request("Invalid " + quoted(p) +
                             ": empty string. Expected a string with minimum length 1, but got an "
                             "empty string instead.",
                         p.str(), "empty_string");
}

api_error too_many_properties(const path& p, size_t max, size_t got) {
  return invalid_request("Invalid " + quoted(p) +
                             ": too many properties. Expected an object with at most " +
                             std::to_string(max) + " properties, but got an object with " +
                             std::to_string(got) + " properties instead.",
                         p.str(), "object_above_max_properties");
}

api_error pattern_mismatch(const path& p, std::string_view pattern) {
  std::string m = "Invalid " + quoted(p) +
                  ": string does not match pattern. Expected a string that matches the pattern '";
  m.append(pattern);
  m += "'.";
  return invalid_request(std::move(m), p.str(), "invalid_value");
}

api_error integer_above_max(const path& p, int64_t max, int64_t got) {
  return bound_error(p, "integer above maximum value", "<=", std::to_string(max),
                     std::to_string(got), "integer_above_max_value");
}

// ---- readers ----

maybe_error read_string_view(const value& v, const path& p, std::string_view& out) {
  if (!v.is_string()) return wrong_type(p, "a string", v);
  out = v.get_string();
  return std::nullopt;
}

maybe_error read_string(const value& v, const path& p, std::string& out) {
  std::string_view s;
  if (auto e = read_string_view(v, p, s)) return e;
  out.assign(s);
  return std::nullopt;
}

maybe_error read_bool(const value& v, const path& p, bool& out) {
  if (v.kind() != json::kind::boolean) return wrong_type(p, "a boolean", v);
  out = v.get_bool();
  return std::nullopt;
}

maybe_error read_int(const value& v, const path& p, int64_t min, int64_t max, int64_t& out) {
  switch (v.kind()) {
    case json::kind::int64:
      out = v.get_int64();
      break;
    case json::kind::uint64:
      return bound_error(p, "integer above maximum value", "<=", std::to_string(max),
                         number_text(v), "integer_above_max_value");
    case json::kind::number: {
      double d = v.get_double();
      // 2^63 is exactly representable; anything at or beyond it does not fit int64.
      if (d != std::floor(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0) {
        return wrong_type(p, "an integer", v);
      }
      out = static_cast<int64_t>(d);
      break;
    }
    default:
      return wrong_type(p, "an integer", v);
  }
  if (out < min) {
    return bound_error(p, "integer below minimum value", ">=", std::to_string(min), number_text(v),
                       "integer_below_min_value");
  }
  if (out > max) {
    return bound_error(p, "integer above maximum value", "<=", std::to_string(max), number_text(v),
                       "integer_above_max_value");
  }
  return std::nullopt;
}

maybe_error read_number(const value& v, const path& p, double min, double max, double& out) {
  if (!v.is_number()) return wrong_type(p, "a decimal", v);
  out = v.get_double();
  if (out < min) {
    return bound_error(p, "decimal below minimum value", ">=", decimal_text(min), number_text(v),
                       "decimal_below_min_value");
  }
  if (out > max) {
    return bound_error(p, "decimal above maximum value", "<=", decimal_text(max), number_text(v),
                       "decimal_above_max_value");
  }
  return std::nullopt;
}

maybe_error read_enum(const value& v, const path& p,
                      std::initializer_list<std::string_view> supported, size_t& index) {
  std::string_view s;
  if (auto e = read_string_view(v, p, s)) return e;
  index = 0;
  for (std::string_view candidate : supported) {
    if (candidate == s) return std::nullopt;
    ++index;
  }
  return invalid_value(p, s, supported);
}

maybe_error expect_object(const value& v, const path& p) {
  if (!v.is_object()) return wrong_type(p, "an object", v);
  return std::nullopt;
}

maybe_error expect_array(const value& v, const path& p) {
  if (!v.is_array()) return wrong_type(p, "an array", v);
  return std::nullopt;
}

// ---- shared groups ----

maybe_error read_metadata(const value& v, const path& p, metadata_pairs& out) {
  constexpr size_t pairs_max = 16, key_chars_max = 64, value_chars_max = 512;
  if (auto e = expect_object(v, p)) return e;
  if (size_t n = v.size(); n > pairs_max) return too_many_properties(p, pairs_max, n);
  out.clear();
  for (json::member m : v.members()) {
    path mp = p.key(m.key);
    if (size_t n = utf8_length(m.key); n > key_chars_max) {
      return string_too_long(mp, key_chars_max, n);
    }
    std::string_view s;
    if (auto e = read_string_view(m.value, mp, s)) return e;
    if (size_t n = utf8_length(s); n > value_chars_max) {
      return string_too_long(mp, value_chars_max, n);
    }
    // Duplicate keys: the last one wins, as everywhere else.
    bool replaced = false;
    for (auto& [k, val] : out) {
      if (k == m.key) {
        val.assign(s);
        replaced = true;
      }
    }
    if (!replaced) out.emplace_back(std::string(m.key), std::string(s));
  }
  return std::nullopt;
}

maybe_error read_function_name(const value& v, const path& p, std::string& out) {
  constexpr size_t name_chars_max = 64;
  std::string_view s;
  if (auto e = read_string_view(v, p, s)) return e;
  if (s.empty()) return empty_string(p);
  if (s.size() > name_chars_max) return string_too_long(p, name_chars_max, utf8_length(s));
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return pattern_mismatch(p, "^[a-zA-Z0-9_-]+$");
  }
  out.assign(s);
  return std::nullopt;
}

}  // namespace rc::openai::detail
