-- wrk script for the ml-api benchmark: POST one JSON body, count non-2xx answers, and write the
-- summary as JSON. Inputs come from the environment, set by bench/load.py:
--   BENCH_BODY_FILE    file holding the request body
--   BENCH_RESULT_FILE  where done() writes the JSON summary
-- Latencies are in microseconds, as wrk measures them (send of the request to end of response).

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local body_file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.body = body_file:read("*a")
body_file:close()

local threads = {}
function setup(thread)
  thread:set("non2xx", 0)
  table.insert(threads, thread)
end

non2xx = 0
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
  end
  local e = summary.errors
  local out = assert(io.open(os.getenv("BENCH_RESULT_FILE"), "w"))
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status_4xx_5xx": %d, "non2xx": %d}, ' ..
    '"latency_us": {"min": %d, "mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}}',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.timeout, e.status, bad,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
  out:close()
end
