//! The replication session: lock, plan, snapshot, stream, drain.

use crate::ack::{RowId, TxnAck};
use crate::dead_letter::DeadRow;
use crate::health::BrokerHealth;
use crate::housekeeping::{Housekeeping, Pending};
use crate::pipeline::{self, Pipeline};
use crate::publication::ensure_publication;
use crate::publisher::{Publisher, Source};
use crate::recorder::Recorder;
use crate::session::Session;
use crate::slot::{self, SlotPlan};
use crate::snapshot::publish_snapshot;
use crate::state::StateTables;
use crate::{OutboxRow, RelayConfig, RelayMetrics, lock, preflight};
use anyhow::Context;
use pg_walstream::{
    CancellationToken as WalCancel, EventType, LogicalReplicationStream, ReplicationSlotOptions,
    ReplicationStreamConfig, SharedLsnFeedback, StreamingMode,
};
use sluice_outbox::OutboxTable;
use sluice_telemetry::Readiness;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A transaction read from the stream, waiting for its rows to be done.
struct Confirmable {
    end_lsn: u64,
    commit_micros: i64,
    has_outbox_rows: bool,
    ack: Arc<TxnAck>,
}

/// Runs until `shutdown`. A lost database or broker connection does not stop
/// the service: what was acknowledged is confirmed, then replication starts
/// again (with back-off) from the last confirmed position. Start-up errors
/// that need an operator (privileges, wal_level, publication) are logged at
/// error level with what to fix; a standby waits quietly for the lock.
pub async fn run_relay(
    config: RelayConfig,
    metrics: RelayMetrics,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let health = BrokerHealth::new(readiness, metrics.broker_up.clone(), metrics.streaming.clone(), &config.brokers);
    tokio::spawn(health.clone().watch(shutdown.clone()));
    let mut delay = Duration::from_secs(1);
    loop {
        let started = tokio::time::Instant::now();
        let result = run_once(&config, &metrics, &health, shutdown.child_token()).await;
        health.set_streaming(false);
        if shutdown.is_cancelled() {
            // Asked to stop: whatever ended the last session was logged;
            // what it did not confirm is sent again by the next relay.
            if let Err(e) = result {
                tracing::warn!(error = %format!("{e:#}"), "the last session ended with an error");
            }
            return Ok(());
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
/// waits (boundedly) for the broker to acknowledge what was sent, confirms
/// it, returns.
async fn run_once(
    config: &RelayConfig,
    metrics: &RelayMetrics,
    health: &BrokerHealth,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let tables = config.tables().map_err(anyhow::Error::msg)?;
    let table_names: Vec<String> = tables.iter().map(OutboxTable::qualified).collect();
    let state = StateTables { schema: config.state_schema.clone() };
    let (client, connection) = tokio_postgres::connect(config.database_url.expose(), tokio_postgres::NoTls)
        .await
        .context("connect to PostgreSQL")?;
    // This connection holds the relay lock: when it ends, so does the session.
    let client = Arc::new(client);
    let session = Session::new(&shutdown);
    // (Declared after `client`, so dropped before it: the connection is
    // closed here, not reported as lost when the client goes.)
    let _close = AbortOnDrop(session.hold(connection));
    // What an operator must fix is found before waiting as a standby, so that
    // a standby counts as healthy (`/readyz?standby=ok`) only when it could
    // take over; checked again after a wait (time may have passed). Brokers
    // that do not answer make it no standby either, but it still takes the
    // lock when free (records then wait in the producer's queue).
    preflight::check(&client, &tables).await?;
    ensure_publication(&client, &config.publication, &tables).await?;
    let brokers_answer = health.brokers_answer().await;
    if !brokers_answer {
        tracing::warn!(brokers = %health.brokers(), "the Kafka brokers do not answer: not a standby until they do");
    }
    health.set_standby(brokers_answer);
    let acquired = lock::acquire(&client, &config.slot, &session.token).await;
    health.set_standby(false);
    match acquired? {
        lock::Acquired::ShutDown => return session.end(),
        lock::Acquired::TookOver => {
            preflight::check(&client, &tables).await?;
            ensure_publication(&client, &config.publication, &tables).await?;
        }
        lock::Acquired::AtOnce => {}
    }
    state.ensure(&client).await?;

    let stop_tasks = CancellationToken::new();
    let _stop_tasks = stop_tasks.clone().drop_guard();
    let backlog = Arc::default();
    let (recorder_tx, recorder_rx) = mpsc::unbounded_channel();
    let recorder = Recorder {
        client: client.clone(),
        tables: tables.clone(),
        state: StateTables { schema: config.state_schema.clone() },
        retain: config.outbox_retention_secs > 0,
        metrics: metrics.clone(),
        backlog: Arc::clone(&backlog),
    };
    let recorder_task = tokio::spawn(recorder.run(recorder_rx, stop_tasks.clone()));
    let Pipeline { mut publisher, refusals } = pipeline::build(
        config,
        metrics,
        health.clone(),
        Some(recorder_tx),
        backlog,
        table_names.clone(),
        session.token.clone(),
    )?;

    let opened = session.race(open_stream(config, &client, &state, &tables, &table_names, &mut publisher)).await;
    let mut stream = match opened {
        Ok(stream) => stream,
        Err(e) => {
            if session.lock_lost() {
                publisher.purge_queued();
            }
            stop_tasks.cancel();
            drop(publisher);
            let _ = tokio::join!(recorder_task, refusals);
            // SIGTERM during planning or the snapshot: a clean stop (an
            // incomplete snapshot is made again by the next relay).
            return if shutdown.is_cancelled() && !session.lock_lost() { Ok(()) } else { Err(e) };
        }
    };
    health.set_streaming(true);
    tracing::info!(slot = %config.slot, publication = %config.publication, "relay streaming");

    let pending = Pending::default();
    let housekeeping = Housekeeping {
        client: client.clone(),
        slot: config.slot.clone(),
        state,
        tables: tables.clone(),
        heartbeat: Duration::from_millis(config.heartbeat_interval_ms),
        retention: Duration::from_secs(config.outbox_retention_secs),
        metrics: metrics.clone(),
        pending: pending.clone(),
    };
    let housekeeper = tokio::spawn(housekeeping.run(stop_tasks.clone()));
    let (confirm_tx, confirm_rx) = mpsc::unbounded_channel();
    let feedback = stream.shared_lsn_feedback.clone();
    let confirming = confirm_in_order(confirm_rx, feedback, metrics.clone(), pending.clone());
    let failed = session.token.clone();
    let mut confirmer = tokio::spawn(async move {
        let result = confirming.await;
        if result.is_err() {
            // A delivery failed: stop reading, nothing after it is confirmed.
            failed.cancel();
        }
        result
    });

    let captured: HashMap<(String, String), usize> =
        tables.iter().enumerate().map(|(i, t)| ((t.schema.clone(), t.table.clone()), i)).collect();
    let reader = Reader { publisher: &mut publisher, captured: &captured, tables: &table_names };
    let result = reader.read(&mut stream, &confirm_tx, &pending, &session).await;
    // A wait cut short by the session's end is not an error of its own.
    let result = if session.token.is_cancelled() { session.end() } else { result };
    if let Err(e) = &result {
        tracing::error!(error = %format!("{e:#}"), "replication stopped");
    }
    health.set_streaming(false);
    if session.lock_lost() {
        // Another relay may be publishing now: nothing still queued here may
        // land after its records.
        publisher.purge_queued();
    }

    // Drain, boundedly: what the broker acknowledges in time is confirmed;
    // the rest stays unconfirmed and is sent again by the next relay.
    drop(confirm_tx);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(config.shutdown_drain_ms);
    let in_flight = publisher.drain(deadline).await;
    let confirmed = tokio::select! {
        r = &mut confirmer => r.unwrap_or_else(|e| Err(anyhow::anyhow!("confirmer task: {e}"))),
        _ = tokio::time::sleep_until(deadline) => {
            confirmer.abort();
            tracing::warn!(
                in_flight, drain_ms = config.shutdown_drain_ms,
                "stopping with transactions not acknowledged by the broker; they stay unconfirmed and are sent again"
            );
            Ok(())
        }
    };
    if let Err(e) = tokio::time::timeout(Duration::from_secs(5), stream.send_feedback()).await.unwrap_or(Ok(())) {
        tracing::warn!(error = %e, "final feedback to PostgreSQL failed; the next start resends from the previous confirmed LSN");
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.stop()).await;
    stop_tasks.cancel();
    drop(publisher);
    let joined =
        tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(housekeeper, recorder_task, refusals) });
    if joined.await.is_err() {
        tracing::warn!("background tasks of the session did not stop within 10 s; leaving them");
    }
    result.and(confirmed)
}

/// Aborts a task when dropped, whichever way the session ends.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Connects the replication stream. A new slot first has its snapshot of the
/// outbox relayed and acknowledged. The caller holds the relay lock and
/// races this with the session's end.
async fn open_stream(
    config: &RelayConfig,
    client: &tokio_postgres::Client,
    state: &StateTables,
    tables: &[OutboxTable],
    table_names: &[String],
    publisher: &mut Publisher,
) -> anyhow::Result<LogicalReplicationStream> {
    let url = replication_url(config.database_url.expose());
    let mut delay = Duration::from_millis(250);
    loop {
        let attempt = async {
            let plan = slot::plan(client, state, &config.slot, table_names).await?;
            // Whenever this connection creates the slot (planned, or because it
            // vanished meanwhile), the snapshot is exported and relayed.
            let options = ReplicationSlotOptions { snapshot: Some("export".into()), ..Default::default() };
            let stream_config = ReplicationStreamConfig::builder(&config.slot, &config.publication)
                .with_protocol_version(1)
                .with_messages(true)
                .with_streaming_mode(StreamingMode::Off)
                .with_feedback_interval(Duration::from_millis(200))
                .with_slot_options(options);
            let mut stream = LogicalReplicationStream::new(&url, stream_config).await?;
            stream.ensure_replication_slot().await?;
            if let Some(name) = stream.exported_snapshot_name().map(str::to_string) {
                if plan == SlotPlan::Resume {
                    // The slot vanished after it was planned: until this
                    // snapshot completes, the state must not say it did.
                    slot::mark_snapshot_pending(client, state, &config.slot).await?;
                }
                let (rows, ack) =
                    publish_snapshot(config.database_url.expose(), &name, tables, state, publisher).await?;
                ack.wait().await.map_err(anyhow::Error::msg)?;
                slot::mark_snapshot_complete(client, state, &config.slot, table_names).await?;
                tracing::info!(slot = %config.slot, rows, "initial snapshot of the outbox relayed");
            } else if plan == SlotPlan::CreateWithSnapshot {
                anyhow::bail!("slot {} appeared while this relay was creating it; retrying", config.slot);
            }
            stream.start(None).await?;
            slot::record_streamed_tables(client, state, &config.slot, table_names).await?;
            Ok::<_, anyhow::Error>(stream)
        };
        match attempt.await {
            Ok(stream) => return Ok(stream),
            // A slot still held by the walsender of a session that just ended.
            Err(e) if format!("{e:#}").contains("is active for PID") => {
                tracing::info!(error = %format!("{e:#}"), "slot still in use by a previous session; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e.context("start replication")),
        }
    }
}

fn replication_url(url: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}replication=database")
}

struct Txn {
    ack: Arc<TxnAck>,
    committed_at: String,
    commit_micros: i64,
    has_outbox_rows: bool,
}

/// Reads the stream and publishes the outbox inserts.
struct Reader<'a> {
    publisher: &'a mut Publisher,
    /// Captured tables by (schema, table), with their index.
    captured: &'a HashMap<(String, String), usize>,
    tables: &'a [String],
}

impl Reader<'_> {
    async fn read(
        self,
        stream: &mut LogicalReplicationStream,
        confirm_tx: &mpsc::UnboundedSender<Confirmable>,
        pending: &Pending,
        session: &Session,
    ) -> anyhow::Result<()> {
        let wal_cancel = WalCancel::new();
        let mut txn: Option<Txn> = None;
        loop {
            let event = tokio::select! {
                biased;
                _ = session.token.cancelled() => return session.end(),
                e = stream.next_event(&wal_cancel) => e.context("replication stream")?,
            };
            match &event.event_type {
                EventType::Begin { commit_timestamp, .. } => {
                    txn = Some(Txn {
                        ack: Arc::default(),
                        committed_at: commit_timestamp.to_rfc3339(),
                        commit_micros: commit_timestamp.timestamp_micros(),
                        has_outbox_rows: false,
                    });
                }
                EventType::Insert { schema, table, data, .. } => {
                    let Some(&index) = self.captured.get(&(schema.to_string(), table.to_string())) else {
                        continue;
                    };
                    let current = txn.as_mut().context("insert outside a transaction")?;
                    let lsn = event.lsn.to_string();
                    let source = Source { table: &self.tables[index], lsn: &lsn, committed_at: &current.committed_at };
                    match OutboxRow::from_row(data).and_then(|row| {
                        let id = row.id.parse().map_err(|_| format!("id `{}` is not a uuid", row.id))?;
                        Ok((row, id))
                    }) {
                        Ok((row, id)) => {
                            self.publisher
                                .publish(&row, &source, &current.ack, Some(RowId { table: index, id }))
                                .await?
                        }
                        Err(reason) => {
                            let id = crate::row::row_id(data).map(|id| RowId { table: index, id });
                            let dead = DeadRow {
                                reason: format!("undecodable outbox row: {reason}"),
                                table: source.table.to_string(),
                                lsn: lsn.clone(),
                                committed_at: current.committed_at.clone(),
                                fields: Vec::new(),
                                key: None,
                                value: Some(crate::row::describe(data).into_bytes()),
                                payload_bytes: 0,
                            };
                            self.publisher.dead_letter(dead, "undecodable", &current.ack, id).await?;
                        }
                    }
                    current.has_outbox_rows = true;
                }
                EventType::Commit { end_lsn, .. } => {
                    if let Some(done) = txn.take() {
                        done.ack.seal();
                        pending.push(done.commit_micros);
                        let c = Confirmable {
                            end_lsn: end_lsn.value(),
                            commit_micros: done.commit_micros,
                            has_outbox_rows: done.has_outbox_rows,
                            ack: done.ack,
                        };
                        confirm_tx.send(c).map_err(|_| anyhow::anyhow!("confirmer stopped"))?;
                    }
                    // Confirmed positions reach PostgreSQL even while frames
                    // keep arriving (throttled to the feedback interval).
                    stream.maybe_send_feedback().await;
                }
                _ => {}
            }
        }
    }
}

/// Confirms transactions strictly in commit order, each once all its rows
/// (and so all before it) are done.
async fn confirm_in_order(
    mut rx: mpsc::UnboundedReceiver<Confirmable>,
    feedback: Arc<SharedLsnFeedback>,
    metrics: RelayMetrics,
    pending: Pending,
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
            let age = (chrono::Utc::now().timestamp_micros() - c.commit_micros).max(0) as f64 / 1e6;
            metrics.commit_to_ack.observe(age);
            metrics.acknowledged.inc_by(c.ack.rows());
        }
        metrics.confirmed_lsn.set(i64::try_from(c.end_lsn).unwrap_or(i64::MAX));
        metrics.transactions.inc();
    }
    Ok(())
}
