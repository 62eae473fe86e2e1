// report_streams: the chat and broker modes' part of the report (stream_measures), as text and
// as a JSON object. Called by report.cc; nothing else is mode-specific there beyond a few
// settings.
//
// Thread-safety: main thread, after the client threads have returned.
#pragma once

#include <string>

#include "load/report.h"
#include "proto/json_writer.h"

namespace rc::load {

struct stream_figures {
  double window_s = 0;
  // Server RSS growth from before connecting to the end of the window (while every stream is
  // still active, the loops being closed) per active stream; < 0: not measured.
  double server_bytes_per_stream = -1;
};

bool has_stream_measures(const report_input& in);
// Streams active at once in the chat modes (connections x streams per connection).
uint64_t active_streams(const load_options& o);
std::string format_duration_ns(double ns);
void print_stream_measures(const report_input& in, const stream_measures& m,
                           const stream_figures& f);
void write_stream_measures(json::writer& w, const report_input& in, const stream_measures& m,
                           const stream_figures& f);

}  // namespace rc::load
