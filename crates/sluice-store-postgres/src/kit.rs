//! A projection of your own in PostgreSQL: you write your tables and how a
//! batch of changes goes into them ([`PgProjection`]); [`KitStore`] does the
//! rest of the [`ProjectionStore`] contract, the same way the CMS read model
//! does (one transaction per batch: the schema's write lock, the marker, the
//! compare-and-set of every expected position, your `apply`, the new
//! positions). `examples/tag-counts` is a whole service built on it.
//!
//! **The version guard is yours.** Records come at least once: duplicates,
//! replays after a restart, and a key's older record after its newer one
//! (a compacted topic read again from the start) all reach `apply`. Keep
//! each aggregate's last applied version in your tables and change nothing
//! for a change at or below it. An erasure (`document` is `None`) must
//! remove what the aggregate contributed and keep its version, so that no
//! late, older record brings it back.

use crate::ledger::{LEDGER_TABLES, Ledger};
use crate::schema;
use sluice_store::{ApplyOutcome, Batch, Position, ProjectionStore};
use std::collections::{BTreeMap, HashMap};

pub use sluice_store::Change;
pub use tokio_postgres::Transaction;

/// A user's projection: its tables and its apply logic.
pub trait PgProjection: Send + Sync + 'static {
    /// Idempotent statements (`create table if not exists ...`) that create
    /// your tables; run at the start of every session, in the session's
    /// transaction. Unqualified names are in the store's schema (the
    /// connection's `search_path`).
    fn tables(&self) -> &str;

    /// Applies `changes` (one topic's, in offset order) inside the batch's
    /// transaction, which also writes the positions: an error rolls back
    /// both and the batch is retried. Returns how many changes were newer
    /// than what your tables held (for the applied-changes metric).
    fn apply(&self, tx: &Transaction<'_>, changes: &[Change]) -> impl Future<Output = anyhow::Result<usize>> + Send;
}

/// A [`ProjectionStore`] of a [`PgProjection`] in one schema: your tables
/// (unless your SQL names another schema), the marker and the positions.
pub struct KitStore<P> {
    ledger: Ledger,
    projection: P,
}

impl<P: PgProjection> KitStore<P> {
    /// `projection`'s store under the name `name` (its positions and marker
    /// are stored under it) in `schema`, which is created when missing if the
    /// role may. Connects lazily.
    pub fn connect(database_url: &str, schema: &str, name: &str, projection: P) -> anyhow::Result<Self> {
        let ledger = Ledger::connect(database_url, schema, name, &format!("sluice-kit-{name}"))?;
        Ok(Self { ledger, projection })
    }
}

impl<P: PgProjection> ProjectionStore for KitStore<P> {
    async fn start_session(&self, topics: &[String]) -> anyhow::Result<BTreeMap<String, HashMap<i32, Position>>> {
        let schema = self.ledger.schema();
        self.ledger
            .start_session(topics, async |tx| {
                schema::create_tables(tx, schema, &[LEDGER_TABLES, "\n", self.projection.tables()].concat()).await
            })
            .await
    }

    async fn apply(&self, batch: &Batch) -> anyhow::Result<ApplyOutcome> {
        self.ledger
            .apply(async |client| {
                let tx = client.transaction().await?;
                self.ledger.lock(&tx).await?;
                if let Some(refused) = self.ledger.check(&tx, batch).await? {
                    return Ok(refused);
                }
                let mut changed: BTreeMap<String, usize> =
                    batch.expected.keys().chain(batch.positions.keys()).map(|t| (t.clone(), 0)).collect();
                for (topic, changes) in batch.changes.iter().filter(|(_, c)| !c.is_empty()) {
                    changed.insert(topic.clone(), self.projection.apply(&tx, changes).await?);
                }
                self.ledger.write_positions(&tx, batch).await?;
                tx.commit().await?;
                Ok(ApplyOutcome::Applied { changed })
            })
            .await
    }
}
