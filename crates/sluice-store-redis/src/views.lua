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

-- Every field is checked for its type before use: a script that failed
-- half-way would leave its earlier writes in place (Redis does not roll a
-- script back), so nothing here may raise an error on odd input.

-- A string field, or nil.
local function text(v)
  if type(v) == 'string' then
    return v
  end
  return nil
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
  if type(article.published_at) == 'number' then
    return string.format('%.0f', article.published_at)
  end
  return '0'
end

-- Sets a hash field, or deletes it when there is no value.
local function set_or_delete(key, field, value)
  if value then
    redis.call('HSET', key, field, value)
  else
    redis.call('HDEL', key, field)
  end
end

-- The article's tags that are strings.
local function tags(article)
  local out = {}
  if type(article.tags) == 'table' then
    for _, tag in ipairs(article.tags) do
      if type(tag) == 'string' then
        out[#out + 1] = tag
      end
    end
  end
  return out
end

-- Takes the article out of every view (its previous state `a`).
local function unindex_article(prefix, id, a)
  local v = prefix .. 'view:'
  local slug, author, status = text(a.slug), text(a.author_id), text(a.status)
  if slug then
    redis.call('SREM', v .. 'article:slug:' .. slug, id)
  end
  redis.call('ZREM', v .. 'articles:published', id)
  for _, tag in ipairs(tags(a)) do
    redis.call('ZREM', v .. 'articles:published:tag:' .. tag, id)
  end
  if author then
    redis.call('ZREM', v .. 'articles:published:author:' .. author, id)
    redis.call('SREM', v .. 'author:' .. author .. ':articles', id)
    if status then
      redis.call('HINCRBY', v .. 'author:' .. author .. ':counts', status, -1)
    end
  end
end

-- Puts the article (its new state `a`) into the views it belongs to.
local function index_article(prefix, id, key, a)
  local v = prefix .. 'view:'
  local slug, author, status = text(a.slug), text(a.author_id), text(a.status)
  if slug then
    redis.call('SADD', v .. 'article:slug:' .. slug, id)
  end
  if status == 'PUBLISHED' then
    local s = score(a)
    redis.call('ZADD', v .. 'articles:published', s, id)
    for _, tag in ipairs(tags(a)) do
      redis.call('ZADD', v .. 'articles:published:tag:' .. tag, s, id)
    end
    if author then
      redis.call('ZADD', v .. 'articles:published:author:' .. author, s, id)
    end
  end
  local name = false
  if author then
    redis.call('SADD', v .. 'author:' .. author .. ':articles', id)
    if status then
      redis.call('HINCRBY', v .. 'author:' .. author .. ':counts', status, 1)
    end
    name = redis.call('HGET', prefix .. 'author:' .. author, 'name')
  end
  set_or_delete(key, 'author_name', name)
end

-- Every article of the author shows its current name (nil: none).
local function fan_out_author(prefix, id, name)
  for _, article in ipairs(redis.call('SMEMBERS', prefix .. 'view:author:' .. id .. ':articles')) do
    local key = prefix .. 'article:' .. article
    if redis.call('HEXISTS', key, 'doc') == 1 then
      set_or_delete(key, 'author_name', name)
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
    if after then
      name = text(after.name)
    end
    set_or_delete(key, 'name', name)
    if (before and text(before.name)) ~= name then
      fan_out_author(prefix, id, name)
    end
  end
end
