//! The relay's own tables, in its state schema: slot bookkeeping, the
//! heartbeat table (published, so idle periods still confirm WAL), and the
//! transactions whose outbox rows were relayed (for housekeeping).

use anyhow::Context;
use tokio_postgres::Client;

pub(crate) struct StateTables {
    pub schema: String,
}

impl StateTables {
    pub fn slots(&self) -> String {
        format!("{}.slots", self.schema)
    }
    pub fn heartbeat(&self) -> String {
        format!("{}.heartbeat", self.schema)
    }
    pub fn relayed(&self) -> String {
        format!("{}.relayed", self.schema)
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
                 create table if not exists {heartbeat} (
                     slot text not null,
                     beat_at timestamptz not null default now()
                 );
                 create table if not exists {relayed} (
                     xid bigint not null,
                     relayed_at timestamptz not null default now()
                 );
                 create index if not exists relayed_at on {relayed} (relayed_at);",
                slots = self.slots(),
                heartbeat = self.heartbeat(),
                relayed = self.relayed()
            ))
            .await
            .context("create the relay's state tables")?;
        Ok(())
    }
}
