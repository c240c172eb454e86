-- wrk script: signed Jira webhooks. wrk's Lua has no HMAC, so the bench writes a pool of
-- pre-signed bodies to BENCH_POOL (a Lua file returning {{body, signature}, ...}); each request
-- takes the next body and a delivery identifier unique to this run, thread and request.
local pool = dofile(os.getenv("BENCH_POOL"))
local tag = os.getenv("BENCH_TAG") or "bench"
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  n, ok, bad = 0, 0, 0
end

function request()
  n = n + 1
  local item = pool[(n % #pool) + 1]
  return wrk.format("POST", "/webhooks/jira", {
    ["Content-Type"] = "application/json",
    ["X-Hub-Signature"] = item[2],
    ["X-Atlassian-Webhook-Identifier"] = string.format("%s-%d-%d", tag, tid, n),
  }, item[1])
end

function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  local ok_all, bad_all = 0, 0
  for _, t in ipairs(threads) do
    ok_all = ok_all + t:get("ok")
    bad_all = bad_all + t:get("bad")
  end
  io.write(string.format(
    '\nBENCH {"requests": %d, "seconds": %.3f, "ok": %d, "bad": %d, "socket_errors": %d, "p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6, ok_all, bad_all,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
