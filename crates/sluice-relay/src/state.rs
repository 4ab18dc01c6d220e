//! The relay's own tables, in its state schema: slot bookkeeping (which
//! tables the slot's snapshot covered), the outbox rows relayed but kept
//! for the retention, and the rows dead-lettered.

use anyhow::Context;
use tokio_postgres::Client;

pub(crate) struct StateTables {
    pub schema: String,
}

impl StateTables {
    pub fn slots(&self) -> String {
        format!("{}.slots", self.schema)
    }
    pub fn relayed_rows(&self) -> String {
        format!("{}.relayed_rows", self.schema)
    }
    pub fn dead_rows(&self) -> String {
        format!("{}.dead_rows", self.schema)
    }

    /// SQL condition (for an outbox table aliased `o`, whose qualified name
    /// is the text parameter `$outbox`) that keeps out dead-lettered rows.
    pub fn not_dead(&self, outbox_param: &str) -> String {
        format!("not exists (select 1 from {} d where d.outbox = {outbox_param} and d.id = o.id)", self.dead_rows())
    }

    /// Creates the schema and tables when missing.
    pub async fn ensure(&self, client: &Client) -> anyhow::Result<()> {
        sluice_outbox::ensure_schema(client, &self.schema).await.context("create the relay's state schema")?;
        client
            .batch_execute(&format!(
                "create table if not exists {slots} (
                     slot text primary key,
                     created_at timestamptz not null default now(),
                     snapshot_completed_at timestamptz
                 );
                 -- The outbox tables the slot's snapshot covered.
                 alter table {slots} add column if not exists tables text[];
                 create table if not exists {relayed} (
                     outbox text not null,
                     id uuid not null,
                     relayed_at timestamptz not null default now(),
                     primary key (outbox, id)
                 );
                 create index if not exists relayed_rows_at on {relayed} (outbox, relayed_at);
                 -- Rows sent to the dead-letter topic: kept in the outbox,
                 -- skipped by snapshots and replays.
                 create table if not exists {dead} (
                     outbox text not null,
                     id uuid not null,
                     dead_at timestamptz not null default now(),
                     primary key (outbox, id)
                 );",
                slots = self.slots(),
                relayed = self.relayed_rows(),
                dead = self.dead_rows()
            ))
            .await
            .context("create the relay's state tables")?;
        Ok(())
    }
}
