//! Background work beside the stream: heartbeats, deleting relayed outbox
//! rows, and slot lag metrics.

use crate::RelayMetrics;
use crate::state::StateTables;
use sluice_outbox::OutboxTable;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
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

const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// What the next round owes.
struct Due {
    since_beat: Duration,
    since_sweep: Duration,
    /// Relayed transactions were recorded since the last sweep.
    sweep: bool,
}

pub(crate) struct Housekeeping {
    pub database_url: String,
    pub slot: String,
    pub state: StateTables,
    pub tables: Vec<OutboxTable>,
    pub heartbeat: Duration,
    pub retention: Duration,
    pub metrics: RelayMetrics,
    pub pending: Pending,
}

impl Housekeeping {
    /// Runs until shutdown; `relayed` brings the ids of transactions whose
    /// outbox rows the broker acknowledged and PostgreSQL was told about.
    pub async fn run(self, mut relayed: mpsc::UnboundedReceiver<u32>, shutdown: CancellationToken) {
        let mut client: Option<tokio_postgres::Client> = None;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        // The first round sweeps: a snapshot records its transactions before this task starts.
        let mut due = Due { since_beat: Duration::MAX, since_sweep: Duration::ZERO, sweep: true };
        let mut xids: Vec<i64> = Vec::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            while let Ok(xid) = relayed.try_recv() {
                xids.push(i64::from(xid));
            }
            if client.as_ref().is_none_or(|c| c.is_closed()) {
                client = self.connect().await;
            }
            let Some(c) = client.as_ref() else { continue };
            due.since_beat = due.since_beat.saturating_add(Duration::from_secs(1));
            due.since_sweep = due.since_sweep.saturating_add(Duration::from_secs(1));
            if let Err(e) = self.round(c, &mut xids, &mut due).await {
                tracing::warn!(error = %format!("{e:#}"), "relay housekeeping failed; will retry");
            }
        }
    }

    async fn connect(&self) -> Option<tokio_postgres::Client> {
        match tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls).await {
            Ok((client, conn)) => {
                tokio::spawn(conn);
                Some(client)
            }
            Err(e) => {
                tracing::warn!(error = %e, "housekeeping cannot connect to PostgreSQL");
                None
            }
        }
    }

    async fn round(&self, c: &tokio_postgres::Client, xids: &mut Vec<i64>, due: &mut Due) -> anyhow::Result<()> {
        if !xids.is_empty() {
            c.execute(&format!("insert into {} (xid) select unnest($1::bigint[])", self.state.relayed()), &[&*xids])
                .await?;
            xids.clear();
            due.sweep = true;
        }
        // Newly relayed rows are swept at once; rows aging past the retention
        // once a minute.
        if due.sweep || due.since_sweep >= SWEEP_EVERY {
            self.sweep(c).await?;
            due.sweep = false;
            due.since_sweep = Duration::ZERO;
        }
        if due.since_beat >= self.heartbeat {
            c.execute(&format!("insert into {} (slot) values ($1)", self.state.heartbeat()), &[&self.slot]).await?;
            c.execute(
                &format!("delete from {} where beat_at < now() - interval '1 minute'", self.state.heartbeat()),
                &[],
            )
            .await?;
            due.since_beat = Duration::ZERO;
        }
        self.slot_metrics(c).await
    }

    /// Deletes relayed outbox rows older than the retention, and the records
    /// of relayed transactions that can no longer match a row.
    async fn sweep(&self, c: &tokio_postgres::Client) -> anyhow::Result<()> {
        let retention = self.retention.as_secs_f64();
        for table in &self.tables {
            let deleted = c
                .execute(
                    &format!(
                        "delete from {} o using {} r
                         where o.xmin::text::bigint = r.xid and o.created_at < now() - make_interval(secs => $1)",
                        table.qualified(),
                        self.state.relayed()
                    ),
                    &[&retention],
                )
                .await?;
            if deleted > 0 {
                self.metrics.outbox_deleted.inc_by(deleted);
            }
        }
        c.execute(
            &format!(
                "delete from {} where relayed_at < now() - make_interval(secs => $1) - interval '1 hour'",
                self.state.relayed()
            ),
            &[&retention],
        )
        .await?;
        Ok(())
    }

    async fn slot_metrics(&self, c: &tokio_postgres::Client) -> anyhow::Result<()> {
        let row = c
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
