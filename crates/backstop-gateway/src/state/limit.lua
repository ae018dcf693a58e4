-- backstop:v1 key limits: two leaky buckets per client key (requests, tokens): what was used,
-- draining at limit/60 s, on Redis's own clock (TIME), in one atomic script, so replicas
-- never race a read against a write. Holding the use (not what is left) lets a reload change
-- a limit at once. Mirrors state/bucket.rs.
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
local elapsed = math.max(0, now - (tonumber(h[3]) or now))
local function drain(used, limit)
  if limit <= 0 then return 0 end
  return math.max(0, (tonumber(used) or 0) - elapsed * limit / 60000000)
end
local r = drain(h[1], rpm)
local t = drain(h[2], tpm)
local ok = 1
local wait = 0
if ARGV[3] == 'admit' then
  if rpm > 0 and r + 1 > rpm then
    wait = math.max(wait, (r + 1 - rpm) * 60000000 / rpm)
  end
  if tpm > 0 and t + math.min(amount, tpm) > tpm then
    wait = math.max(wait, (t + math.min(amount, tpm) - tpm) * 60000000 / tpm)
  end
  if wait > 0 then
    ok = 0
  else
    r = r + 1
    t = t + amount
  end
else
  t = math.max(0, t - amount)
end
redis.call('HSET', KEYS[1], 'r', tostring(r), 't', tostring(t), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], 3600000)
return {ok, math.ceil(wait / 1000)}
