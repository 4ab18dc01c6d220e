//! Start-up checks that turn a misconfigured database into one error line
//! that says what to fix, instead of a standby that waits forever.

use anyhow::Context;
use sluice_outbox::OutboxTable;
use tokio_postgres::Client;

pub(crate) async fn check(client: &Client, tables: &[OutboxTable]) -> anyhow::Result<()> {
    let row = client
        .query_one(
            "select current_user::text, rolreplication or rolsuper, current_setting('wal_level')
             from pg_roles where rolname = current_user",
            &[],
        )
        .await
        .context("read the relay's role")?;
    let (role, replication, wal_level): (String, bool, String) = (row.get(0), row.get(1), row.get(2));
    anyhow::ensure!(
        replication,
        "role {role} lacks the REPLICATION attribute needed to read a replication slot: ALTER ROLE {role} REPLICATION"
    );
    anyhow::ensure!(
        wal_level == "logical",
        "wal_level is {wal_level}; logical replication needs wal_level = logical \
         (ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL)"
    );
    for table in tables {
        let q = table.qualified();
        let row = client
            .query_opt(
                "select has_table_privilege(c.oid, 'SELECT'), has_table_privilege(c.oid, 'DELETE'),
                        (select format_type(a.atttypid, a.atttypmod) from pg_attribute a
                         where a.attrelid = c.oid and a.attname = 'id' and not a.attisdropped)
                 from pg_class c join pg_namespace n on n.oid = c.relnamespace
                 where n.nspname = $1 and c.relname = $2",
                &[&table.schema, &table.table],
            )
            .await
            .with_context(|| format!("check outbox table {q}"))?;
        let Some(row) = row else {
            anyhow::bail!(
                "outbox table {q} does not exist (SLUICE_OUTBOX_TABLES); create it first (the writing service's migrations do)"
            )
        };
        let (select, delete, id_type): (bool, bool, Option<String>) = (row.get(0), row.get(1), row.get(2));
        anyhow::ensure!(
            select && delete,
            "role {role} needs SELECT (snapshots) and DELETE (removing relayed rows) on {q}: GRANT SELECT, DELETE ON {q} TO {role}"
        );
        anyhow::ensure!(
            id_type.as_deref() == Some("uuid"),
            "outbox table {q} must have an `id uuid` column (it has {}): relayed rows are deleted by id",
            id_type.as_deref().unwrap_or("none")
        );
    }
    Ok(())
}
