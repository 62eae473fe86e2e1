// Pieces of the Prometheus text exposition format shared by the metrics renderers (metrics.cc,
// upstream_metrics.cc, worker_metrics.cc): a family's HELP and TYPE lines, an escaped label
// value, and a sample's value and line end.
//
// Thread-safety: stateless; each call appends to the caller's buffer.
#pragma once

#include <charconv>
#include <string_view>

#include "base/byte_buffer.h"

namespace rc::server::prom {

// "# HELP <name> <help>\n# TYPE <name> <type>\n".
inline void family(byte_buffer& out, std::string_view name, std::string_view type,
                   std::string_view help) {
  out.append("# HELP ");
  out.append(name);
  out.push_back(' ');
  out.append(help);
  out.append("\n# TYPE ");
  out.append(name);
  out.push_back(' ');
  out.append(type);
  out.push_back('\n');
}

// A label value (between the quotes) with what the format requires escaped: \ " and line feed.
inline void label_value(byte_buffer& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out.append("\\n");
      continue;
    }
    out.push_back(c);
  }
}

// A sample's value (shortest round-trip form) and the end of its line.
inline void value(byte_buffer& out, double v) {
  char num[32];
  auto [end, ec] = std::to_chars(num, num + sizeof num, v);
  out.append(num, static_cast<size_t>(end - num));
  out.push_back('\n');
}

}  // namespace rc::server::prom
