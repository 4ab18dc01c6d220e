//! Relays the outbox rows that exist when the slot is created, read through
//! the slot's exported snapshot so that nothing is missed or read twice at the
//! hand-over to streaming.

use crate::OutboxRow;
use crate::ack::TxnAck;
use crate::publisher::{Publisher, Source};
use anyhow::Context;
use futures::{StreamExt, pin_mut};
use sluice_outbox::OutboxTable;
use std::sync::Arc;

/// Publishes every row of `tables` visible in `snapshot_name`, per aggregate in
/// version order. Returns how many, the ids of the transactions that wrote
/// them (for housekeeping) and the acknowledgement tracker of them all.
pub(crate) async fn publish_snapshot(
    database_url: &str,
    snapshot_name: &str,
    tables: &[OutboxTable],
    publisher: &mut Publisher,
) -> anyhow::Result<(u64, Vec<i64>, Arc<TxnAck>)> {
    let (mut client, connection) =
        tokio_postgres::connect(database_url, tokio_postgres::NoTls).await.context("connect for the snapshot")?;
    let conn_task = tokio::spawn(connection);
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    tx.batch_execute(&format!("set transaction snapshot '{}'", snapshot_name.replace('\'', "''")))
        .await
        .context("import the slot's snapshot")?;
    let ack: Arc<TxnAck> = Arc::default();
    let mut count = 0u64;
    let mut xids = std::collections::BTreeSet::new();
    for table in tables {
        let sql = format!(
            "select id::text, aggregatetype, aggregateid, type, payload, aggregate_version, headers->>'traceparent', created_at, xmin::text::bigint
             from {} order by aggregate_version, created_at, id",
            table.qualified()
        );
        let rows = tx
            .query_raw(&sql, std::iter::empty::<&str>())
            .await
            .with_context(|| format!("read {}", table.qualified()))?;
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
            publisher.publish(&outbox, &Source { lsn: "snapshot", committed_at: &committed_at }, &ack).await?;
            count += 1;
            xids.insert(row.try_get::<_, i64>(8)?);
        }
    }
    tx.commit().await?;
    conn_task.abort();
    ack.seal();
    Ok((count, xids.into_iter().collect(), ack))
}
