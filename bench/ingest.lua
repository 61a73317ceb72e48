-- wrk script for bench/ingest.py: POST the demo decisions in rotation, each with a new decision_id.
-- Arguments (after --): the run tag (8 hex digits, the first group of every decision_id) and the bodies file (one
-- JSON body per line, with __DECISION_ID__ where the id goes). done() prints one JSON line starting "RESULT ".
-- decision_id = <tag>-<thread, 4 hex>-4000-8000-<counter, 12 hex>: unique per run, and findable by range in SQL.

local threads = {}
local next_tid = 1

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

local bodies = {}
local counter = 0
statuses = {}

function init(args)
  tag = args[1]
  for line in io.lines(args[2]) do
    table.insert(bodies, line)
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local body = bodies[(counter - 1) % #bodies + 1]
  local id = string.format("%s-%04x-4000-8000-%012x", tag, tid, counter)
  return wrk.format(nil, nil, nil, (string.gsub(body, "__DECISION_ID__", id, 1)))
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local parts = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for code, n in pairs(s) do
      parts[code] = (parts[code] or 0) + n
    end
  end
  local status_json = {}
  for code, n in pairs(parts) do
    table.insert(status_json, string.format('"%s": %d', code, n))
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"duration_us": %d, "requests": %d, "bytes": %d, "errors": {"connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d}, "statuses": {%s}, "latency_us": {"min": %d, "mean": %.1f, "stdev": %.1f, ' ..
    '"max": %d, "p50": %d, "p90": %d, "p99": %d, "p99.9": %d}}\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(status_json, ", "), latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
