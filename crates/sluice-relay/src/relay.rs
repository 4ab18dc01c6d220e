//! The replication loop and the in-order confirmer.

use crate::ack::TxnAck;
use crate::housekeeping::{Housekeeping, Pending};
use crate::publication::ensure_publication;
use crate::publisher::{Publisher, Source};
use crate::slot::{self, SlotPlan};
use crate::snapshot::publish_snapshot;
use crate::state::StateTables;
use crate::{OutboxRow, RelayConfig, RelayMetrics};
use anyhow::Context;
use pg_walstream::{
    CancellationToken as WalCancel, EventType, LogicalReplicationStream, ReplicationSlotOptions,
    ReplicationStreamConfig, SharedLsnFeedback, StreamingMode,
};
use sluice_outbox::OutboxTable;
use sluice_telemetry::Readiness;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A transaction read from the stream, waiting for its acknowledgements.
struct Confirmable {
    end_lsn: u64,
    commit_micros: i64,
    xid: u32,
    has_outbox_rows: bool,
    ack: Arc<TxnAck>,
}

/// Runs until `shutdown`. A lost database or broker connection does not stop
/// the service: what was acknowledged is confirmed, then replication starts
/// again (with back-off) from the last confirmed position.
pub async fn run_relay(
    config: RelayConfig,
    metrics: RelayMetrics,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut delay = Duration::from_secs(1);
    loop {
        let started = tokio::time::Instant::now();
        let result = run_once(&config, &metrics, &readiness, shutdown.child_token()).await;
        readiness.set_ready(false);
        if shutdown.is_cancelled() {
            return result;
        }
        if let Err(e) = result {
            tracing::error!(error = %format!("{e:#}"), "relay stopped; starting again in {delay:?}");
        }
        if started.elapsed() > Duration::from_secs(60) {
            delay = Duration::from_secs(1);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// One replication session: until `shutdown` or an error; then stops reading,
/// waits for the broker to acknowledge what was sent, confirms it, returns.
async fn run_once(
    config: &RelayConfig,
    metrics: &RelayMetrics,
    readiness: &Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let tables = config.tables().map_err(anyhow::Error::msg)?;
    let state = StateTables { schema: config.state_schema.clone() };
    let (client, connection) = tokio_postgres::connect(config.database_url.expose(), tokio_postgres::NoTls)
        .await
        .context("connect to PostgreSQL")?;
    let conn_task = tokio::spawn(connection);
    state.ensure(&client).await?;
    let heartbeat = OutboxTable::parse(&state.heartbeat()).map_err(anyhow::Error::msg)?;
    let published: Vec<OutboxTable> = tables.iter().cloned().chain([heartbeat]).collect();
    ensure_publication(&client, &config.publication, &published).await?;

    let mut publisher = Publisher::new(
        &config.brokers,
        &config.topic_prefix,
        config.partitions,
        config.events_topics,
        metrics.clone(),
    )?;
    let mut stream = open_stream(config, &client, &state, &tables, &mut publisher, &shutdown).await?;
    drop(client);
    conn_task.abort();
    readiness.set_ready(true);
    tracing::info!(slot = %config.slot, publication = %config.publication, "relay streaming");

    let pending = Pending::default();
    let (relayed_tx, relayed_rx) = mpsc::unbounded_channel();
    let housekeeping = Housekeeping {
        database_url: config.database_url.expose().to_string(),
        slot: config.slot.clone(),
        state,
        tables: tables.clone(),
        heartbeat: Duration::from_millis(config.heartbeat_interval_ms),
        retention: Duration::from_secs(config.outbox_retention_secs),
        metrics: metrics.clone(),
        pending: pending.clone(),
    };
    let housekeeper = tokio::spawn(housekeeping.run(relayed_rx, shutdown.child_token()));

    let (confirm_tx, confirm_rx) = mpsc::unbounded_channel();
    let feedback = stream.shared_lsn_feedback.clone();
    let confirmer = tokio::spawn(confirm_in_order(confirm_rx, feedback, metrics.clone(), pending.clone(), relayed_tx));
    let captured: HashSet<(String, String)> = tables.iter().map(|t| (t.schema.clone(), t.table.clone())).collect();

    let wal_cancel = WalCancel::new();
    let result = read_loop(&mut stream, &mut publisher, &captured, &confirm_tx, &pending, &shutdown, &wal_cancel).await;
    if let Err(e) = &result {
        tracing::error!(error = %format!("{e:#}"), "replication stopped");
    }

    // Drain: whatever was sent gets acknowledged and confirmed.
    drop(confirm_tx);
    publisher.flush(Duration::from_secs(30));
    let confirmed = confirmer.await.context("confirmer task")?;
    if let Err(e) = stream.send_feedback().await {
        tracing::warn!(error = %e, "final feedback to PostgreSQL failed; the next start resends from the previous confirmed LSN");
    }
    let _ = stream.stop().await;
    shutdown.cancel();
    let _ = housekeeper.await;
    result.and(confirmed)
}

/// Connects the replication stream. A new slot first has its snapshot of the
/// outbox relayed and acknowledged. A slot serves one reader: a second relay
/// waits here until the active one goes away, which makes it a standby.
async fn open_stream(
    config: &RelayConfig,
    client: &tokio_postgres::Client,
    state: &StateTables,
    tables: &[OutboxTable],
    publisher: &mut Publisher,
    shutdown: &CancellationToken,
) -> anyhow::Result<LogicalReplicationStream> {
    let url = replication_url(config.database_url.expose());
    let mut delay = Duration::from_millis(250);
    loop {
        let attempt = async {
            let plan = slot::plan(client, state, &config.slot).await?;
            // Whenever this connection creates the slot (planned, or because it
            // vanished meanwhile), the snapshot is exported and relayed.
            let options = ReplicationSlotOptions { snapshot: Some("export".into()), ..Default::default() };
            let stream_config = ReplicationStreamConfig::builder(&config.slot, &config.publication)
                .with_protocol_version(1)
                .with_streaming_mode(StreamingMode::Off)
                .with_feedback_interval(Duration::from_millis(200))
                .with_slot_options(options);
            let mut stream = LogicalReplicationStream::new(&url, stream_config).await?;
            stream.ensure_replication_slot().await?;
            if let Some(name) = stream.exported_snapshot_name().map(str::to_string) {
                let (scanned, ack) = publish_snapshot(config.database_url.expose(), &name, tables, publisher).await?;
                ack.wait().await.map_err(anyhow::Error::msg)?;
                let (rows, xids): (u64, Vec<i64>) = (scanned.rows, scanned.xids.into_iter().collect());
                client
                    .execute(&format!("insert into {} (xid) select unnest($1::bigint[])", state.relayed()), &[&xids])
                    .await
                    .context("record the relayed snapshot")?;
                slot::mark_snapshot_complete(client, state, &config.slot).await?;
                tracing::info!(slot = %config.slot, rows, "initial snapshot of the outbox relayed");
            } else if plan == SlotPlan::CreateWithSnapshot {
                anyhow::bail!("slot {} appeared while this relay was creating it; retrying", config.slot);
            }
            stream.start(None).await?;
            Ok::<_, anyhow::Error>(stream)
        };
        match attempt.await {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                tracing::info!(error = %format!("{e:#}"), "replication not started (standby or not ready); retrying in {delay:?}");
                tokio::select! {
                    _ = shutdown.cancelled() => anyhow::bail!("shut down before replication started: {e:#}"),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

fn replication_url(url: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}replication=database")
}

struct Txn {
    ack: Arc<TxnAck>,
    xid: u32,
    committed_at: String,
    commit_micros: i64,
    has_outbox_rows: bool,
}

async fn read_loop(
    stream: &mut LogicalReplicationStream,
    publisher: &mut Publisher,
    captured: &HashSet<(String, String)>,
    confirm_tx: &mpsc::UnboundedSender<Confirmable>,
    pending: &Pending,
    shutdown: &CancellationToken,
    wal_cancel: &WalCancel,
) -> anyhow::Result<()> {
    let mut txn: Option<Txn> = None;
    loop {
        let event = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(()),
            e = stream.next_event(wal_cancel) => e.context("replication stream")?,
        };
        match &event.event_type {
            EventType::Begin { transaction_id, commit_timestamp, .. } => {
                txn = Some(Txn {
                    ack: Arc::default(),
                    xid: *transaction_id,
                    committed_at: commit_timestamp.to_rfc3339(),
                    commit_micros: commit_timestamp.timestamp_micros(),
                    has_outbox_rows: false,
                });
            }
            EventType::Insert { schema, table, data, .. } => {
                if !captured.contains(&(schema.to_string(), table.to_string())) {
                    continue;
                }
                let current = txn.as_mut().context("insert outside a transaction")?;
                let row = OutboxRow::from_row(data)
                    .map_err(|e| anyhow::anyhow!("undecodable outbox row in {schema}.{table} at {}: {e}", event.lsn))?;
                let lsn = event.lsn.to_string();
                let source = Source { lsn: &lsn, committed_at: &current.committed_at };
                publisher.publish(&row, &source, &current.ack).await?;
                current.has_outbox_rows = true;
            }
            EventType::Commit { end_lsn, .. } => {
                if let Some(done) = txn.take() {
                    done.ack.seal();
                    pending.push(done.commit_micros);
                    let c = Confirmable {
                        end_lsn: end_lsn.value(),
                        commit_micros: done.commit_micros,
                        xid: done.xid,
                        has_outbox_rows: done.has_outbox_rows,
                        ack: done.ack,
                    };
                    confirm_tx.send(c).map_err(|_| anyhow::anyhow!("confirmer stopped"))?;
                }
            }
            _ => {}
        }
    }
}

/// Confirms transactions strictly in commit order, each once all its records
/// (and so all before it) are acknowledged.
async fn confirm_in_order(
    mut rx: mpsc::UnboundedReceiver<Confirmable>,
    feedback: Arc<SharedLsnFeedback>,
    metrics: RelayMetrics,
    pending: Pending,
    relayed: mpsc::UnboundedSender<u32>,
) -> anyhow::Result<()> {
    while let Some(c) = rx.recv().await {
        if let Err(reason) = c.ack.wait().await {
            metrics.delivery_errors.inc();
            anyhow::bail!("stopping without confirming LSN {:#X}: {reason}", c.end_lsn);
        }
        feedback.update_flushed_lsn(c.end_lsn);
        feedback.update_applied_lsn(c.end_lsn);
        pending.pop();
        if c.has_outbox_rows {
            let _ = relayed.send(c.xid);
            let age = (chrono::Utc::now().timestamp_micros() - c.commit_micros).max(0) as f64 / 1e6;
            metrics.commit_to_ack.observe(age);
            metrics.acknowledged.inc_by(c.ack.records());
        }
        metrics.confirmed_lsn.set(i64::try_from(c.end_lsn).unwrap_or(i64::MAX));
        metrics.transactions.inc();
    }
    Ok(())
}
