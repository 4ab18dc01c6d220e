//! The catch-up log behind `GET /changes`.
//!
//! Each row is ordered by `(order_txid, seq)`. `order_txid` is the writing
//! transaction's id, raised to the `order_txid` of the same aggregate's
//! previous change when that one is larger. Transaction ids are assigned at a
//! transaction's first write, not at its commit: a command that wrote
//! something (its idempotency key) before it locked its aggregate can hold a
//! smaller id than the command that wrote the aggregate's previous version.
//! The raise keeps every aggregate's versions ascending; commands lock their
//! aggregate before appending, so the previous change is committed and
//! visible when the next one is written.
//!
//! What holds:
//! - within one aggregate, versions ascend;
//! - a transaction that took its id after another committed comes after it
//!   (the other's `order_txid` is an id assigned before that commit);
//! - changes of transactions that overlapped come out in either order:
//!   this is not commit order;
//! - a page holds only rows with `order_txid` below the snapshot's xmin. A
//!   transaction still running, or not yet started, writes rows with
//!   `order_txid >= its own id >= that xmin`, so no row ever appears behind a
//!   cursor that was handed out: a late commit is never skipped.

use deadpool_postgres::GenericClient;
use serde::Serialize;

/// Position after a change: its `order_txid` and its sequence.
/// Rendered as `<order_txid>.<seq>`; clients treat it as opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cursor {
    pub order_txid: i64,
    pub seq: i64,
}

impl Cursor {
    /// `<order_txid>.<seq>`, each 1-18 digits (what the API document says).
    pub fn parse(s: &str) -> Option<Self> {
        let (order_txid, seq) = s.split_once('.')?;
        let number = |t: &str| (1..=18).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit());
        if !number(order_txid) || !number(seq) {
            return None;
        }
        Some(Self { order_txid: order_txid.parse().ok()?, seq: seq.parse().ok()? })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.order_txid, self.seq)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Change {
    pub cursor: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub version: i64,
    pub event_type: String,
    pub snapshot: serde_json::Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Appends a change inside the command's transaction, which must hold the
/// aggregate's row lock (or have created the aggregate).
pub async fn append<C: GenericClient>(
    tx: &C,
    aggregate_type: &str,
    aggregate_id: &str,
    version: i64,
    event_type: &str,
    snapshot: &serde_json::Value,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        &tx.prepare_cached(
            "insert into changes (aggregate_type, aggregate_id, version, event_type, snapshot, order_txid)
         values ($1, $2, $3, $4, $5, greatest(pg_current_xact_id(),
             (select order_txid from changes where aggregate_type = $1 and aggregate_id = $2
              order by version desc limit 1)))",
        )
        .await?,
        &[&aggregate_type, &aggregate_id, &version, &event_type, snapshot],
    )
    .await?;
    Ok(())
}

/// Changes after `after` in `(order_txid, seq)` order, only below the current
/// snapshot's xmin (see the module documentation).
pub async fn page<C: GenericClient>(
    client: &C,
    after: Cursor,
    limit: i64,
) -> Result<Vec<Change>, tokio_postgres::Error> {
    let rows = client
        .query(
            &client.prepare_cached("select order_txid::text::bigint as order_txid, seq, aggregate_type, aggregate_id, version, event_type,
                    snapshot, created_at
             from changes
             where order_txid < pg_snapshot_xmin(pg_current_snapshot())
               and (order_txid > $1::text::xid8 or (order_txid = $1::text::xid8 and seq > $2))
             order by order_txid, seq
             limit $3").await?,
            &[&after.order_txid.to_string(), &after.seq, &limit],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let cursor = Cursor { order_txid: r.try_get("order_txid")?, seq: r.try_get("seq")? };
            Ok(Change {
                cursor: cursor.to_string(),
                aggregate_type: r.try_get("aggregate_type")?,
                aggregate_id: r.try_get("aggregate_id")?,
                version: r.try_get("version")?,
                event_type: r.try_get("event_type")?,
                snapshot: r.try_get("snapshot")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor { order_txid: 742, seq: 9 };
        assert_eq!(Cursor::parse(&c.to_string()), Some(c));
        assert_eq!(Cursor::parse("742"), None);
        assert_eq!(Cursor::parse("-1.2"), None);
        assert_eq!(Cursor::parse("a.b"), None);
        assert_eq!(Cursor::parse("+1.2"), None);
    }
}
