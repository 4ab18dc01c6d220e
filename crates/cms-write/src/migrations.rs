//! Versioned schema migrations, applied in order, once, under an advisory lock
//! so that several replicas can start together.

use crate::WRITE_SCHEMA;
use anyhow::Context;
use sluice_outbox::OutboxTable;
use tokio_postgres::Client;

/// (version, name, sql). Never edit an applied migration: add a new one.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "articles", include_str!("../migrations/0001_articles.sql")),
    (2, "cms write side", include_str!("../migrations/0002_cms_write_side.sql")),
    (3, "changes order", include_str!("../migrations/0003_changes_order.sql")),
];

/// Advisory lock id for migrations ("sluice" on a phone keypad, 758423).
const LOCK_KEY: i64 = 758_423_001;

/// Applies the pending migrations and creates the outbox table.
pub async fn migrate(client: &mut Client, outbox: &OutboxTable) -> anyhow::Result<Vec<i32>> {
    let tx = client.transaction().await.context("begin migration")?;
    tx.execute("select pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await.context("take migration lock")?;
    // Usually created beforehand by an administrator, owned by the command
    // API's role (deploy/sql/roles.sql); created here for development set-ups.
    sluice_outbox::ensure_schema(&tx, WRITE_SCHEMA).await.with_context(|| format!("create schema {WRITE_SCHEMA}"))?;
    tx.batch_execute(&format!("set local search_path = {WRITE_SCHEMA}")).await?;
    tx.batch_execute(
        "create table if not exists sluice_migrations (
             version int primary key,
             name text not null,
             applied_at timestamptz not null default now()
         )",
    )
    .await
    .context("create sluice_migrations")?;
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        let done = tx.query_opt("select 1 from sluice_migrations where version = $1", &[version]).await?.is_some();
        if done {
            continue;
        }
        tx.batch_execute(sql).await.with_context(|| format!("migration {version} ({name})"))?;
        tx.execute("insert into sluice_migrations (version, name) values ($1, $2)", &[version, name]).await?;
        applied.push(*version);
    }
    sluice_outbox::ensure_table(&tx, outbox).await.context("create outbox table")?;
    tx.commit().await.context("commit migrations")?;
    Ok(applied)
}
