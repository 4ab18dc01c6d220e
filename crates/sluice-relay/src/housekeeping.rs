//! Background work beside the stream: heartbeats, deleting relayed outbox
//! rows past the retention, and slot lag metrics. Runs on the session's
//! connection (the one holding the relay lock).

use crate::RelayMetrics;
use crate::state::StateTables;
use sluice_outbox::OutboxTable;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

/// Commit times (µs) of transactions read but not yet confirmed, oldest first.
#[derive(Clone, Default)]
pub(crate) struct Pending(Arc<Mutex<VecDeque<i64>>>);

impl Pending {
    pub fn push(&self, commit_micros: i64) {
        if let Ok(mut q) = self.0.lock() {
            q.push_back(commit_micros);
        }
    }
    pub fn pop(&self) {
        if let Ok(mut q) = self.0.lock() {
            q.pop_front();
        }
    }
    fn oldest(&self) -> Option<i64> {
        self.0.lock().ok().and_then(|q| q.front().copied())
    }
}

/// Rows past the retention are looked for this often.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct Housekeeping {
    pub client: Arc<Client>,
    pub slot: String,
    pub state: StateTables,
    pub tables: Vec<OutboxTable>,
    pub heartbeat: Duration,
    /// Rows recorded as relayed are deleted once this old. Zero (no
    /// retention) still sweeps: rows recorded while a retention was set
    /// would otherwise stay for good, and a later snapshot or replay would
    /// publish them after their keys' newer versions.
    pub retention: Duration,
    pub metrics: RelayMetrics,
    pub pending: Pending,
}

impl Housekeeping {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        let mut since_beat = Duration::MAX;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            since_beat = since_beat.saturating_add(SWEEP_EVERY);
            if since_beat >= self.heartbeat {
                since_beat = Duration::ZERO;
                if let Err(e) = self.beat().await {
                    tracing::warn!(error = %e, "relay heartbeat failed; will retry");
                }
            }
            if let Err(e) = self.sweep(self.retention).await {
                tracing::warn!(error = %format!("{e:#}"), "deleting relayed outbox rows failed; will retry");
            }
            if let Err(e) = self.slot_metrics().await {
                tracing::warn!(error = %e, "reading the slot's lag failed; will retry");
            }
        }
    }

    /// A transactional logical decoding message: the stream reads its
    /// commit and confirms it, so the slot advances while the outbox is idle.
    /// Needs no table in the publication and no privilege beyond LOGIN.
    async fn beat(&self) -> Result<(), tokio_postgres::Error> {
        self.client.execute("select pg_logical_emit_message(true, 'sluice.heartbeat', $1)", &[&self.slot]).await?;
        Ok(())
    }

    /// Deletes outbox rows recorded as relayed longer than `retention` ago,
    /// together with their records, in one statement per table.
    async fn sweep(&self, retention: Duration) -> anyhow::Result<()> {
        let secs = retention.as_secs_f64();
        for table in &self.tables {
            let deleted = self
                .client
                .execute(
                    &format!(
                        "with due as (
                             delete from {relayed} where outbox = $1 and relayed_at < now() - make_interval(secs => $2)
                             returning id
                         )
                         delete from {outbox} o using due where o.id = due.id",
                        relayed = self.state.relayed_rows(),
                        outbox = table.qualified()
                    ),
                    &[&table.qualified(), &secs],
                )
                .await?;
            self.metrics.outbox_deleted.inc_by(deleted);
        }
        self.metrics.sweeps.inc();
        Ok(())
    }

    async fn slot_metrics(&self) -> Result<(), tokio_postgres::Error> {
        let row = self
            .client
            .query_opt(
                "select pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::float8, wal_status
                 from pg_replication_slots where slot_name = $1",
                &[&self.slot],
            )
            .await?;
        if let Some(row) = row {
            let lag: Option<f64> = row.get(0);
            self.metrics.slot_lag_bytes.set(lag.unwrap_or(0.0));
            let status: Option<String> = row.get(1);
            self.metrics.slot_lost.set(i64::from(status.as_deref() == Some("lost")));
            if status.as_deref() == Some("lost") {
                tracing::error!(slot = %self.slot, "replication slot INVALIDATED (wal_status=lost); restart the relay to drop it and re-snapshot the outbox");
            }
        }
        let now = chrono::Utc::now().timestamp_micros();
        let lag_seconds = self.pending.oldest().map_or(0.0, |oldest| (now - oldest).max(0) as f64 / 1e6);
        self.metrics.slot_lag_seconds.set(lag_seconds);
        Ok(())
    }
}
