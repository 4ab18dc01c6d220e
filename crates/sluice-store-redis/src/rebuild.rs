//! The steps of a blue/green rebuild that change what serves (see
//! `generation.rs` for what readers and projectors follow): one rebuild per
//! alias at a time ([`Lease`]), the hand-over to the successor once it
//! caught up ([`hand_over`]), and the old generation's removal ([`retire`]),
//! which a rebuild interrupted after its swap finishes at its next run
//! ([`finish_interrupted`]).

use crate::generation::{self, drop_generation, seal, swap, unseal};
use crate::keys;
use anyhow::Context;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// How long [`hand_over`] waits for the successor to catch up.
pub const CATCH_UP_LIMIT: Duration = Duration::from_secs(120);
const CATCH_UP_POLL: Duration = Duration::from_millis(50);
/// A lease outlives its rebuild by at most this long.
const LEASE_TTL: Duration = Duration::from_secs(30);
const LEASE_RENEW: Duration = Duration::from_secs(10);

/// The right to rebuild an alias, renewed while held; another rebuild of
/// the same alias is refused meanwhile.
pub struct Lease {
    key: String,
    token: String,
    renewal: tokio::task::JoinHandle<()>,
    conn: MultiplexedConnection,
}

impl Lease {
    pub async fn acquire(conn: &MultiplexedConnection, alias: &str) -> anyhow::Result<Self> {
        let key = keys::rebuild_lease(alias);
        let token = format!("{}-{}", std::process::id(), now_ms());
        let mut c = conn.clone();
        let got: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(LEASE_TTL.as_millis() as u64)
            .query_async(&mut c)
            .await
            .context("take the rebuild lease")?;
        anyhow::ensure!(
            got.is_some(),
            "another rebuild of {alias} is running (lease {key}); a lease ends {LEASE_TTL:?} after its rebuild stops"
        );
        let renewal = {
            let (mut c, key, token) = (conn.clone(), key.clone(), token.clone());
            tokio::spawn(async move {
                let renew = redis::Script::new(
                    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0",
                );
                loop {
                    tokio::time::sleep(LEASE_RENEW).await;
                    let renewed: Result<i64, _> =
                        renew.key(&key).arg(&token).arg(LEASE_TTL.as_millis() as u64).invoke_async(&mut c).await;
                    if let Err(e) = renewed {
                        tracing::warn!(error = %e, "cannot renew the rebuild lease");
                    }
                }
            })
        };
        Ok(Self { key, token, renewal, conn: conn.clone() })
    }

    pub async fn release(mut self) -> anyhow::Result<()> {
        self.renewal.abort();
        let release = redis::Script::new(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
        );
        let _: i64 = release.key(&self.key).arg(&self.token).invoke_async(&mut self.conn).await?;
        Ok(())
    }
}

/// Finishes the removal of a generation an interrupted rebuild swapped out
/// (or forgets one it had not swapped out yet); the one removed and how many
/// keys, if any.
pub async fn finish_interrupted(
    conn: &mut (impl ConnectionLike + Send),
    alias: &str,
) -> anyhow::Result<Option<(String, u64)>> {
    let retiring: Option<String> = redis::cmd("GET").arg(keys::retiring(alias)).query_async(conn).await?;
    let Some(retiring) = retiring else { return Ok(None) };
    if retiring == generation::serving(conn, alias).await? {
        let _: () = redis::cmd("DEL").arg(keys::retiring(alias)).query_async(conn).await?;
        return Ok(None);
    }
    let deleted = retire(conn, alias, &retiring).await?;
    Ok(Some((retiring, deleted)))
}

/// What [`hand_over`] did.
#[derive(Debug)]
pub struct HandedOver {
    /// How long the old generation was sealed before the swap.
    pub sealed_for: Duration,
}

/// Seals `current`, waits until `next` holds a position at least as far as
/// `current`'s on every partition (while `writer_alive` says its projector
/// runs), then points `alias` at `next`. `topics` are the topics `next` is
/// built from: `current` must hold positions of no other. `floors` are the
/// partitions' first offsets still in the log: a partition `next` holds no
/// position for has reached its floor (nothing below it can be read).
/// Before the swap, a failure unseals `current`; after it, [`retire`]
/// `current`.
pub async fn hand_over(
    conn: &mut (impl ConnectionLike + Send),
    alias: &str,
    current: &str,
    next: &str,
    topics: &[String],
    floors: &HashMap<(String, i32), i64>,
    writer_alive: impl Fn() -> bool,
) -> anyhow::Result<HandedOver> {
    let held = stored_topics(conn, current).await?;
    let missing: Vec<&String> = held.iter().filter(|t| !topics.contains(t)).collect();
    anyhow::ensure!(
        missing.is_empty(),
        "{current} holds positions of {missing:?}, which this rebuild does not read: give it the same aggregates \
         as the projector service"
    );
    seal(conn, current).await?;
    let sealed = Instant::now();
    let caught_up = async {
        loop {
            anyhow::ensure!(writer_alive(), "the next generation's projector stopped; nothing was swapped");
            let Some(behind) = behind(conn, current, next, &held, floors).await? else { return Ok(()) };
            anyhow::ensure!(
                sealed.elapsed() < CATCH_UP_LIMIT,
                "{next} did not reach {current} within {CATCH_UP_LIMIT:?} ({behind}); nothing was swapped"
            );
            tokio::time::sleep(CATCH_UP_POLL).await;
        }
    }
    .await;
    if let Err(e) = caught_up {
        unseal(conn, current).await?;
        return Err(e);
    }
    let _: () = redis::cmd("SET").arg(keys::retiring(alias)).arg(current).query_async(conn).await?;
    swap(conn, alias, next).await?;
    Ok(HandedOver { sealed_for: sealed.elapsed() })
}

/// Drops `old`, a generation swapped out of `alias`; how many keys.
pub async fn retire(conn: &mut (impl ConnectionLike + Send), alias: &str, old: &str) -> anyhow::Result<u64> {
    let deleted = drop_generation(conn, old).await?;
    let _: () = redis::cmd("DEL").arg(keys::retiring(alias)).query_async(conn).await?;
    Ok(deleted)
}

/// The topics `generation` holds positions of.
async fn stored_topics(conn: &mut impl ConnectionLike, generation: &str) -> anyhow::Result<BTreeSet<String>> {
    let prefix = keys::positions(generation, "");
    let (mut cursor, mut topics) = (0u64, BTreeSet::new());
    loop {
        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{}positions:*", keys::pattern(generation).trim_end_matches('*')))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .context("list the serving generation's positions")?;
        topics.extend(found.iter().filter_map(|k| k.strip_prefix(&prefix)).map(String::from));
        if next == 0 {
            return Ok(topics);
        }
        cursor = next;
    }
}

/// Where `next` is behind `current`, if anywhere.
async fn behind(
    conn: &mut impl ConnectionLike,
    current: &str,
    next: &str,
    topics: &BTreeSet<String>,
    floors: &HashMap<(String, i32), i64>,
) -> anyhow::Result<Option<String>> {
    for topic in topics {
        let target = crate::stored_positions(conn, current, topic).await?;
        let reached = crate::stored_positions(conn, next, topic).await?;
        for (partition, p) in target {
            let floor = floors.get(&(topic.clone(), partition)).copied();
            let at = reached.get(&partition).map(|r| r.next_offset).or(floor);
            if at.is_none_or(|at| at < p.next_offset) {
                return Ok(Some(format!("{topic}/{partition} at {at:?}, {current} at {}", p.next_offset)));
            }
        }
    }
    Ok(None)
}

fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}
