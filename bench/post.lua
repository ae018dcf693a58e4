-- wrk script for bench/gateway.sh: POST one OpenAI chat completion per request.
--
-- Environment (read once per wrk thread):
--   BENCH_MODEL   the request's "model" (a chain name for the gateway; echoed by the simulator)
--   BENCH_STREAM  "1" to send "stream":true (SSE reply; wrk times the whole chunked body)
--   BENCH_PROMPT  the user message (plain ASCII, no quotes or backslashes)
--   BENCH_DELAY_MS  if set, each connection waits this long before each request (paced runs:
--                   about connections × 1000 / (delay + latency) req/s; wrk's 1 ms resolution)
--   BENCH_AUTH    the Authorization header (default "Bearer bench"; LiteLLM needs its master key)
--   BENCH_HEADER_NAME, BENCH_HEADER_VALUE  one more request header (Portkey's x-portkey-config)
--
-- At the end wrk calls done(), which prints one machine-readable line starting with
-- BENCH_RESULT; gateway.sh parses that instead of wrk's human-readable summary.

local model = os.getenv("BENCH_MODEL") or "bench"
local stream = os.getenv("BENCH_STREAM") == "1"
local prompt = os.getenv("BENCH_PROMPT") or "Say something short about fallback chains."

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH") or "Bearer bench"
local extra_name = os.getenv("BENCH_HEADER_NAME")
if extra_name and extra_name ~= "" then
  wrk.headers[extra_name] = os.getenv("BENCH_HEADER_VALUE") or ""
end
wrk.body = '{"model":"' .. model .. '",'
  .. (stream and '"stream":true,' or '')
  .. '"messages":[{"role":"user","content":"' .. prompt .. '"}]}'

local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if delay_ms then
  function delay()
    return delay_ms
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local rps = 0
  if secs > 0 then rps = summary.requests / secs end
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d rps=%.2f p50_us=%.1f p90_us=%.1f p99_us=%.1f"
      .. " mean_us=%.1f max_us=%.1f status_errors=%d connect_errors=%d read_errors=%d"
      .. " write_errors=%d timeout_errors=%d\n",
    summary.requests, summary.duration, rps,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
