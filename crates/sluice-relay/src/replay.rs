//! Re-publishes a bounded range of the outbox (rows kept by the retention),
//! for consumers that need records again. Consumers skip versions they have.

use crate::ack::TxnAck;
use crate::publisher::Publisher;
use crate::table_scan::{Scanned, Sink, publish_rows};
use crate::{RelayConfig, RelayMetrics};
use anyhow::Context;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Publishes the rows created in `[since, until)` and waits for the broker's
/// acknowledgement of every one. Returns how many.
pub async fn replay(
    config: &RelayConfig,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    metrics: RelayMetrics,
) -> anyhow::Result<u64> {
    anyhow::ensure!(since < until, "--since must be before --until");
    let tables = config.tables().map_err(anyhow::Error::msg)?;
    let (client, connection) = tokio_postgres::connect(config.database_url.expose(), tokio_postgres::NoTls)
        .await
        .context("connect to PostgreSQL")?;
    let conn_task = tokio::spawn(connection);
    let mut publisher =
        Publisher::new(&config.brokers, &config.topic_prefix, config.partitions, config.events_topics, metrics)?;
    let ack: Arc<TxnAck> = Arc::default();
    let mut scanned = Scanned::default();
    let mut sink = Sink { publisher: &mut publisher, ack: &ack, scanned: &mut scanned };
    let range: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&since, &until];
    for table in &tables {
        publish_rows(&client, table, "created_at >= $1 and created_at < $2", &range, "replay", &mut sink).await?;
    }
    ack.seal();
    ack.wait().await.map_err(anyhow::Error::msg)?;
    conn_task.abort();
    Ok(scanned.rows)
}
