//! The catch-up log behind `GET /changes`.

use serde::Serialize;
use tokio_postgres::GenericClient;

/// Position after a change: the writing transaction's id and the row's sequence.
/// Rendered as `<txid>.<seq>`; clients treat it as opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cursor {
    pub txid: i64,
    pub seq: i64,
}

impl Cursor {
    pub fn parse(s: &str) -> Option<Self> {
        let (txid, seq) = s.split_once('.')?;
        Some(Self { txid: txid.parse().ok().filter(|t| *t >= 0)?, seq: seq.parse().ok().filter(|q| *q >= 0)? })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.txid, self.seq)
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

pub async fn append<C: GenericClient>(
    tx: &C,
    aggregate_type: &str,
    aggregate_id: &str,
    version: i64,
    event_type: &str,
    snapshot: &serde_json::Value,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "insert into changes (aggregate_type, aggregate_id, version, event_type, snapshot) values ($1, $2, $3, $4, $5)",
        &[&aggregate_type, &aggregate_id, &version, &event_type, snapshot],
    )
    .await?;
    Ok(())
}

/// Changes after `after`, oldest first, only from transactions below the
/// current snapshot's xmin: every transaction there has ended, so no row can
/// later appear before the returned cursor.
pub async fn page<C: GenericClient>(
    client: &C,
    after: Cursor,
    limit: i64,
) -> Result<Vec<Change>, tokio_postgres::Error> {
    let rows = client
        .query(
            "select txid::text::bigint as txid, seq, aggregate_type, aggregate_id, version, event_type, snapshot, created_at
             from changes
             where txid < pg_snapshot_xmin(pg_current_snapshot())
               and (txid > $1::text::xid8 or (txid = $1::text::xid8 and seq > $2))
             order by txid, seq
             limit $3",
            &[&after.txid.to_string(), &after.seq, &limit],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let cursor = Cursor { txid: r.try_get("txid")?, seq: r.try_get("seq")? };
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
        let c = Cursor { txid: 742, seq: 9 };
        assert_eq!(Cursor::parse(&c.to_string()), Some(c));
        assert_eq!(Cursor::parse("742"), None);
        assert_eq!(Cursor::parse("-1.2"), None);
        assert_eq!(Cursor::parse("a.b"), None);
    }
}
