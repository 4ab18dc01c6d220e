//! Re-publishes a bounded range of the outbox (rows kept by the retention),
//! for consumers that need records again. Consumers skip versions they have.
//!
//! A compacted topic keeps a key's *last* record, not its highest version, so
//! re-publishing old versions could leave an older version as a key's last
//! record and a projection bootstrapped after compaction would regress. So
//! the range is followed by the newest retained version of every key it
//! touched, and the replay holds the relay lock: no relay streams meanwhile,
//! and a relay that starts afterwards re-sends every unconfirmed transaction
//! in commit order, so each key still ends with its newest version.

use crate::ack::TxnAck;
use crate::health::BrokerHealth;
use crate::state::StateTables;
use crate::table_scan::{COLUMNS, Sink, publish_rows, snapshot_transaction};
use crate::{RelayConfig, RelayMetrics, lock, pipeline};
use anyhow::Context;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// What a replay published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Rows created in the range.
    pub range: u64,
    /// Newest versions re-published after them, one per key in the range.
    pub latest: u64,
}

/// Publishes the rows created in `[since, until)`, then the newest retained
/// version of each key among them, and waits for the broker's acknowledgement
/// of every one. Refuses while a relay is active on the slot unless `force`.
pub async fn replay(
    config: &RelayConfig,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    force: bool,
    metrics: RelayMetrics,
) -> anyhow::Result<Replayed> {
    anyhow::ensure!(since < until, "--since must be before --until");
    let tables = config.tables().map_err(anyhow::Error::msg)?;
    let (mut client, connection) = tokio_postgres::connect(config.database_url.expose(), tokio_postgres::NoTls)
        .await
        .context("connect to PostgreSQL")?;
    let conn_task = tokio::spawn(connection);
    if !lock::try_acquire(&client, &config.slot).await? {
        anyhow::ensure!(
            force,
            "a relay is active on slot {}: a replay beside it could leave an older version as a key's last record \
             in a compacted topic (its records may land after the relay's newer ones). Stop the relays of this slot \
             first, or pass --force to replay anyway",
            config.slot
        );
        tracing::warn!(slot = %config.slot, "replaying beside an active relay (--force)");
    }
    let health =
        BrokerHealth::new(Default::default(), metrics.broker_up.clone(), metrics.streaming.clone(), &config.brokers);
    let names = tables.iter().map(|t| t.qualified()).collect();
    let mut pipeline = pipeline::build(config, &metrics, health, None, Arc::default(), names, Default::default())?;
    let txn: Arc<TxnAck> = Arc::default();
    let mut sink = Sink { publisher: &mut pipeline.publisher, txn: &txn, rows: 0, record: false };
    let state = StateTables { schema: config.state_schema.clone() };
    state.ensure(&client).await?;
    let not_dead = state.not_dead("$3");
    let tx = snapshot_transaction(&mut client).await?;
    for (index, table) in tables.iter().enumerate() {
        let sql = format!(
            "select {COLUMNS} from {t} o where created_at >= $1 and created_at < $2 and {not_dead}
             order by aggregate_version, created_at, id",
            t = table.qualified(),
        );
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&since, &until, &table.qualified()];
        publish_rows(&tx, table, index, &sql, &params, "replay", &mut sink).await?;
    }
    let in_range = sink.rows;
    for (index, table) in tables.iter().enumerate() {
        let sql = format!(
            "select distinct on (aggregatetype, aggregateid) {COLUMNS} from {t} o
             where (aggregatetype, aggregateid) in
                   (select aggregatetype, aggregateid from {t} where created_at >= $1 and created_at < $2)
               and {not_dead}
             order by aggregatetype, aggregateid, aggregate_version desc, created_at desc",
            t = table.qualified(),
        );
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&since, &until, &table.qualified()];
        publish_rows(&tx, table, index, &sql, &params, "replay", &mut sink).await?;
    }
    let latest = sink.rows - in_range;
    tx.commit().await?;
    txn.seal();
    txn.wait().await.map_err(anyhow::Error::msg)?;
    drop(pipeline.publisher);
    let _ = pipeline.refusals.await;
    conn_task.abort();
    Ok(Replayed { range: in_range, latest })
}
