//! Relays the outbox rows that exist when the slot is created, read through
//! the slot's exported snapshot so that nothing is missed or read twice at the
//! hand-over to streaming.

use crate::ack::TxnAck;
use crate::publisher::Publisher;
use crate::state::StateTables;
use crate::table_scan::{COLUMNS, Sink, publish_rows, snapshot_transaction};
use anyhow::Context;
use sluice_outbox::OutboxTable;
use std::sync::Arc;

/// Publishes every row of `tables` visible in `snapshot_name`, per aggregate
/// in version order, except rows dead-lettered before. Returns how many rows and the acknowledgement tracker
/// of them all (sealed).
pub(crate) async fn publish_snapshot(
    database_url: &str,
    snapshot_name: &str,
    tables: &[OutboxTable],
    state: &StateTables,
    publisher: &mut Publisher,
) -> anyhow::Result<(u64, Arc<TxnAck>)> {
    let (mut client, connection) =
        tokio_postgres::connect(database_url, tokio_postgres::NoTls).await.context("connect for the snapshot")?;
    let conn_task = tokio::spawn(connection);
    let tx = snapshot_transaction(&mut client).await?;
    tx.batch_execute(&format!("set transaction snapshot '{}'", snapshot_name.replace('\'', "''")))
        .await
        .context("import the slot's snapshot")?;
    let txn: Arc<TxnAck> = Arc::default();
    let mut sink = Sink { publisher, txn: &txn, rows: 0, record: true };
    for (index, table) in tables.iter().enumerate() {
        let sql = format!(
            "select {COLUMNS} from {} o where {} order by aggregate_version, created_at, id",
            table.qualified(),
            state.not_dead("$1")
        );
        publish_rows(&tx, table, index, &sql, &[&table.qualified()], "snapshot", &mut sink).await?;
    }
    let rows = sink.rows;
    tx.commit().await?;
    conn_task.abort();
    txn.seal();
    Ok((rows, txn))
}
