-- backstop:v1 key limits: two token buckets per client key (requests, tokens), refilled
-- continuously at limit/60 s up to the limit, on Redis's own clock (TIME), in one atomic
-- script: no read-then-write race between replicas. Mirrors state/bucket.rs.
-- KEYS[1]  the client's hash (fields r, t, ts)
-- ARGV[1]  requests per minute (0: none)   ARGV[2]  tokens per minute (0: none)
-- ARGV[3]  "admit" (take one request and ARGV[4] tokens) or "adjust" (give back ARGV[4]
--          tokens; negative charges more)
-- Returns {1, 0} admitted / adjusted, {0, wait_ms} refused.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local amount = tonumber(ARGV[4])
local h = redis.call('HMGET', KEYS[1], 'r', 't', 'ts')
local ts = tonumber(h[3]) or now
local elapsed = math.max(0, now - ts)
local function refill(level, limit)
  if limit <= 0 then return 0 end
  return math.min(limit, (tonumber(level) or limit) + elapsed * limit / 60000000)
end
local r = refill(h[1], rpm)
local t = refill(h[2], tpm)
local ok = 1
local wait = 0
if ARGV[3] == 'admit' then
  if rpm > 0 and r < 1 then
    wait = math.max(wait, (1 - r) * 60000000 / rpm)
  end
  local need = math.min(amount, tpm)
  if tpm > 0 and t < need then
    wait = math.max(wait, (need - t) * 60000000 / tpm)
  end
  if wait > 0 then
    ok = 0
  else
    if rpm > 0 then r = r - 1 end
    if tpm > 0 then t = t - amount end
  end
elseif tpm > 0 then
  t = math.min(tpm, t + amount)
end
redis.call('HSET', KEYS[1], 'r', tostring(r), 't', tostring(t), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], 120000)
return {ok, math.ceil(wait / 1000)}
