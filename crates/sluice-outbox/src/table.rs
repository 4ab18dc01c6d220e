/// Where an outbox lives: `schema.table`, both plain identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxTable {
    pub schema: String,
    pub table: String,
}

impl OutboxTable {
    /// Parses `table` or `schema.table`; only `[a-z_][a-z0-9_]*` is accepted,
    /// so the name can be spliced into SQL safely.
    pub fn parse(name: &str) -> Result<Self, String> {
        let (schema, table) = name.split_once('.').unwrap_or(("public", name));
        for part in [schema, table] {
            let mut chars = part.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                return Err(format!("`{name}` is not a plain lower-case [schema.]table name"));
            }
        }
        Ok(Self { schema: schema.into(), table: table.into() })
    }

    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }
}

impl Default for OutboxTable {
    fn default() -> Self {
        Self { schema: "public".into(), table: "outbox".into() }
    }
}

/// Creates `schema` when missing. Looks first: `CREATE SCHEMA IF NOT EXISTS`
/// needs CREATE on the database even when the schema exists, which a
/// least-privilege role lacks. `schema` must be a plain identifier.
pub async fn ensure_schema<C: tokio_postgres::GenericClient>(
    client: &C,
    schema: &str,
) -> Result<(), tokio_postgres::Error> {
    let exists = client.query_opt("select 1 from pg_namespace where nspname = $1", &[&schema]).await?.is_some();
    if !exists {
        client.batch_execute(&format!("create schema {schema}")).await?;
    }
    Ok(())
}

/// The relay's database role (deploy/sql/roles.sql).
pub const RELAY_ROLE: &str = "sluice_relay";

/// Creates the outbox table (and its schema) when missing. When the relay's
/// role exists, grants it what it needs on the table and nothing more:
/// SELECT (snapshots) and DELETE (rows the broker acknowledged).
pub async fn ensure_table<C: tokio_postgres::GenericClient>(
    client: &C,
    table: &OutboxTable,
) -> Result<(), tokio_postgres::Error> {
    ensure_schema(client, &table.schema).await?;
    client
        .batch_execute(&format!(
            "create table if not exists {q} (
                 id uuid primary key,
                 aggregatetype text not null,
                 aggregateid text not null,
                 type text not null,
                 payload bytea,
                 aggregate_version bigint not null,
                 created_at timestamptz not null default now(),
                 headers jsonb not null default '{{}}'::jsonb
             )",
            q = table.qualified()
        ))
        .await?;
    let relay_role = client.query_opt("select 1 from pg_roles where rolname = $1", &[&RELAY_ROLE]).await?.is_some();
    if relay_role {
        client.batch_execute(&format!("grant select, delete on {} to {RELAY_ROLE}", table.qualified())).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_plain_identifiers() {
        assert_eq!(OutboxTable::parse("outbox").map(|t| t.qualified()), Ok("public.outbox".into()));
        assert_eq!(OutboxTable::parse("cms.events_out").map(|t| t.qualified()), Ok("cms.events_out".into()));
        assert!(OutboxTable::parse("x; drop table y").is_err());
        assert!(OutboxTable::parse("Outbox").is_err());
        assert!(OutboxTable::parse("").is_err());
    }
}
