-- backstop:v1 shared openings and holds. One atomic step: write the key, then tell the fleet.
-- KEYS[1]  backstop:v1:open:<provider> or backstop:v1:hold:<provider> (value: the replica)
-- ARGV[1]  "open" | "close" | "hold"   ARGV[2] replica   ARGV[3] period in ms
-- ARGV[4]  channel                      ARGV[5] message
-- An opening or close by another replica than the key's owner changes nothing (returns 0):
-- the owner's probe decides. A hold only ever grows.
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == 'open' then
  if cur and cur ~= ARGV[2] then return 0 end
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
elseif ARGV[1] == 'close' then
  if cur and cur ~= ARGV[2] then return 0 end
  redis.call('DEL', KEYS[1])
else
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  end
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
