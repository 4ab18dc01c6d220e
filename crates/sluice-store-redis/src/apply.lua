-- One batch, atomically (Redis runs a script without interleaving): checks
-- the marker and every expected position, then applies the changes newer
-- than the stored version (keeping the CMS views of views.lua in step) and
-- the new positions. Writes nothing unless all checks pass.
-- KEYS[1]: the marker; KEYS[1 + t]: the positions hash of topic t.
-- ARGV: key prefix, #expected, #changes, then per expected position
-- (t, partition, next offset or '' for none), per change (t, aggregate type,
-- id, version, document or '' for an erasure), then (t, partition, position)
-- to the end. Answers 'applied' and the changes of each topic that were
-- newer than the store's, 'mismatch' with where, 'lost', or 'retired' (a
-- rebuild sealed or dropped this generation: see generation.rs).
local marker = redis.call('GET', KEYS[1])
if not marker then
  return {'lost'}
end
if marker == 'sealed' or marker == 'dropped' then
  return {'retired'}
end
local prefix, expected, changes = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local i = 4
for _ = 1, expected do
  local t, partition, want = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  i = i + 3
  local stored = redis.call('HGET', KEYS[1 + tonumber(t)], partition)
  local have = ''
  if stored then
    have = string.match(stored, '^[^:]*')
  end
  if have ~= want then
    return {'mismatch', t, partition, have}
  end
end
local changed = {}
for k = 2, #KEYS do
  changed[k - 1] = 0
end
for _ = 1, changes do
  local t, agg, id, version, doc = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  i = i + 5
  local key = prefix .. agg .. ':' .. id
  local current = redis.call('HGET', key, 'version')
  if (not current) or tonumber(current) < tonumber(version) then
    local before = decode(redis.call('HGET', key, 'doc'))
    if doc == '' then
      -- Erased: only the version stays, so that no older record returns.
      redis.call('HDEL', key, 'doc')
      redis.call('HSET', key, 'version', version, 'erased', '1')
      redis.call('SREM', prefix .. agg .. ':ids', id)
      on_change(prefix, agg, id, key, before, nil)
    else
      redis.call('HSET', key, 'version', version, 'doc', doc)
      redis.call('HDEL', key, 'erased')
      redis.call('SADD', prefix .. agg .. ':ids', id)
      on_change(prefix, agg, id, key, before, decode(doc))
    end
    changed[t] = changed[t] + 1
  end
end
while i <= #ARGV do
  redis.call('HSET', KEYS[1 + tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2])
  i = i + 3
end
local answer = {'applied'}
for t = 1, #changed do
  answer[t + 1] = tostring(changed[t])
end
return answer
