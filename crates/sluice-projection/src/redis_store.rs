//! A read model in Redis. Every key of a projection shares the hash tag
//! `{<projection>}`, so one Lua script can touch them all (also on a cluster)
//! and a blue/green rebuild is a new projection name.

use crate::{Position, ProjectionStore, Upsert};
use anyhow::Context;
use redis::Script;
use redis::aio::ConnectionManager;
use std::collections::HashMap;

/// Key names, shared with the query side.
pub mod keys {
    /// Hash with `version` and `doc` (the snapshot as JSON).
    pub fn document(projection: &str, aggregate_type: &str, id: &str) -> String {
        format!("sluice:{{{projection}}}:{aggregate_type}:{id}")
    }

    /// Set of the ids present in the read model.
    pub fn ids(projection: &str, aggregate_type: &str) -> String {
        format!("sluice:{{{projection}}}:{aggregate_type}:ids")
    }

    /// Present while the projection's data is in the store.
    pub fn marker(projection: &str) -> String {
        format!("sluice:{{{projection}}}:initialized")
    }

    /// Hash partition -> `next_offset:applied_at_ms` for one topic.
    pub fn positions(projection: &str, topic: &str) -> String {
        format!("sluice:{{{projection}}}:positions:{topic}")
    }
}

/// Applies upserts newer than the stored version, then records the positions,
/// all inside one script: Redis runs it atomically. Returns -1, writing
/// nothing, when the projection's marker is gone (the store lost its data).
const APPLY: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 0 then
  return -1
end
local n = tonumber(ARGV[1])
local prefix = ARGV[2]
local i = 3
local changed = 0
for _ = 1, n do
  local agg, id, version, doc = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  i = i + 4
  local key = prefix .. agg .. ':' .. id
  local current = redis.call('HGET', key, 'version')
  if (not current) or tonumber(current) < version then
    redis.call('HSET', key, 'version', version, 'doc', doc)
    redis.call('SADD', prefix .. agg .. ':ids', id)
    changed = changed + 1
  end
end
while i <= #ARGV do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
return changed
"#;

pub struct RedisStore {
    conn: ConnectionManager,
    projection: String,
    script: Script,
}

impl RedisStore {
    pub async fn connect(url: &str, projection: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("invalid Redis URL")?;
        let conn = ConnectionManager::new(client).await.context("connect to Redis")?;
        Ok(Self { conn, projection: projection.into(), script: Script::new(APPLY) })
    }

    fn prefix(&self) -> String {
        format!("sluice:{{{}}}:", self.projection)
    }
}

fn encode_position(p: &Position) -> String {
    format!("{}:{}", p.next_offset, p.applied_at_ms)
}

/// Parses `next_offset:applied_at_ms`.
pub fn decode_position(partition: i32, value: &str) -> Option<Position> {
    let (offset, at) = value.split_once(':')?;
    Some(Position { partition, next_offset: offset.parse().ok()?, applied_at_ms: at.parse().ok()? })
}

impl ProjectionStore for RedisStore {
    async fn load_positions(&self, topic: &str) -> anyhow::Result<HashMap<i32, Position>> {
        let mut conn = self.conn.clone();
        let raw: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(keys::positions(&self.projection, topic))
            .query_async(&mut conn)
            .await
            .context("read stored positions")?;
        let mut positions = HashMap::new();
        for (partition, value) in raw {
            let partition: i32 = partition.parse().with_context(|| format!("bad partition field {partition}"))?;
            let position = decode_position(partition, &value)
                .with_context(|| format!("bad stored position {value} for partition {partition}"))?;
            positions.insert(partition, position);
        }
        Ok(positions)
    }

    async fn mark_initialized(&self) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        let _: () = redis::cmd("SET").arg(keys::marker(&self.projection)).arg(1).query_async(&mut conn).await?;
        Ok(())
    }

    async fn apply(&self, topic: &str, upserts: &[Upsert], positions: &[Position]) -> anyhow::Result<Option<usize>> {
        let mut invocation = self.script.key(keys::positions(&self.projection, topic));
        invocation.key(keys::marker(&self.projection));
        invocation.arg(upserts.len()).arg(self.prefix());
        for u in upserts {
            invocation.arg(&u.aggregate_type).arg(&u.aggregate_id).arg(u.version).arg(u.document.to_string());
        }
        for p in positions {
            invocation.arg(p.partition).arg(encode_position(p));
        }
        let mut conn = self.conn.clone();
        let changed: i64 = invocation.invoke_async(&mut conn).await.context("apply batch to Redis")?;
        Ok(usize::try_from(changed).ok())
    }
}
