-- Sets the marker and reads the positions of every topic, atomically.
-- KEYS[1]: the marker; KEYS[2..]: the positions hash of each topic.
redis.call('SET', KEYS[1], '1')
local out = {}
for k = 2, #KEYS do
  out[k - 1] = redis.call('HGETALL', KEYS[k])
end
return out
