// report_timeline: the JSON report's "histograms" (every whole-window latency histogram with
// samples, as its non-empty buckets) and "timeline" (timeline.h, interval by interval). The
// format is documented in docs/budgets.md ("ringcast-load's JSON"); bench/budget reads it.
//
// Thread-safety: main thread, after the client threads have returned.
#pragma once

#include "load/results.h"
#include "load/timeline.h"
#include "proto/json_writer.h"

namespace rc::load {

void write_histograms(json::writer& w, const shard_results& merged);
void write_timeline(json::writer& w, const timeline& t);

}  // namespace rc::load
