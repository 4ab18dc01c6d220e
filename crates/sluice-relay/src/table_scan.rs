//! Publishing outbox rows read with SQL (the initial snapshot and replays),
//! per aggregate in version order.

use crate::OutboxRow;
use crate::ack::{RowId, TxnAck};
use crate::dead_letter::DeadRow;
use crate::publisher::{Publisher, Source};
use anyhow::Context;
use futures::{StreamExt, pin_mut};
use sluice_outbox::OutboxTable;
use std::sync::Arc;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};

/// Where scanned rows go: the publisher, one acknowledgement tracker for all
/// of them, and the tally.
pub(crate) struct Sink<'a> {
    pub publisher: &'a mut Publisher,
    pub txn: &'a Arc<TxnAck>,
    pub rows: u64,
    /// Whether published rows are deleted (or recorded) once acknowledged:
    /// yes for a snapshot, no for a replay of rows already relayed.
    pub record: bool,
}

/// The columns every scan reads, in [`decode`]'s order.
pub(crate) const COLUMNS: &str =
    "id::text, aggregatetype, aggregateid, type, payload, aggregate_version, headers->>'traceparent', created_at";

/// Publishes the rows of `table` (index `table_index` in the relay's list)
/// that `sql` selects ([`COLUMNS`] first, with `params`), streaming them so
/// memory stays flat; `label` names where they come from in the
/// `sluice.source_lsn` header.
pub(crate) async fn publish_rows<C: GenericClient>(
    client: &C,
    table: &OutboxTable,
    table_index: usize,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    label: &str,
    sink: &mut Sink<'_>,
) -> anyhow::Result<()> {
    let rows =
        client.query_raw(sql, params.iter().copied()).await.with_context(|| format!("read {}", table.qualified()))?;
    pin_mut!(rows);
    let name = table.qualified();
    while let Some(row) = rows.next().await {
        let row = row?;
        let committed_at =
            row.try_get::<_, chrono::DateTime<chrono::Utc>>(7).map(|c| c.to_rfc3339()).unwrap_or_default();
        let source = Source { table: &name, lsn: label, committed_at: &committed_at };
        match decode(&row) {
            Ok(outbox) => {
                let id = if sink.record {
                    let id = outbox.id.parse().with_context(|| format!("outbox id {} is not a uuid", outbox.id))?;
                    Some(RowId { table: table_index, id })
                } else {
                    None
                };
                sink.publisher.publish(&outbox, &source, sink.txn, id).await?;
            }
            Err(reason) => {
                let dead = DeadRow {
                    reason: format!("undecodable outbox row: {reason}"),
                    table: name.clone(),
                    lsn: label.to_string(),
                    committed_at: committed_at.clone(),
                    fields: Vec::new(),
                    key: None,
                    value: Some(describe(&row).into_bytes()),
                    payload_bytes: 0,
                };
                let id = if sink.record {
                    row.try_get::<_, Option<String>>(0)
                        .ok()
                        .flatten()
                        .and_then(|id| id.parse().ok())
                        .map(|id| RowId { table: table_index, id })
                } else {
                    None
                };
                sink.publisher.dead_letter(dead, "undecodable", sink.txn, id).await?;
            }
        }
        sink.rows += 1;
    }
    Ok(())
}

/// A read-only REPEATABLE READ transaction: one consistent view for a scan.
pub(crate) async fn snapshot_transaction(
    client: &mut tokio_postgres::Client,
) -> Result<tokio_postgres::Transaction<'_>, tokio_postgres::Error> {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
}

fn decode(row: &Row) -> Result<OutboxRow, tokio_postgres::Error> {
    Ok(OutboxRow {
        id: row.try_get(0)?,
        aggregate_type: row.try_get(1)?,
        aggregate_id: row.try_get(2)?,
        event_type: row.try_get(3)?,
        payload: row.try_get(4)?,
        aggregate_version: row.try_get(5)?,
        traceparent: row.try_get(6)?,
    })
}

/// The row's readable columns as JSON, for a dead letter.
fn describe(row: &Row) -> String {
    let mut columns = serde_json::Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let value = match row.try_get::<_, Option<String>>(i) {
            Ok(Some(text)) => serde_json::Value::String(text),
            Ok(None) => serde_json::Value::Null,
            Err(_) => match row.try_get::<_, Option<i64>>(i) {
                Ok(v) => v.map_or(serde_json::Value::Null, serde_json::Value::from),
                Err(_) => serde_json::Value::String(format!("<{}>", column.type_())),
            },
        };
        columns.insert(column.name().to_string(), value);
    }
    serde_json::Value::Object(columns).to_string()
}
