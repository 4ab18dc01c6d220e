//! Slot bookkeeping. A slot created now only streams changes from now on, so
//! the outbox rows already there are relayed from the slot's exported
//! snapshot. A slot whose snapshot never completed (the relay died during it)
//! would silently stream with a gap: it is dropped and made again.

use anyhow::Context;
use tokio_postgres::Client;

const STATE_TABLE: &str = "sluice_relay_slots";

/// What the relay must do before streaming.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SlotPlan {
    /// The slot exists and its snapshot was relayed: just stream.
    Resume,
    /// Create the slot and relay its snapshot first.
    CreateWithSnapshot,
}

pub(crate) async fn plan(client: &Client, slot: &str) -> anyhow::Result<SlotPlan> {
    client
        .batch_execute(&format!(
            "create table if not exists {STATE_TABLE} (
                 slot text primary key,
                 created_at timestamptz not null default now(),
                 snapshot_completed_at timestamptz
             )"
        ))
        .await
        .context("create the relay state table")?;
    let exists = client
        .query_opt("select 1 from pg_replication_slots where slot_name = $1", &[&slot])
        .await
        .context("read pg_replication_slots")?
        .is_some();
    let completed = client
        .query_opt(
            &format!("select 1 from {STATE_TABLE} where slot = $1 and snapshot_completed_at is not null"),
            &[&slot],
        )
        .await?
        .is_some();
    if exists && completed {
        return Ok(SlotPlan::Resume);
    }
    if exists {
        tracing::warn!(slot, "slot exists but its initial snapshot never completed; dropping it to snapshot again");
        // Fails while another relay streams from it; the caller retries.
        client
            .execute("select pg_drop_replication_slot($1)", &[&slot])
            .await
            .with_context(|| format!("drop incomplete slot {slot}"))?;
    }
    client
        .execute(
            &format!(
                "insert into {STATE_TABLE} (slot) values ($1)
                 on conflict (slot) do update set created_at = now(), snapshot_completed_at = null"
            ),
            &[&slot],
        )
        .await?;
    Ok(SlotPlan::CreateWithSnapshot)
}

pub(crate) async fn mark_snapshot_complete(client: &Client, slot: &str) -> anyhow::Result<()> {
    client
        .execute(&format!("update {STATE_TABLE} set snapshot_completed_at = now() where slot = $1"), &[&slot])
        .await
        .context("record the completed snapshot")?;
    Ok(())
}
