-- wrk script for the OmniRoute benchmark: POST one chat request over and over.
--
-- Environment:
--   BENCH_BODY_FILE  file with the JSON request body (required)
--   BENCH_API_KEY    sent as "Authorization: Bearer ..." when set
--
-- done() prints one line "BENCH_JSON {...}" with counts, errors and latency percentiles
-- (microseconds) for bench/run.py to parse.

local body_file = os.getenv("BENCH_BODY_FILE")
local f = assert(io.open(body_file, "rb"), "cannot open BENCH_BODY_FILE " .. tostring(body_file))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("BENCH_API_KEY")
if key ~= nil and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end

local function int(x)
  return string.format("%d", math.floor(tonumber(x) or 0))
end

function done(summary, latency, requests)
  local e = summary.errors
  local parts = {
    '"requests":' .. int(summary.requests),
    '"duration_us":' .. int(summary.duration),
    '"bytes":' .. int(summary.bytes),
    '"errors":{"connect":' .. int(e.connect) .. ',"read":' .. int(e.read) .. ',"write":' .. int(e.write)
      .. ',"status":' .. int(e.status) .. ',"timeout":' .. int(e.timeout) .. '}',
    '"latency_us":{"min":' .. int(latency.min) .. ',"max":' .. int(latency.max)
      .. ',"mean":' .. string.format("%.2f", latency.mean)
      .. ',"stdev":' .. string.format("%.2f", latency.stdev)
      .. ',"p50":' .. int(latency:percentile(50)) .. ',"p90":' .. int(latency:percentile(90))
      .. ',"p99":' .. int(latency:percentile(99)) .. ',"p999":' .. int(latency:percentile(99.9)) .. '}',
  }
  io.write("BENCH_JSON {" .. table.concat(parts, ",") .. "}\n")
end
