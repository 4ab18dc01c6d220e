//! Makes acknowledged rows durable as relayed, by their ids, before their
//! transaction may be confirmed: without a retention they are deleted from
//! the outbox at once; with one, their ids are recorded in the relay's
//! `relayed_rows` table and housekeeping deletes them when they are old
//! enough. Either way the step is durable before the LSN moves, so a restart
//! never forgets a deletion, and only rows the broker acknowledged are ever
//! deleted. Rows are recorded in acknowledgement order, which per key is
//! version order: the outbox always keeps a key's newest versions, so a
//! re-snapshot can never make an older version a key's last record.
//! Dead-lettered rows stay in the outbox and are recorded in `dead_rows`,
//! which snapshots and replays skip: a row the broker refused is never
//! published later behind the newer versions of its key.

use crate::RelayMetrics;
use crate::ack::RowAck;
use crate::state::StateTables;
use sluice_outbox::OutboxTable;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

const BATCH: usize = 5_000;

pub(crate) struct Recorder {
    pub client: Arc<Client>,
    pub tables: Vec<OutboxTable>,
    pub state: StateTables,
    /// Keep relayed rows (record them) rather than delete them at once.
    pub retain: bool,
    pub metrics: RelayMetrics,
    pub backlog: Arc<AtomicUsize>,
}

impl Recorder {
    /// Runs until the channel closes (every row handed in was recorded) or
    /// `stop` fires (rows not recorded stay unconfirmed and are re-sent).
    pub(crate) async fn run(self, mut rows: mpsc::UnboundedReceiver<Arc<RowAck>>, stop: CancellationToken) {
        let mut batch: Vec<Arc<RowAck>> = Vec::with_capacity(BATCH);
        loop {
            let first = tokio::select! {
                biased;
                r = rows.recv() => match r { Some(r) => r, None => return },
                _ = stop.cancelled() => return,
            };
            batch.push(first);
            while batch.len() < BATCH {
                match rows.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            while let Err(e) = self.record(&batch).await {
                if self.client.is_closed() {
                    // The session's connection is gone (and with it the
                    // relay lock): these rows stay unconfirmed, re-sent later.
                    self.backlog.fetch_sub(batch.len(), Ordering::AcqRel);
                    for row in batch.drain(..) {
                        row.txn.failed(format!("relayed rows not recorded: {e:#}"));
                    }
                    return;
                }
                tracing::warn!(error = %format!("{e:#}"), rows = batch.len(), "cannot record relayed rows; retrying");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            self.backlog.fetch_sub(batch.len(), Ordering::AcqRel);
            for row in batch.drain(..) {
                row.txn.row_done();
            }
        }
    }

    async fn record(&self, batch: &[Arc<RowAck>]) -> anyhow::Result<()> {
        let mut by_table: BTreeMap<usize, Vec<uuid::Uuid>> = BTreeMap::new();
        let mut dead: BTreeMap<usize, Vec<uuid::Uuid>> = BTreeMap::new();
        for row in batch {
            if let Some(id) = row.row {
                let kind = if row.is_dead_lettered() { &mut dead } else { &mut by_table };
                kind.entry(id.table).or_default().push(id.id);
            }
        }
        for (index, ids) in dead {
            self.client
                .execute(
                    &format!(
                        "insert into {} (outbox, id) select $1, unnest($2::uuid[]) on conflict do nothing",
                        self.state.dead_rows()
                    ),
                    &[&self.tables[index].qualified(), &ids],
                )
                .await?;
        }
        for (index, ids) in by_table {
            let table = &self.tables[index];
            if self.retain {
                self.client
                    .execute(
                        &format!(
                            "insert into {} (outbox, id) select $1, unnest($2::uuid[]) on conflict do nothing",
                            self.state.relayed_rows()
                        ),
                        &[&table.qualified(), &ids],
                    )
                    .await?;
            } else {
                let deleted = self
                    .client
                    .execute(&format!("delete from {} where id = any($1::uuid[])", table.qualified()), &[&ids])
                    .await?;
                self.metrics.outbox_deleted.inc_by(deleted);
            }
        }
        Ok(())
    }
}
