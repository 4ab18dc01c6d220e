//! Publishing outbox rows read with SQL (the initial snapshot and replays),
//! per aggregate in version order.

use crate::OutboxRow;
use crate::ack::TxnAck;
use crate::publisher::{Publisher, Source};
use anyhow::Context;
use futures::{StreamExt, pin_mut};
use sluice_outbox::OutboxTable;
use std::collections::BTreeSet;
use tokio_postgres::GenericClient;
use tokio_postgres::types::ToSql;

/// What a scan published.
#[derive(Default)]
pub(crate) struct Scanned {
    pub rows: u64,
    /// Ids of the transactions that wrote the rows (for housekeeping).
    pub xids: BTreeSet<i64>,
}

/// Where scanned rows go: the publisher, one acknowledgement tracker for all
/// of them, and the tally.
pub(crate) struct Sink<'a> {
    pub publisher: &'a mut Publisher,
    pub ack: &'a std::sync::Arc<TxnAck>,
    pub scanned: &'a mut Scanned,
}

/// Publishes the rows of `table` matching `filter` (SQL over its columns,
/// with `params`), streaming them so memory stays flat; `source` names where
/// they come from in the `sluice.source_lsn` header.
pub(crate) async fn publish_rows<C: GenericClient>(
    client: &C,
    table: &OutboxTable,
    filter: &str,
    params: &[&(dyn ToSql + Sync)],
    source: &str,
    sink: &mut Sink<'_>,
) -> anyhow::Result<()> {
    let sql = format!(
        "select id::text, aggregatetype, aggregateid, type, payload, aggregate_version, headers->>'traceparent',
                created_at, xmin::text::bigint
         from {} where {filter} order by aggregate_version, created_at, id",
        table.qualified()
    );
    let rows =
        client.query_raw(&sql, params.iter().copied()).await.with_context(|| format!("read {}", table.qualified()))?;
    pin_mut!(rows);
    while let Some(row) = rows.next().await {
        let row = row?;
        let outbox = OutboxRow {
            id: row.try_get(0)?,
            aggregate_type: row.try_get(1)?,
            aggregate_id: row.try_get(2)?,
            event_type: row.try_get(3)?,
            payload: row.try_get(4)?,
            aggregate_version: row.try_get(5)?,
            traceparent: row.try_get(6)?,
        };
        let created: chrono::DateTime<chrono::Utc> = row.try_get(7)?;
        let committed_at = created.to_rfc3339();
        sink.publisher.publish(&outbox, &Source { lsn: source, committed_at: &committed_at }, sink.ack).await?;
        sink.scanned.rows += 1;
        sink.scanned.xids.insert(row.try_get::<_, i64>(8)?);
    }
    Ok(())
}
