//! The publication the slot reads: created, or completed with missing tables.

use anyhow::Context;
use sluice_outbox::OutboxTable;
use tokio_postgres::Client;

pub(crate) async fn ensure_publication(client: &Client, name: &str, tables: &[OutboxTable]) -> anyhow::Result<()> {
    let exists = client
        .query_opt("select 1 from pg_publication where pubname = $1", &[&name])
        .await
        .context("read pg_publication")?
        .is_some();
    if !exists {
        let list: Vec<String> = tables.iter().map(OutboxTable::qualified).collect();
        // Only inserts are relayed; housekeeping deletes must not be published.
        let sql = format!("create publication {name} for table {} with (publish = 'insert')", list.join(", "));
        match client.batch_execute(&sql).await {
            Ok(()) => tracing::info!(publication = name, tables = ?list, "created publication"),
            // Another relay created it at the same moment.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_OBJECT) => {}
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
            client
                .batch_execute(&format!("alter publication {name} add table {}", table.qualified()))
                .await
                .with_context(|| format!("add {} to publication {name}", table.qualified()))?;
            tracing::info!(publication = name, table = %table.qualified(), "added table to publication");
        }
    }
    Ok(())
}
