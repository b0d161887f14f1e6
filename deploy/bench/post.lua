-- wrk script of `make bench`: POSTs the bodies in BENCH_BODIES (one JSON document a line) in
-- turn, with the bearer token in BENCH_TOKEN (none when empty), counts the answers by status,
-- and prints one JSON line: counts, duration and 1,000 quantiles of the latency.
-- https://github.com/wg/wrk/blob/master/SCRIPTING

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  bodies = {}
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    if #line > 0 then table.insert(bodies, line) end
  end
  position = id * 7919 % #bodies -- each thread starts elsewhere in the list
  statuses = {}
  headers = { ["Content-Type"] = "application/json" }
  local token = os.getenv("BENCH_TOKEN") or ""
  if #token > 0 then headers["Authorization"] = "Bearer " .. token end
end

function request()
  position = position % #bodies + 1
  return wrk.format("POST", wrk.path, headers, bodies[position])
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      local key = tostring(status)
      counts[key] = (counts[key] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(counts) do
    table.insert(parts, string.format('"%s": %d', status, count))
  end
  local quantiles = {}
  for i = 1, 1000 do -- the middle of each 0.1% slice, in microseconds
    table.insert(quantiles, string.format("%d", latency:percentile((i - 0.5) / 10)))
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"duration_us": %d, "statuses": {%s}, "socket_errors": {"connect": %d,'
      .. ' "read": %d, "write": %d, "timeout": %d}, "quantiles_us": [%s]}\n',
    summary.duration, table.concat(parts, ", "), errors.connect, errors.read, errors.write,
    errors.timeout, table.concat(quantiles, ", ")
  ))
end
