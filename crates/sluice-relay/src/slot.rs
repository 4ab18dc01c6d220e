//! Slot bookkeeping. A slot created now only streams changes from now on, so
//! the outbox rows already there are relayed from the slot's exported
//! snapshot. A slot whose snapshot never completed (the relay died during it)
//! would silently stream with a gap: it is dropped and made again; so is a
//! slot whose snapshot did not cover a table added to the configuration
//! since (its existing rows would never be relayed). Rows not yet relayed
//! never leave the outbox, so a new snapshot loses nothing; rows relayed but
//! still in the outbox are sent again (consumers skip versions they have).
//! The caller holds the relay lock, so no other relay plans at the same time.

use crate::state::StateTables;
use anyhow::Context;
use tokio_postgres::Client;

/// What the relay must do before streaming.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SlotPlan {
    /// The slot exists and its snapshot was relayed: just stream.
    Resume,
    /// Create the slot and relay its snapshot first.
    CreateWithSnapshot,
}

pub(crate) async fn plan(
    client: &Client,
    state: &StateTables,
    slot: &str,
    tables: &[String],
) -> anyhow::Result<SlotPlan> {
    let slots = state.slots();
    let found = client
        .query_opt(
            "select wal_status, coalesce(database::text, ''), database is not distinct from current_database()
             from pg_replication_slots where slot_name = $1",
            &[&slot],
        )
        .await
        .context("read pg_replication_slots")?;
    // Slot names are global to the server, this relay's state is not: a slot
    // of another database is never judged (nor dropped) from here.
    if let Some(r) = &found {
        let (database, ours): (String, bool) = (r.get(1), r.get(2));
        anyhow::ensure!(
            ours,
            "replication slot {slot} belongs to database `{database}`, not to this relay's database: \
             set SLUICE_SLOT to a slot name of its own for each database"
        );
    }
    let wal_status: Option<Option<String>> = found.map(|r| r.get(0));
    let exists = wal_status.is_some();
    if wal_status.flatten().as_deref() == Some("lost") {
        tracing::error!(
            slot,
            "replication slot was INVALIDATED (wal_status=lost: the WAL it needed was removed, see max_slot_wal_keep_size); \
             dropping it and relaying the outbox again from a fresh snapshot. Unrelayed rows are still in the outbox, \
             so nothing is lost; consumers skip the re-sent versions they already have"
        );
        client.execute("select pg_drop_replication_slot($1)", &[&slot]).await.context("drop the invalidated slot")?;
        client.execute(&format!("delete from {slots} where slot = $1"), &[&slot]).await?;
        return insert_pending(client, &slots, slot).await;
    }
    // (tables is null for slots made before tables were recorded: taken as covering all.)
    let covered: Option<Option<Vec<String>>> = client
        .query_opt(
            &format!("select tables from {slots} where slot = $1 and snapshot_completed_at is not null"),
            &[&slot],
        )
        .await?
        .map(|r| r.get(0));
    let missing: Vec<&String> = match &covered {
        Some(Some(covered)) => tables.iter().filter(|t| !covered.contains(t)).collect(),
        _ => Vec::new(),
    };
    if exists && covered.is_some() && missing.is_empty() {
        return Ok(SlotPlan::Resume);
    }
    if exists {
        if covered.is_some() {
            tracing::warn!(
                slot, added = ?missing,
                "outbox tables were added since the slot's snapshot; dropping the slot to snapshot every table again \
                 (rows still in the outbox are sent again; consumers skip versions they have)"
            );
        } else {
            tracing::warn!(slot, "slot exists but its initial snapshot never completed; dropping it to snapshot again");
        }
        // Fails while another relay streams from it; the caller retries.
        client
            .execute("select pg_drop_replication_slot($1)", &[&slot])
            .await
            .with_context(|| format!("drop incomplete slot {slot}"))?;
    }
    insert_pending(client, &slots, slot).await
}

/// Records that the slot's snapshot has not completed (yet).
pub(crate) async fn mark_snapshot_pending(client: &Client, state: &StateTables, slot: &str) -> anyhow::Result<()> {
    insert_pending(client, &state.slots(), slot).await.map(|_| ())
}

async fn insert_pending(client: &Client, slots: &str, slot: &str) -> anyhow::Result<SlotPlan> {
    client
        .execute(
            &format!(
                "insert into {slots} (slot) values ($1)
                 on conflict (slot) do update set created_at = now(), snapshot_completed_at = null, tables = null"
            ),
            &[&slot],
        )
        .await?;
    Ok(SlotPlan::CreateWithSnapshot)
}

/// Records the slot's snapshot as complete, covering `tables`.
pub(crate) async fn mark_snapshot_complete(
    client: &Client,
    state: &StateTables,
    slot: &str,
    tables: &[String],
) -> anyhow::Result<()> {
    let sql = format!("update {} set snapshot_completed_at = now(), tables = $2 where slot = $1", state.slots());
    client.execute(&sql, &[&slot, &tables]).await.context("record the completed snapshot")?;
    Ok(())
}

/// Records the tables this session relays. A table dropped from the
/// configuration is then no longer counted as covered, so adding it back
/// later brings a new snapshot of the rows written meanwhile.
pub(crate) async fn record_streamed_tables(
    client: &Client,
    state: &StateTables,
    slot: &str,
    tables: &[String],
) -> anyhow::Result<()> {
    let sql = format!("update {} set tables = $2 where slot = $1 and snapshot_completed_at is not null", state.slots());
    client.execute(&sql, &[&slot, &tables]).await.context("record the tables this session relays")?;
    Ok(())
}
