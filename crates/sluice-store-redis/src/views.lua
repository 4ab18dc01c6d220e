-- The CMS views, kept in the same atomic step as the documents (this file
-- is loaded before apply.lua, which calls on_change). Keys: see keys.rs.
--   view:article:slug:<slug>                   set of article ids
--   view:articles:published                    zset id -> published_at (µs)
--   view:articles:published:tag:<tag>          zset, same scores
--   view:articles:published:author:<author>    zset, same scores
--   view:author:<author>:articles              set of every article id
--   view:author:<author>:counts                hash status -> count
-- An article's hash holds `author_name` (its author's current name); an
-- author's hash holds `name`. Two topics arrive in any order: an article
-- whose author is not there yet has no `author_name` until the author comes.

local function present(v)
  return v ~= nil and v ~= cjson.null
end

local function decode(doc)
  if doc and doc ~= '' then
    local ok, value = pcall(cjson.decode, doc)
    if ok and type(value) == 'table' then
      return value
    end
  end
  return nil
end

-- A score as an exact string (a Lua number would be cut to 14 digits).
local function score(article)
  if present(article.published_at) then
    return string.format('%.0f', article.published_at)
  end
  return '0'
end

local function tags(article)
  if type(article.tags) == 'table' then
    return article.tags
  end
  return {}
end

-- Takes the article out of every view (its previous state `a`).
local function unindex_article(prefix, id, a)
  local v = prefix .. 'view:'
  if present(a.slug) then
    redis.call('SREM', v .. 'article:slug:' .. a.slug, id)
  end
  redis.call('ZREM', v .. 'articles:published', id)
  for _, tag in ipairs(tags(a)) do
    redis.call('ZREM', v .. 'articles:published:tag:' .. tag, id)
  end
  if present(a.author_id) then
    redis.call('ZREM', v .. 'articles:published:author:' .. a.author_id, id)
    redis.call('SREM', v .. 'author:' .. a.author_id .. ':articles', id)
    if present(a.status) then
      redis.call('HINCRBY', v .. 'author:' .. a.author_id .. ':counts', a.status, -1)
    end
  end
end

-- Puts the article (its new state `a`) into the views it belongs to.
local function index_article(prefix, id, key, a)
  local v = prefix .. 'view:'
  if present(a.slug) then
    redis.call('SADD', v .. 'article:slug:' .. a.slug, id)
  end
  if a.status == 'PUBLISHED' then
    local s = score(a)
    redis.call('ZADD', v .. 'articles:published', s, id)
    for _, tag in ipairs(tags(a)) do
      redis.call('ZADD', v .. 'articles:published:tag:' .. tag, s, id)
    end
    if present(a.author_id) then
      redis.call('ZADD', v .. 'articles:published:author:' .. a.author_id, s, id)
    end
  end
  local name = false
  if present(a.author_id) then
    redis.call('SADD', v .. 'author:' .. a.author_id .. ':articles', id)
    if present(a.status) then
      redis.call('HINCRBY', v .. 'author:' .. a.author_id .. ':counts', a.status, 1)
    end
    name = redis.call('HGET', prefix .. 'author:' .. a.author_id, 'name')
  end
  if name then
    redis.call('HSET', key, 'author_name', name)
  else
    redis.call('HDEL', key, 'author_name')
  end
end

-- Every article of the author shows its current name (nil: none).
local function fan_out_author(prefix, id, name)
  for _, article in ipairs(redis.call('SMEMBERS', prefix .. 'view:author:' .. id .. ':articles')) do
    local key = prefix .. 'article:' .. article
    if redis.call('HEXISTS', key, 'doc') == 1 then
      if name then
        redis.call('HSET', key, 'author_name', name)
      else
        redis.call('HDEL', key, 'author_name')
      end
    end
  end
end

-- Called by apply.lua once a change newer than the stored version was
-- written: `before` is the previous document (or nil), `after` the new one
-- (nil for an erasure).
local function on_change(prefix, agg, id, key, before, after)
  if agg == 'article' then
    if before then
      unindex_article(prefix, id, before)
    end
    if after then
      index_article(prefix, id, key, after)
    else
      redis.call('HDEL', key, 'author_name')
    end
  elseif agg == 'author' then
    local name = nil
    if after and present(after.name) then
      name = after.name
    end
    if name then
      redis.call('HSET', key, 'name', name)
    else
      redis.call('HDEL', key, 'name')
    end
    if (before and before.name) ~= name then
      fan_out_author(prefix, id, name)
    end
  end
end
