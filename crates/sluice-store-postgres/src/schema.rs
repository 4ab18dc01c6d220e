//! The read schema: query-first tables, created idempotently at the start of
//! every session, under an advisory lock so that replicas can start together.

use crate::ledger::LEDGER_TABLES;
use anyhow::Context;
use tokio_postgres::Transaction;

/// Advisory lock class for the read model's DDL; the object id is the hash
/// of the schema name, so generations in other schemas do not wait on it.
const DDL_LOCK_CLASS: i32 = 758_423;

/// A validated schema name, quoted for SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaName {
    name: String,
}

impl SchemaName {
    /// Lower-case letters, digits and `_`, starting with a letter or `_`, at
    /// most 63 bytes: a name that needs no quoting and means the same to every
    /// tool (psql, dashboards) as it does here.
    pub fn parse(name: &str) -> Result<Self, String> {
        let valid_start = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        let valid_rest = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_start || !valid_rest || name.len() > 63 || name.starts_with("pg_") {
            return Err(format!(
                "`{name}` is not a schema name: use lower-case letters, digits and `_` (at most 63, not starting \
                 with a digit or pg_)"
            ));
        }
        Ok(Self { name: name.to_string() })
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// `"<schema>".<table>`
    pub fn table(&self, table: &str) -> String {
        format!("\"{}\".{table}", self.name)
    }
}

/// The read model's tables. Every statement is idempotent and runs at the
/// start of every session, so a table someone dropped is there again before
/// the projection (which then finds its marker gone) rebuilds. Changes to come
/// are added the same way (`alter table ... add column if not exists`).
/// After the ledger's ([`LEDGER_TABLES`]).
const TABLES: &str = r#"
create table if not exists {s}.articles (
    id text primary key,
    slug text not null,
    title text not null,
    body text not null,
    author_id text,
    -- The author's current name (null until the author arrives, or once erased).
    author_name text,
    status text not null,
    tags text[] not null default '{}',
    created_at timestamptz not null,
    updated_at timestamptz not null,
    published_at timestamptz,
    scheduled_at timestamptz,
    version bigint not null,
    search tsvector generated always as (
        setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', body), 'B')
    ) stored
)
-- Room on each page for HOT updates: a rename rewrites every article of the
-- author without touching an indexed column, and then no index changes
-- (measured: 20 renames of 100 articles each in a 500-record batch, batch
-- p50 400 ms at the default 100, 73 ms at 80).
with (fillfactor = 80);
-- Published, newest first.
create index if not exists articles_by_status_published on {s}.articles (status, published_at desc);
create index if not exists articles_by_tag on {s}.articles using gin (tags);
create index if not exists articles_by_author on {s}.articles (author_id, published_at desc);
-- Not unique: a slug can move from one article to another, and the two
-- records may arrive in either order (different partitions).
create index if not exists articles_by_slug on {s}.articles (slug);
create index if not exists articles_search on {s}.articles using gin (search);

create table if not exists {s}.authors (
    id text primary key,
    name text not null,
    bio text,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    version bigint not null,
    drafts integer not null default 0,
    scheduled integer not null default 0,
    published integer not null default 0,
    archived integer not null default 0
);

-- Aggregates of other types, as their snapshot.
create table if not exists {s}.documents (
    aggregate_type text not null,
    id text not null,
    version bigint not null,
    doc jsonb not null,
    primary key (aggregate_type, id)
);

-- Erased aggregates: the version they were erased at, so that no late,
-- older record brings them back.
create table if not exists {s}.erased (
    aggregate_type text not null,
    id text not null,
    version bigint not null,
    erased_at timestamptz not null default now(),
    primary key (aggregate_type, id)
);
"#;

/// Creates the schema when missing (only possible for a role allowed to;
/// `deploy/sql/roles.sql` creates `cms_read` for the projector's role) and the
/// tables, in the caller's transaction.
pub async fn ensure(tx: &Transaction<'_>, schema: &SchemaName) -> anyhow::Result<()> {
    create_tables(tx, schema, &[LEDGER_TABLES, TABLES].concat()).await
}

/// Creates the schema and the tables and indexes of `ddl` (the ledger's and
/// the read model's; `{s}.` or no schema before a name: the connection's
/// search path is the schema) when missing. A data table that was gone while
/// positions survived means what the positions say was applied is not there
/// any more: every projection of the schema starts again from the beginning
/// (the version guard makes the replay of what is still there harmless).
pub async fn create_tables(tx: &Transaction<'_>, schema: &SchemaName, ddl: &str) -> anyhow::Result<()> {
    // Sessions start at every rebalance: when everything is there, take no
    // DDL locks (`create index if not exists` locks its table even then).
    let expected: Vec<&str> = relations(ddl).into_iter().map(|(_, name)| name).collect();
    if present(tx, schema, &expected).await?.len() == expected.len() {
        return Ok(());
    }
    lock_and_create(tx, schema).await?;
    let before = present(tx, schema, &expected).await?;
    tx.batch_execute(&ddl.replace("{s}", &format!("\"{}\"", schema.as_str())))
        .await
        .context("create the read model's tables")?;
    let ledger: Vec<&str> = relations(LEDGER_TABLES).into_iter().map(|(_, name)| name).collect();
    let lost: Vec<&str> = relations(ddl)
        .into_iter()
        .filter(|(table, name)| *table && !ledger.contains(name) && !before.iter().any(|b| b == name))
        .map(|(_, name)| name)
        .collect();
    if !lost.is_empty() && before.iter().any(|b| b == "positions") {
        tracing::warn!(schema = schema.as_str(), tables = ?lost, "read model tables were gone: every projection in this schema rebuilds from the beginning");
        tx.batch_execute(&format!(
            "delete from {}; delete from {}",
            schema.table("positions"),
            schema.table("projections")
        ))
        .await?;
    }
    Ok(())
}

/// Takes the schema's DDL lock for the rest of `tx` and creates the schema
/// when missing.
pub async fn lock_and_create(tx: &Transaction<'_>, schema: &SchemaName) -> anyhow::Result<()> {
    tx.execute("select pg_advisory_xact_lock($1, hashtext($2))", &[&DDL_LOCK_CLASS, &schema.as_str()])
        .await
        .context("take the read model's DDL lock")?;
    // "already exists, skipping" notices are noise.
    tx.batch_execute("set local client_min_messages = warning").await?;
    let exists = tx.query_opt("select 1 from pg_namespace where nspname = $1", &[&schema.as_str()]).await?.is_some();
    if !exists {
        tx.batch_execute(&format!("create schema \"{}\"", schema.as_str())).await.with_context(|| {
            format!(
                "schema {0} does not exist and cannot be created by this role; an administrator creates it: \
                 create schema {0} authorization <the projector's role> (deploy/sql/roles.sql)",
                schema.as_str()
            )
        })?;
    }
    Ok(())
}

/// Which of `names` exist in `schema`.
async fn present(tx: &Transaction<'_>, schema: &SchemaName, names: &[&str]) -> anyhow::Result<Vec<String>> {
    let rows = tx
        .query(
            "select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
              where n.nspname = $1 and c.relname = any($2)",
            &[&schema.as_str(), &names],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The tables (true) and indexes (false) `ddl` creates, by name.
fn relations(ddl: &str) -> Vec<(bool, &str)> {
    ddl.lines()
        .filter_map(|line| {
            let line = line.trim();
            // ASCII lower-casing keeps byte offsets: names are cut from `line`.
            let lower = line.to_ascii_lowercase();
            let (table, prefix) = [(true, "create table if not exists "), (false, "create index if not exists ")]
                .into_iter()
                .find(|(_, p)| lower.starts_with(p))?;
            let rest = &line[prefix.len()..];
            let rest = rest.strip_prefix("{s}.").unwrap_or(rest);
            rest.split([' ', '(']).next().map(|name| (table, name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_and_index_is_looked_for() {
        let ddl = [LEDGER_TABLES, TABLES].concat();
        let names: Vec<&str> = relations(&ddl).into_iter().map(|(_, n)| n).collect();
        assert_eq!(
            names,
            [
                "projections",
                "positions",
                "articles",
                "articles_by_status_published",
                "articles_by_tag",
                "articles_by_author",
                "articles_by_slug",
                "articles_search",
                "authors",
                "documents",
                "erased"
            ]
        );
        // A user's kit tables, unqualified and in any case, are tables too.
        assert_eq!(
            relations("CREATE TABLE IF NOT EXISTS tags (t text);\ncreate index if not exists tags_t on tags (t);"),
            [(true, "tags"), (false, "tags_t")]
        );
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert_eq!(SchemaName::parse("cms_read").map(|s| s.table("articles")), Ok("\"cms_read\".articles".into()));
        assert!(SchemaName::parse("cms_read_2").is_ok());
        assert!(SchemaName::parse("_x").is_ok());
        for bad in ["", "Cms", "1x", "a-b", "a\"b", "pg_x", "a.b", &"x".repeat(64)] {
            assert!(SchemaName::parse(bad).is_err(), "{bad}");
        }
    }
}
