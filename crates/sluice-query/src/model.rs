//! The read models the query API serves from: Redis first, the PostgreSQL
//! read model when Redis does not answer (and for search). Both hold the
//! same CMS views, written by projectors from the same topics.

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sluice_store::{ApplyOutcome, Batch, Change, Position, ProjectionStore};
use sluice_store_postgres::PostgresStore;
use sluice_store_postgres::reads::PgReads;
use sluice_store_redis::RedisStore;
use sluice_store_redis::generation::{self, Read};
use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// One aggregate as a read model holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// Its snapshot (JSON) and version; `None` when the read model does not
    /// hold it.
    pub found: Option<(serde_json::Value, i64)>,
    /// An article's author name (a string, when known); an author's
    /// article counts by status.
    pub extra: Option<serde_json::Value>,
    /// The read model's position on the aggregate's partition.
    pub applied: Option<Position>,
    /// The version it was erased at, when the read model holds its erasure.
    pub erased: Option<i64>,
}

impl Held {
    /// The version the read model holds it at, erased or not.
    pub fn version(&self) -> Option<i64> {
        self.found.as_ref().map(|(_, v)| *v).or(self.erased)
    }
}

/// Which store answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Redis,
    Postgres,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Redis => "redis",
            Source::Postgres => "postgres",
        }
    }
}

pub struct RedisModel {
    pub conn: ConnectionManager,
    pub alias: String,
    pub store: RedisStore,
    /// Until when (ms since the epoch) reads skip Redis after it failed, so
    /// that a Redis that is down costs one failed call a second, not one per
    /// read.
    resting_until_ms: AtomicI64,
    /// The generation the serving pointer named, and when it was read.
    serving: RwLock<Option<(String, Instant)>>,
}

/// How long a read of the serving pointer is used before it is read again.
/// A swap is seen at the latest this much later (until then the sealed
/// generation answers, which its successor had caught up with); a dropped
/// generation is seen at once.
const POINTER_TTL: Duration = Duration::from_secs(1);

/// How long reads skip Redis after it failed.
const REST: Duration = Duration::from_secs(1);

impl RedisModel {
    /// Fails fast when Redis is down (one reconnection attempt, short time-outs):
    /// reads then go to the PostgreSQL read model.
    pub async fn connect(url: &str, alias: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("invalid Redis URL")?;
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let conn = ConnectionManager::new_with_config(client, config).await.context("connect to Redis")?;
        let store = RedisStore::connect(url, alias).await?;
        Ok(Self { conn, alias: alias.into(), store, resting_until_ms: AtomicI64::new(0), serving: RwLock::new(None) })
    }

    /// The generation serving the alias: cached for [`POINTER_TTL`], read
    /// again when `fresh`.
    async fn generation(&self, fresh: bool) -> anyhow::Result<String> {
        if !fresh
            && let Ok(cached) = self.serving.read()
            && let Some((g, at)) = cached.as_ref()
            && at.elapsed() < POINTER_TTL
        {
            return Ok(g.clone());
        }
        let g = generation::serving(&mut self.conn.clone(), &self.alias).await?;
        if let Ok(mut cached) = self.serving.write() {
            *cached = Some((g.clone(), Instant::now()));
        }
        Ok(g)
    }

    /// Whether reads should skip Redis now.
    pub fn resting(&self) -> bool {
        crate::lag::now_ms() < self.resting_until_ms.load(Ordering::Relaxed)
    }

    /// Redis failed: skip it for a while.
    pub fn failed(&self, error: &anyhow::Error) {
        if !self.resting() {
            tracing::warn!(error = %format!("{error:#}"), "Redis read model unavailable; reading PostgreSQL");
        }
        let until = crate::lag::now_ms() + i64::try_from(REST.as_millis()).unwrap_or(1_000);
        self.resting_until_ms.store(until, Ordering::Relaxed);
    }
}

pub struct PgModel {
    pub reads: PgReads,
    pub store: PostgresStore,
}

/// Why a read model could not answer.
#[derive(Debug)]
pub enum Unavailable {
    /// It holds nothing yet (never built, or being built again).
    NotBuilt,
    Down(anyhow::Error),
}

pub struct Models {
    pub redis: Option<RedisModel>,
    pub postgres: Option<PgModel>,
}

impl Models {
    /// `aggregate_type` `id` and the position of its partition, from Redis,
    /// or from PostgreSQL when Redis cannot answer (`only` from that one,
    /// when given).
    pub async fn held(
        &self,
        aggregate_type: &str,
        id: &str,
        topic: &str,
        partition: Option<i32>,
        only: Option<Source>,
    ) -> Result<(Held, Source), Unavailable> {
        let mut last = Unavailable::NotBuilt;
        let wanted = |s: Source| only.is_none_or(|o| o == s);
        if let Some(redis) = self.redis.as_ref().filter(|r| !r.resting() && wanted(Source::Redis)) {
            match redis_held(redis, aggregate_type, id, topic, partition).await {
                Ok(held) => return Ok((held, Source::Redis)),
                Err(e) => {
                    redis.failed(&e);
                    last = Unavailable::Down(e);
                }
            }
        }
        if let Some(pg) = self.postgres.as_ref().filter(|_| wanted(Source::Postgres)) {
            match pg.reads.entity(aggregate_type, id, topic, partition.unwrap_or(0)).await {
                Ok(e) if !e.built => last = Unavailable::NotBuilt,
                Ok(e) => {
                    let found = e.doc.zip(e.version);
                    let applied = partition.and(e.applied);
                    return Ok((Held { found, extra: e.extra, applied, erased: e.erased }, Source::Postgres));
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "PostgreSQL read model unavailable");
                    last = Unavailable::Down(e);
                }
            }
        }
        Err(last)
    }

    /// The positions of `topic` the lag cache measures from: per partition,
    /// the least advanced of the read models that answer and hold the topic
    /// (a time measured from there is never too low for either).
    pub async fn least_positions(&self, topic: &str) -> HashMap<i32, Position> {
        let mut all = Vec::new();
        if let Some(redis) = self.redis.as_ref().filter(|r| !r.resting()) {
            let mut conn = redis.conn.clone();
            let read = async {
                let g = generation::serving(&mut conn, &redis.alias).await?;
                sluice_store_redis::stored_positions(&mut conn, &g, topic).await
            };
            all.extend(read.await.ok().filter(|p| !p.is_empty()));
        }
        if let Some(pg) = &self.postgres {
            all.extend(pg.reads.positions(topic).await.ok().filter(|p| !p.is_empty()));
        }
        let Some(first) = all.first() else { return HashMap::new() };
        first
            .keys()
            .filter_map(|partition| {
                let least =
                    all.iter().map(|positions| positions.get(partition)).min_by_key(|p| p.map(|p| p.next_offset))?;
                least.map(|p| (*partition, *p))
            })
            .collect()
    }

    /// The ids of the articles whose slug is `slug`, from the first read
    /// model that answers.
    pub async fn article_ids_by_slug(&self, slug: &str) -> anyhow::Result<Vec<String>> {
        let mut last = anyhow::anyhow!("no read model configured");
        if let Some(redis) = self.redis.as_ref().filter(|r| !r.resting()) {
            let mut conn = redis.conn.clone();
            match sluice_store_redis::reads::article_ids_by_slug(&mut conn, &redis.alias, slug).await {
                Ok(ids) => return Ok(ids),
                Err(e) => {
                    redis.failed(&e);
                    last = e;
                }
            }
        }
        if let Some(pg) = &self.postgres {
            match pg.reads.article_ids_by_slug(slug).await {
                Ok(ids) => return Ok(ids),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The stored positions of `topic` in the first read model that answers
    /// (`only` that one, when given).
    pub async fn positions(&self, topic: &str, only: Option<Source>) -> anyhow::Result<HashMap<i32, Position>> {
        let mut last = anyhow::anyhow!("no read model configured");
        let wanted = |s: Source| only.is_none_or(|o| o == s);
        if let Some(redis) = self.redis.as_ref().filter(|r| !r.resting() && wanted(Source::Redis)) {
            let mut conn = redis.conn.clone();
            let read = async {
                let g = generation::serving(&mut conn, &redis.alias).await?;
                sluice_store_redis::stored_positions(&mut conn, &g, topic).await
            };
            match read.await {
                Ok(p) => return Ok(p),
                Err(e) => {
                    redis.failed(&e);
                    last = e;
                }
            }
        }
        if let Some(pg) = self.postgres.as_ref().filter(|_| wanted(Source::Postgres)) {
            match pg.reads.positions(topic).await {
                Ok(p) => return Ok(p),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// What `into` holds of each of `ids`: version and snapshot, in order.
    pub async fn stored(
        &self,
        into: Source,
        aggregate_type: &str,
        ids: &[String],
    ) -> anyhow::Result<Vec<(Option<i64>, Option<serde_json::Value>)>> {
        match (into, &self.redis, &self.postgres) {
            (Source::Redis, Some(redis), _) => {
                let mut conn = redis.conn.clone();
                let stored = sluice_store_redis::reads::stored(&mut conn, &redis.alias, aggregate_type, ids).await?;
                Ok(stored.into_iter().map(|s| (s.version, crate::reconcile::parse_doc(s.doc.as_deref()))).collect())
            }
            (Source::Postgres, _, Some(pg)) => {
                let mut stored = pg.reads.stored(aggregate_type, ids).await?;
                Ok(ids.iter().map(|id| stored.remove(id).map_or((None, None), |(v, doc)| (Some(v), doc))).collect())
            }
            _ => anyhow::bail!("no {} read model configured", into.name()),
        }
    }

    /// Applies `change` through the projectors' own version-guarded upsert
    /// (a batch with no positions: it never moves a projection's position)
    /// to `into`. Whether it changed anything (false: the read model held
    /// that version or a newer one).
    pub async fn apply(&self, into: Source, topic: &str, change: Change) -> anyhow::Result<bool> {
        let batch = Batch { changes: BTreeMap::from([(topic.to_string(), vec![change])]), ..Batch::default() };
        let outcome = match (into, &self.redis, &self.postgres) {
            (Source::Redis, Some(redis), _) => redis_apply(&redis.store, &batch).await?,
            (Source::Postgres, _, Some(pg)) => pg.store.apply(&batch).await?,
            _ => anyhow::bail!("no {} read model configured", into.name()),
        };
        match outcome {
            ApplyOutcome::Applied { changed } => Ok(changed.values().sum::<usize>() > 0),
            other => anyhow::bail!("the read model refused the update: {other:?}"),
        }
    }
}

/// A rebuild may retire the serving generation between the pointer read and
/// the write: read the pointer again.
async fn redis_apply(store: &RedisStore, batch: &Batch) -> anyhow::Result<ApplyOutcome> {
    let mut outcome = store.apply_to_serving(batch).await?;
    for _ in 0..20 {
        if outcome != ApplyOutcome::Retired {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        outcome = store.apply_to_serving(batch).await?;
    }
    Ok(outcome)
}

async fn redis_held(
    redis: &RedisModel,
    aggregate_type: &str,
    id: &str,
    topic: &str,
    partition: Option<i32>,
) -> anyhow::Result<Held> {
    let mut conn = redis.conn.clone();
    let at = partition.map(|p| (topic, p));
    // The cached pointer; read again when its generation is gone or empty.
    let mut snapshot = None;
    for fresh in [false, true, true] {
        let g = redis.generation(fresh).await?;
        match generation::read_in(&mut conn, &g, aggregate_type, id, at).await? {
            Some(s) if s.read == Read::NotBuilt && !fresh => {}
            Some(s) => {
                snapshot = Some(s);
                break;
            }
            None => {}
        }
    }
    let snapshot = snapshot.ok_or_else(|| anyhow::anyhow!("the serving pointer of {} kept moving", redis.alias))?;
    let mut erased = None;
    let (found, mut extra) = match snapshot.read {
        Read::NotBuilt => anyhow::bail!("the Redis read model is not built"),
        Read::Missing => (None, None),
        Read::Erased { version } => {
            erased = Some(version);
            (None, None)
        }
        Read::Found { doc, version, author_name } => {
            let doc = serde_json::from_str(&doc).map_err(|e| anyhow::anyhow!("a stored document is not JSON: {e}"))?;
            (Some((doc, version)), author_name.map(serde_json::Value::String))
        }
    };
    if aggregate_type == "author" && found.is_some() {
        let counts = sluice_store_redis::reads::author_counts(&mut conn, &redis.alias, id).await?;
        extra = Some(serde_json::to_value(counts)?);
    }
    Ok(Held { found, extra, applied: snapshot.applied, erased })
}
