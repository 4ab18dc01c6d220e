//! Generations and the serving pointer: what a blue/green rebuild changes
//! and what readers and projectors follow.
//!
//! A projection *alias* (e.g. `cms`, what services are configured with) is
//! served by one generation, a projection with keys of its own: the one the
//! pointer [`keys::serving`] names, or the projection named `alias` itself
//! when there is no pointer. A rebuild builds the next generation
//! ([`successor`]) beside it, then (`rebuild.rs`):
//! 1. [`seal`]s the serving one: its marker becomes `sealed`, no batch is
//!    written to it any more, readers still read it;
//! 2. waits until the successor's positions reach the sealed ones (so no
//!    reader goes back in time), then points the alias at the successor
//!    ([`swap`]);
//! 3. [`drop_generation`]: the marker becomes `dropped`, then every other key
//!    of the old generation is deleted.
//!
//! A reader reads the pointer, then the marker and the data of that
//! generation in one `MULTI`: a live or sealed marker means the data read is
//! whole; `dropped` means the pointer moved meanwhile, so it reads again
//! ([`read_document`]). A projector writing to a sealed or dropped
//! generation is refused (`ApplyOutcome::Retired`) and starts a new session
//! on the generation the pointer names.

use crate::keys;
use anyhow::Context;
use redis::aio::ConnectionLike;
use sluice_store::Position;
use std::time::Duration;

/// Marker of a generation a rebuild is retiring: readable, not writable.
pub const SEALED: &str = "sealed";
/// Marker of a dropped generation (its other keys are gone or going).
pub const DROPPED: &str = "dropped";
/// How long the marker of a dropped generation stays, so that a projector
/// that resolved the pointer before the swap cannot start it again.
const DROPPED_MARKER_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Keys deleted per `UNLINK` while dropping a generation.
const DROP_CHUNK: usize = 1_000;

/// The generation serving `alias`.
pub async fn serving(conn: &mut impl ConnectionLike, alias: &str) -> anyhow::Result<String> {
    let pointer: Option<String> =
        redis::cmd("GET").arg(keys::serving(alias)).query_async(conn).await.context("read the serving pointer")?;
    Ok(pointer.unwrap_or_else(|| alias.to_string()))
}

/// The generation a rebuild of `alias` builds after `current`:
/// `<alias>.g2`, `<alias>.g3`, ...
pub fn successor(alias: &str, current: &str) -> String {
    let n = current
        .strip_prefix(alias)
        .and_then(|rest| rest.strip_prefix(".g"))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(1);
    format!("{alias}.g{}", n + 1)
}

/// The marker of `generation` (None: nothing there).
pub async fn marker(conn: &mut impl ConnectionLike, generation: &str) -> anyhow::Result<Option<String>> {
    redis::cmd("GET").arg(keys::marker(generation)).query_async(conn).await.context("read a generation's marker")
}

/// Stops every write to `generation` (readers go on reading it); the
/// marker it had is kept for [`unseal`].
pub async fn seal(conn: &mut impl ConnectionLike, generation: &str) -> anyhow::Result<()> {
    let script = redis::Script::new(
        "local m = redis.call('GET', KEYS[1])
         if m == ARGV[2] then return redis.error_reply('the generation was dropped') end
         if m ~= ARGV[1] then redis.call('SET', KEYS[2], m or '') end
         redis.call('SET', KEYS[1], ARGV[1]) return 1",
    );
    let _: i64 = script
        .key(keys::marker(generation))
        .key(keys::sealed_from(generation))
        .arg(SEALED)
        .arg(DROPPED)
        .invoke_async(conn)
        .await
        .with_context(|| format!("seal generation {generation}"))?;
    Ok(())
}

/// Undoes [`seal`] (a rebuild that gave up before the swap): the marker is
/// what it was before.
pub async fn unseal(conn: &mut impl ConnectionLike, generation: &str) -> anyhow::Result<()> {
    let script = redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then
           local before = redis.call('GET', KEYS[2])
           if before and before ~= '' then redis.call('SET', KEYS[1], before) else redis.call('DEL', KEYS[1]) end
         end
         redis.call('DEL', KEYS[2]) return 1",
    );
    let _: i64 = script
        .key(keys::marker(generation))
        .key(keys::sealed_from(generation))
        .arg(SEALED)
        .invoke_async(conn)
        .await
        .with_context(|| format!("unseal generation {generation}"))?;
    Ok(())
}

/// Points `alias` at `generation`.
pub async fn swap(conn: &mut impl ConnectionLike, alias: &str, generation: &str) -> anyhow::Result<()> {
    let _: () = redis::cmd("SET")
        .arg(keys::serving(alias))
        .arg(generation)
        .query_async(conn)
        .await
        .context("move the serving pointer")?;
    Ok(())
}

/// Marks `generation` dropped, then deletes its other keys; how many.
pub async fn drop_generation(conn: &mut impl ConnectionLike, generation: &str) -> anyhow::Result<u64> {
    let marker = keys::marker(generation);
    let _: () = redis::cmd("SET")
        .arg(&marker)
        .arg(DROPPED)
        .arg("EX")
        .arg(DROPPED_MARKER_TTL.as_secs())
        .query_async(conn)
        .await
        .context("mark the old generation dropped")?;
    let (mut cursor, mut deleted) = (0u64, 0u64);
    loop {
        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(keys::pattern(generation))
            .arg("COUNT")
            .arg(DROP_CHUNK)
            .query_async(conn)
            .await
            .context("list the old generation's keys")?;
        let doomed: Vec<&String> = found.iter().filter(|k| **k != marker).collect();
        if !doomed.is_empty() {
            let n: u64 = redis::cmd("UNLINK").arg(&doomed).query_async(conn).await.context("delete old keys")?;
            deleted += n;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

/// A document as [`read_document`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// The serving generation holds it: its snapshot (JSON) and version,
    /// and for an article, its author's current name when known.
    Found { doc: String, version: i64, author_name: Option<String> },
    /// The serving generation does not hold it.
    Missing,
    /// The serving generation holds its erasure, at this version.
    Erased { version: i64 },
    /// The serving generation holds nothing: never built, or the store lost
    /// it and it is being built again.
    NotBuilt,
}

/// How often a reader follows a pointer that moved while it read.
const READ_ATTEMPTS: usize = 5;

/// What [`read_document`] read, in one step: the document and, when asked
/// for, the position the generation applied on the document's partition.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub read: Read,
    /// The generation's stored position on the partition asked for.
    pub applied: Option<Position>,
}

/// `aggregate_type` `id` from the generation serving `alias`, read whole:
/// never from a generation that is being dropped. With `at` (a topic and
/// partition), also the position stored for it, read in the same `MULTI`,
/// so that the lag computed from it is the lag of the document read.
pub async fn read_document(
    conn: &mut impl ConnectionLike,
    alias: &str,
    aggregate_type: &str,
    id: &str,
    at: Option<(&str, i32)>,
) -> anyhow::Result<Snapshot> {
    for _ in 0..READ_ATTEMPTS {
        let generation = serving(conn, alias).await?;
        if let Some(snapshot) = read_in(conn, &generation, aggregate_type, id, at).await? {
            return Ok(snapshot);
        }
    }
    anyhow::bail!("the serving pointer of {alias} kept moving while reading")
}

/// [`read_document`] from `generation`, a serving pointer read earlier
/// (readers may cache it): `None` when that generation was dropped since
/// (read the pointer again). Sealed generations are read: a rebuild's
/// successor is at least as far as they are when the pointer moves.
pub async fn read_in(
    conn: &mut impl ConnectionLike,
    generation: &str,
    aggregate_type: &str,
    id: &str,
    at: Option<(&str, i32)>,
) -> anyhow::Result<Option<Snapshot>> {
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("GET")
        .arg(keys::marker(generation))
        .cmd("HMGET")
        .arg(keys::document(generation, aggregate_type, id))
        .arg("doc")
        .arg("version")
        .arg("author_name");
    let position_key = at.map(|(topic, partition)| (keys::positions(generation, topic), partition));
    match &position_key {
        Some((key, partition)) => pipe.cmd("HGET").arg(key).arg(partition),
        None => pipe.cmd("ECHO").arg(""),
    };
    type Fields = (Option<String>, Option<i64>, Option<String>);
    let (marker, (doc, version, author_name), position): (Option<String>, Fields, Option<String>) =
        pipe.query_async(conn).await.context("read the document")?;
    let applied = match (&position_key, position.as_deref()) {
        (Some((_, partition)), Some(value)) if !value.is_empty() => {
            Some(crate::decode_position(*partition, value).context("bad stored position")?)
        }
        _ => None,
    };
    let read = match (marker.as_deref(), doc, version) {
        (Some(DROPPED), ..) => return Ok(None),
        (None, ..) => Read::NotBuilt,
        (Some(_), Some(doc), Some(version)) => Read::Found { doc, version, author_name },
        (Some(_), None, Some(version)) => Read::Erased { version },
        (Some(_), ..) => Read::Missing,
    };
    Ok(Some(Snapshot { read, applied }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successors_count_up_from_the_alias() {
        assert_eq!(successor("cms", "cms"), "cms.g2");
        assert_eq!(successor("cms", "cms.g2"), "cms.g3");
        assert_eq!(successor("cms", "cms.g41"), "cms.g42");
        assert_eq!(successor("cms", "other"), "cms.g2");
    }

    #[test]
    fn the_scan_pattern_matches_one_projection_only() {
        assert_eq!(keys::pattern("cms"), "sluice:{cms}:*");
        assert_eq!(keys::pattern("a*b?[c]"), "sluice:{a\\*b\\?\\[c\\]}:*");
    }
}
