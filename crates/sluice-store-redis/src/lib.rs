//! A read model in Redis. Every key of a projection shares the hash tag
//! `{<projection>}`, so one Lua script can touch them all (also on a cluster)
//! and a blue/green rebuild is a new projection name (a generation, see
//! `generation.rs`) behind a serving pointer.

use anyhow::Context;
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sluice_store::{ApplyOutcome, Batch, Position, ProjectionStore};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::RwLock;
use std::time::{Duration, Instant};

pub mod generation;
pub mod keys;
pub mod reads;
pub mod rebuild;

/// The format of a projection's keys, held by its marker: `2` since the CMS
/// views. A projection whose marker says otherwise is refused at the start
/// of a session (bootstrap it again under a new name).
pub const KEY_FORMAT: &str = "2";

/// Sets the marker and reads the positions of every topic, atomically.
/// KEYS[1]: the marker; KEYS[2..]: the positions hash of each topic.
const START_SESSION: &str = include_str!("start_session.lua");

/// One batch, atomically: see `apply.lua` (the CMS views it maintains are in
/// `views.lua`, loaded first).
const APPLY: &str = concat!(include_str!("views.lua"), include_str!("apply.lua"));

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a session start waits on a generation a rebuild sealed for the
/// pointer to move on, before it gives up (and the session is retried).
const SEALED_WAIT: Duration = Duration::from_secs(30);
const SEALED_POLL: Duration = Duration::from_millis(100);

/// The read model of a projection alias, written to the generation that
/// serves it: resolved at the start of every session, so that a projector
/// follows a blue/green rebuild.
pub struct RedisStore {
    conn: ConnectionManager,
    alias: String,
    /// The generation the current session writes to.
    generation: RwLock<String>,
    start_session: Script,
    apply: Script,
}

impl RedisStore {
    /// The store of `alias`: the generation its serving pointer names, or
    /// the projection named `alias` when there is no pointer.
    pub async fn connect(url: &str, alias: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("invalid Redis URL")?;
        // The default response time-out (500 ms) is shorter than a big batch
        // may take on a busy server; a time-out there is harmless (the retry
        // meets the new positions and the session restarts) but costly.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let conn = ConnectionManager::new_with_config(client, config).await.context("connect to Redis")?;
        Ok(Self {
            conn,
            alias: alias.into(),
            generation: RwLock::new(alias.into()),
            start_session: Script::new(START_SESSION),
            apply: Script::new(APPLY),
        })
    }

    /// The generation the current session writes to.
    pub fn generation(&self) -> String {
        self.generation.read().map(|g| g.clone()).unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Starts a session on the generation serving the alias; waits while a
    /// rebuild holds it sealed, follows the pointer when it moves on.
    async fn start_on_serving(&self, topics: &[String]) -> anyhow::Result<(String, Vec<Vec<String>>)> {
        let mut conn = self.conn.clone();
        let since = Instant::now();
        loop {
            let generation = generation::serving(&mut conn, &self.alias).await?;
            let mut invocation = self.start_session.key(keys::marker(&generation));
            for topic in topics {
                invocation.key(keys::positions(&generation, topic));
            }
            invocation.arg(KEY_FORMAT).arg(generation::SEALED).arg(generation::DROPPED);
            let mut raw: Vec<Vec<String>> =
                invocation.invoke_async(&mut conn).await.context("start a session on Redis")?;
            let status = if raw.is_empty() { Vec::new() } else { raw.remove(0) };
            match status.first().map(String::as_str) {
                Some("ok") => return Ok((generation, raw)),
                Some("retired") if since.elapsed() < SEALED_WAIT => tokio::time::sleep(SEALED_POLL).await,
                Some("retired") => anyhow::bail!(
                    "generation {generation} of {} has been retired by a rebuild for {SEALED_WAIT:?} and the \
                     serving pointer still names it (did the rebuild stop half-way? run it again)",
                    self.alias
                ),
                _ => anyhow::bail!("unexpected answer from the session script: {status:?}"),
            }
        }
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

/// The positions `projection` stored for `topic`, by partition.
pub async fn stored_positions(
    redis: &mut impl redis::aio::ConnectionLike,
    projection: &str,
    topic: &str,
) -> anyhow::Result<HashMap<i32, Position>> {
    let flat: Vec<String> = redis::cmd("HGETALL")
        .arg(keys::positions(projection, topic))
        .query_async(redis)
        .await
        .context("read stored positions")?;
    decode_positions(&flat)
}

/// `HGETALL`'s flat field, value list of a positions hash.
fn decode_positions(flat: &[String]) -> anyhow::Result<HashMap<i32, Position>> {
    let mut positions = HashMap::new();
    for pair in flat.chunks(2) {
        let [partition, value] = pair else { anyhow::bail!("odd HGETALL answer") };
        let partition: i32 = partition.parse().with_context(|| format!("bad partition field {partition}"))?;
        let position = decode_position(partition, value)
            .with_context(|| format!("bad stored position {value} for partition {partition}"))?;
        positions.insert(partition, position);
    }
    Ok(positions)
}

impl ProjectionStore for RedisStore {
    async fn start_session(&self, topics: &[String]) -> anyhow::Result<BTreeMap<String, HashMap<i32, Position>>> {
        let (generation, raw) = self.start_on_serving(topics).await?;
        if let Ok(mut current) = self.generation.write() {
            *current = generation;
        }
        anyhow::ensure!(raw.len() == topics.len(), "start_session answered {} topics for {}", raw.len(), topics.len());
        topics.iter().zip(raw).map(|(topic, flat)| Ok((topic.clone(), decode_positions(&flat)?))).collect()
    }

    async fn apply(&self, batch: &Batch) -> anyhow::Result<ApplyOutcome> {
        self.apply_to(&self.generation(), batch).await
    }
}

impl RedisStore {
    /// Applies `batch` to the generation that serves the alias now, through
    /// the projector's own script: what an on-demand update uses (a batch
    /// with changes only, which moves no position). `Retired` when a rebuild
    /// retired that generation meanwhile: resolve again.
    pub async fn apply_to_serving(&self, batch: &Batch) -> anyhow::Result<ApplyOutcome> {
        let generation = generation::serving(&mut self.conn.clone(), &self.alias).await?;
        self.apply_to(&generation, batch).await
    }

    async fn apply_to(&self, generation: &str, batch: &Batch) -> anyhow::Result<ApplyOutcome> {
        // Each topic's positions hash is KEYS[1 + its index].
        let topics: Vec<&String> = batch
            .expected
            .keys()
            .chain(batch.positions.keys())
            .chain(batch.changes.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let index = |topic: &String| topics.binary_search(&topic).map_or(0, |i| i + 1);
        let mut invocation = self.apply.key(keys::marker(generation));
        for topic in &topics {
            invocation.key(keys::positions(generation, topic));
        }
        let expected: usize = batch.expected.values().map(BTreeMap::len).sum();
        let changes: usize = batch.changes.values().map(Vec::len).sum();
        invocation.arg(format!("sluice:{{{generation}}}:")).arg(expected).arg(changes);
        for (topic, partitions) in &batch.expected {
            for (partition, next) in partitions {
                invocation.arg(index(topic)).arg(partition).arg(next.map(|n| n.to_string()).unwrap_or_default());
            }
        }
        for (topic, changes) in &batch.changes {
            for c in changes {
                invocation.arg(index(topic)).arg(&c.aggregate_type).arg(&c.aggregate_id).arg(c.version);
                invocation.arg(c.document.as_ref().map(|d| d.to_string()).unwrap_or_default());
            }
        }
        for (topic, positions) in &batch.positions {
            for p in positions {
                invocation.arg(index(topic)).arg(p.partition).arg(encode_position(p));
            }
        }
        let mut conn = self.conn.clone();
        let answer: Vec<String> = invocation.invoke_async(&mut conn).await.context("apply batch to Redis")?;
        match answer.as_slice() {
            [status, changed @ ..] if status == "applied" && changed.len() == topics.len() => {
                let counts = changed.iter().map(|c| c.parse::<usize>().context("changed count"));
                let changed = topics.iter().map(|t| (*t).clone()).zip(counts).map(|(t, c)| Ok((t, c?)));
                Ok(ApplyOutcome::Applied { changed: changed.collect::<anyhow::Result<_>>()? })
            }
            [status, t, partition, stored] if status == "mismatch" => {
                let topic = t
                    .parse::<usize>()
                    .ok()
                    .and_then(|t| topics.get(t.checked_sub(1)?))
                    .map(|t| (*t).clone())
                    .context("topic index")?;
                let partition: i32 = partition.parse().context("partition")?;
                let expected = batch.expected.get(&topic).and_then(|p| p.get(&partition)).copied().flatten();
                let stored = if stored.is_empty() { None } else { Some(stored.parse().context("stored offset")?) };
                Ok(ApplyOutcome::PositionMismatch { topic, partition, expected, stored })
            }
            [status] if status == "lost" => Ok(ApplyOutcome::StoreLost),
            [status] if status == "retired" => Ok(ApplyOutcome::Retired),
            other => anyhow::bail!("unexpected answer from the apply script: {other:?}"),
        }
    }
}
