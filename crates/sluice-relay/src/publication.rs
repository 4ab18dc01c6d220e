//! The publication the slot reads: created, or completed with missing tables,
//! when the relay's role may; otherwise an error that says what to run.

use anyhow::Context;
use sluice_outbox::OutboxTable;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

pub(crate) async fn ensure_publication(client: &Client, name: &str, tables: &[OutboxTable]) -> anyhow::Result<()> {
    let list: Vec<String> = tables.iter().map(OutboxTable::qualified).collect();
    let exists = client
        .query_opt("select 1 from pg_publication where pubname = $1", &[&name])
        .await
        .context("read pg_publication")?
        .is_some();
    if !exists {
        // Only inserts are relayed; housekeeping deletes must not be published.
        let sql = format!("create publication {name} for table {} with (publish = 'insert')", list.join(", "));
        match client.batch_execute(&sql).await {
            Ok(()) => tracing::info!(publication = name, tables = ?list, "created publication"),
            // Another relay created it at the same moment.
            Err(e) if e.code() == Some(&SqlState::DUPLICATE_OBJECT) => {}
            Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => anyhow::bail!(
                "publication {name} does not exist and this role may not create it ({}): \
                 run as an administrator (deploy/sql/roles.sql does, once the outbox exists): {sql}",
                db_message(&e)
            ),
            Err(e) => return Err(e).with_context(|| format!("create publication {name}")),
        }
    }
    for table in tables {
        let present = client
            .query_opt(
                "select 1 from pg_publication_tables where pubname = $1 and schemaname = $2 and tablename = $3",
                &[&name, &table.schema, &table.table],
            )
            .await
            .context("read pg_publication_tables")?
            .is_some();
        if !present {
            let sql = format!("alter publication {name} add table {}", table.qualified());
            match client.batch_execute(&sql).await {
                Ok(()) => tracing::info!(publication = name, table = %table.qualified(), "added table to publication"),
                Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => anyhow::bail!(
                    "publication {name} lacks {} and this role may not add it ({}): run as an administrator: {sql}",
                    table.qualified(),
                    db_message(&e)
                ),
                Err(e) => return Err(e).with_context(|| format!("add {} to publication {name}", table.qualified())),
            }
        }
    }
    Ok(())
}

fn db_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string())
}
