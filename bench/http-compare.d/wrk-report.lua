-- wrk script for bench/http-compare: optional pipelining, and results in machine-readable lines.
--
-- Usage: wrk ... -s wrk-report.lua URL -- DEPTH
-- DEPTH 1 (default) leaves wrk's own static request path untouched. DEPTH > 1 sends DEPTH
-- requests in every write (one pre-concatenated batch) and waits for all DEPTH responses
-- before the next write. wrk counts every response in its request totals but records ONE
-- latency sample per batch (from the write to the last response), so latency percentiles
-- are per batch, not per request.
--
-- done() runs in wrk's main Lua state, where init() never ran. It prints the totals and wrk's
-- own CPU time as JSON (WRK_JSON) and the latency histogram as "value_us:count" pairs (WRK_HIST), which wrk has
-- already "corrected" for coordinated omission; bench/wrk_latency.py undoes that, see there.

local HIST_CPU_S = 5

function init(args)
  local depth = tonumber(args[1]) or 1
  if depth > 1 then
    local batch = {}
    for i = 1, depth do
      batch[i] = wrk.format()
    end
    local bytes = table.concat(batch)
    request = function()
      return bytes
    end
  end
end

function done(summary, latency, requests)
  -- wrk's CPU time (all threads) at the end of the load, before the histogram dump below.
  local cpu_s = os.clock()
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"cpu_s":%.3f,"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,' ..
    '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},' ..
    '"wrk_latency_us":{"mean":%.1f,"p50":%.0f,"p90":%.0f,"p99":%.0f,"p999":%.0f,"max":%.0f}}\n',
    cpu_s, summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
  -- latency(i) walks the histogram from its minimum on every call, so the dump costs about
  -- (values x their distance from the minimum) steps: cheap for a dense histogram, slow when
  -- a long tail stretches it. Give up after HIST_CPU_S seconds rather than stall the harness.
  local budget = os.clock() + HIST_CPU_S
  local cells = {}
  for i = 1, #latency do
    if i % 256 == 0 and os.clock() > budget then
      io.write("WRK_HIST_SKIPPED\n")
      return
    end
    local v, c = latency(i)
    cells[i] = string.format("%.0f:%.0f", v, c)
  end
  io.write("WRK_HIST ", table.concat(cells, " "), "\n")
end
