-- Sets the marker and reads the positions of every topic, atomically.
-- KEYS[1]: the marker; KEYS[2..]: the positions hash of each topic.
-- ARGV[1]: the format of the projection's keys (KEY_FORMAT in lib.rs, '2'
-- since the CMS views), which the marker holds; ARGV[2], ARGV[3]: the
-- markers of a generation a rebuild retires (sealed, dropped).
-- Answers {{'ok'}, positions of each topic...}, or {{'retired', marker}}
-- for a retired generation, which must not be written (nor made again).
-- A projection built in an older format has documents but no views, and
-- updating them would unindex what was never indexed: it is refused, to be
-- bootstrapped again under a new name.
local format = ARGV[1]
local marker = redis.call('GET', KEYS[1])
if marker == ARGV[2] or marker == ARGV[3] then
  return {{'retired', marker}}
end
if marker and marker ~= format then
  return redis.error_reply('projection built in key format ' .. marker .. ', this projector writes format ' ..
    format .. ' (with the CMS views): bootstrap it again under a new name (sluice projection bootstrap) and switch to it')
end
redis.call('SET', KEYS[1], format)
local out = {{'ok'}}
for k = 2, #KEYS do
  out[k] = redis.call('HGETALL', KEYS[k])
end
return out
