//! Relays the outbox rows that exist when the slot is created, read through
//! the slot's exported snapshot so that nothing is missed or read twice at the
//! hand-over to streaming.

use crate::ack::TxnAck;
use crate::publisher::Publisher;
use crate::table_scan::{Scanned, Sink, publish_rows};
use anyhow::Context;
use sluice_outbox::OutboxTable;
use std::sync::Arc;

/// Publishes every row of `tables` visible in `snapshot_name`. Returns what
/// was published and the acknowledgement tracker of it all.
pub(crate) async fn publish_snapshot(
    database_url: &str,
    snapshot_name: &str,
    tables: &[OutboxTable],
    publisher: &mut Publisher,
) -> anyhow::Result<(Scanned, Arc<TxnAck>)> {
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
    let mut scanned = Scanned::default();
    let mut sink = Sink { publisher, ack: &ack, scanned: &mut scanned };
    for table in tables {
        publish_rows(&tx, table, "true", &[], "snapshot", &mut sink).await?;
    }
    tx.commit().await?;
    conn_task.abort();
    ack.seal();
    Ok((scanned, ack))
}
