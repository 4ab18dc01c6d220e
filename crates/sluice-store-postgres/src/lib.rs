//! A read model in PostgreSQL: query-first tables in one schema (a
//! generation: a blue/green rebuild builds the next one in another schema),
//! written one transaction per batch together with the projection's
//! positions.
//!
//! Tables (see `schema.rs`): `articles` (with the author's name and a
//! full-text `search` column), `authors` (with article counts by status),
//! `documents` (aggregates of any other type, as `jsonb`), `erased` (the
//! version each erased aggregate was erased at), `positions` and
//! `projections` (the marker). Every row carries its aggregate's version; a
//! change is written only if it is newer than both the row and the erasure
//! marker, so replays, duplicates and reordering change nothing.

mod plan;
mod rows;
mod schema;
mod sql;

pub use schema::SchemaName;

use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use rows::{ARTICLE, AUTHOR, Articles, Authors, Documents, Erasures};
use sluice_store::{ApplyOutcome, Batch, Position, ProjectionStore};
use sql::Statements;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::error::SqlState;

/// The schema a projector writes to unless told otherwise.
pub const DEFAULT_SCHEMA: &str = "cms_read";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline of one session start or one batch, connecting included. Far above
/// what a batch takes; it is there for a server that stopped answering
/// without closing the connection (frozen, or a network that drops packets):
/// the connection is then thrown away and the batch retried.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// A projector that hangs inside a transaction holds the schema's write
/// lock; the server ends such a session after this.
const IDLE_IN_TRANSACTION_TIMEOUT_MS: u32 = 30_000;

pub struct PostgresStore {
    pool: Pool,
    schema: SchemaName,
    projection: String,
    sql: Statements,
}

impl PostgresStore {
    /// A store for `projection` in `schema`. Connects lazily: a database
    /// that is not up yet is waited for by the projector's retries.
    pub fn connect(database_url: &str, schema: &str, projection: &str) -> anyhow::Result<Self> {
        let schema = SchemaName::parse(schema).map_err(|e| anyhow::anyhow!(e))?;
        // The URL is a secret: neither it nor the parser's message (which may quote it) goes into errors.
        let mut config = tokio_postgres::Config::from_str(database_url)
            .map_err(|_| anyhow::anyhow!("the database URL is not a valid PostgreSQL URL"))?;
        config.application_name("sluice-projector-postgres");
        config.connect_timeout(CONNECT_TIMEOUT);
        config.keepalives(true).keepalives_idle(Duration::from_secs(30));
        config.options(format!("-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}"));
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager).max_size(2).build().context("database pool")?;
        let sql = Statements::new(&schema);
        Ok(Self { pool, schema, projection: projection.to_string(), sql })
    }

    pub fn schema(&self) -> &SchemaName {
        &self.schema
    }

    /// Runs `work` on a pooled connection within [`CALL_TIMEOUT`]. A
    /// connection whose work failed or timed out is closed, never reused:
    /// after a cut it may look open for a moment, and after a time-out its
    /// state is unknown.
    async fn with_client<T>(
        &self,
        what: &str,
        work: impl AsyncFnOnce(&mut Object) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut client = tokio::time::timeout(CALL_TIMEOUT, self.pool.get())
            .await
            .map_err(|_| anyhow::anyhow!("{what}: no database connection within {CALL_TIMEOUT:?}"))?
            .with_context(|| format!("{what}: connect to PostgreSQL"))?;
        match tokio::time::timeout(CALL_TIMEOUT, work(&mut client)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                drop(Object::take(client));
                Err(e.context(what.to_string()))
            }
            Err(_) => {
                drop(Object::take(client));
                anyhow::bail!("{what}: PostgreSQL did not answer within {CALL_TIMEOUT:?}; connection closed")
            }
        }
    }

    async fn apply_batch(&self, client: &mut Object, batch: &Batch) -> anyhow::Result<ApplyOutcome> {
        let sql = &self.sql;
        let keys = plan::keys(batch);
        let (types, ids): (Vec<&str>, Vec<&str>) = keys.iter().copied().unzip();
        let tx = client.transaction().await?;
        tx.batch_execute(&sql.lock).await?;
        let (marker, positions, versions) = futures::try_join!(
            tx.prepare_cached(&sql.marker),
            tx.prepare_cached(&sql.positions_for_update),
            tx.prepare_cached(&sql.stored_versions),
        )?;
        // Only after the lock: these reads see every batch committed before.
        let projection: &[&(dyn tokio_postgres::types::ToSql + Sync)] = &[&self.projection];
        let (marked, stored, versions) =
            futures::try_join!(tx.query_opt(&marker, projection), tx.query(&positions, projection), async {
                if keys.is_empty() { Ok(Vec::new()) } else { tx.query(&versions, &[&types, &ids]).await }
            },)?;
        if marked.is_none() {
            return Ok(ApplyOutcome::StoreLost);
        }
        let stored: HashMap<(String, i32), i64> =
            stored.iter().map(|r| ((r.get::<_, String>(0), r.get::<_, i32>(1)), r.get::<_, i64>(2))).collect();
        for (topic, partitions) in &batch.expected {
            for (&partition, &expected) in partitions {
                let have = stored.get(&(topic.clone(), partition)).copied();
                if have != expected {
                    return Ok(ApplyOutcome::PositionMismatch {
                        topic: topic.clone(),
                        partition,
                        expected,
                        stored: have,
                    });
                }
            }
        }

        let versions: Vec<(String, String, Option<i64>, Option<String>)> =
            versions.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect();
        let before: HashMap<plan::Key<'_>, i64> =
            versions.iter().filter_map(|(t, id, v, _)| Some(((t.as_str(), id.as_str()), (*v)?))).collect();
        let old_author: HashMap<&str, &str> = versions
            .iter()
            .filter(|(t, ..)| t == ARTICLE)
            .filter_map(|(_, id, _, author)| Some((id.as_str(), author.as_deref()?)))
            .collect();
        let plan = plan::plan(batch, &before);

        let (mut articles, mut authors, mut documents, mut erasures) =
            (Articles::default(), Authors::default(), Documents::default(), Erasures::default());
        // Articles whose author name must be looked up, authors whose articles
        // must get their (new, or no longer any) name, authors to recount.
        let (mut named_articles, mut named_authors, mut recount) = (Vec::new(), Vec::new(), BTreeSet::new());
        for change in &plan.winners {
            let id = change.aggregate_id.as_str();
            match (change.aggregate_type.as_str(), &change.document) {
                (_, None) => erasures.push(change),
                (ARTICLE, Some(doc)) => articles.push(change, doc)?,
                (AUTHOR, Some(doc)) => authors.push(change, doc)?,
                (_, Some(doc)) => documents.push(change, doc),
            }
            match change.aggregate_type.as_str() {
                ARTICLE => {
                    recount.extend(old_author.get(id).map(|a| a.to_string()));
                    if change.document.is_some() {
                        named_articles.push(id);
                    }
                }
                AUTHOR => {
                    named_authors.push(id);
                    recount.insert(id.to_string());
                }
                _ => {}
            }
        }
        recount.extend(articles.author_id.iter().flatten().cloned());
        let recount: Vec<String> = recount.into_iter().collect();

        if !authors.is_empty() {
            let a = &authors;
            let statement = tx.prepare_cached(&sql.upsert_authors).await?;
            tx.execute(&statement, &[&a.id, &a.version, &a.name, &a.bio, &a.created_at, &a.updated_at]).await?;
        }
        if !articles.is_empty() {
            let a = &articles;
            let statement = tx.prepare_cached(&sql.upsert_articles).await?;
            tx.execute(
                &statement,
                &[
                    &a.id,
                    &a.version,
                    &a.slug,
                    &a.title,
                    &a.body,
                    &a.author_id,
                    &a.status,
                    &a.tags,
                    &a.created_at,
                    &a.updated_at,
                    &a.published_at,
                    &a.scheduled_at,
                ],
            )
            .await?;
        }
        if !documents.is_empty() {
            let d = &documents;
            let statement = tx.prepare_cached(&sql.upsert_documents).await?;
            tx.execute(&statement, &[&d.aggregate_type, &d.id, &d.version, &d.doc]).await?;
        }
        if !erasures.is_empty() {
            let e = &erasures;
            let statement = tx.prepare_cached(&sql.erase).await?;
            tx.query(&statement, &[&e.aggregate_type, &e.id, &e.version]).await?;
        }
        if !named_articles.is_empty() || !named_authors.is_empty() {
            let statement = tx.prepare_cached(&sql.refresh_author_names).await?;
            tx.execute(&statement, &[&named_articles, &named_authors]).await?;
        }
        if !recount.is_empty() {
            let statement = tx.prepare_cached(&sql.recount_authors).await?;
            tx.execute(&statement, &[&recount]).await?;
        }
        let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (topic, positions) in &batch.positions {
            for p in positions {
                let at = DateTime::<Utc>::from_timestamp_millis(p.applied_at_ms).context("applied_at out of range")?;
                columns.0.push(topic.as_str());
                columns.1.push(p.partition);
                columns.2.push(p.next_offset);
                columns.3.push(at);
            }
        }
        if !columns.0.is_empty() {
            let statement = tx.prepare_cached(&sql.write_positions).await?;
            tx.execute(&statement, &[&self.projection, &columns.0, &columns.1, &columns.2, &columns.3]).await?;
        }
        tx.commit().await?;
        Ok(ApplyOutcome::Applied { changed: plan.changed })
    }
}

/// Whether `error` says the read model's schema or tables are gone (dropped
/// by someone): the store lost this projection's data.
fn tables_gone(error: &anyhow::Error) -> bool {
    error.chain().filter_map(|e| e.downcast_ref::<tokio_postgres::Error>()).any(|e| {
        matches!(e.code(), Some(code) if *code == SqlState::UNDEFINED_TABLE || *code == SqlState::INVALID_SCHEMA_NAME)
    })
}

impl ProjectionStore for PostgresStore {
    async fn start_session(&self, topics: &[String]) -> anyhow::Result<BTreeMap<String, HashMap<i32, Position>>> {
        let rows = self
            .with_client("start a session on PostgreSQL", async |client| {
                let tx = client.transaction().await?;
                schema::ensure(&tx, &self.schema).await?;
                tx.batch_execute(&self.sql.lock).await?;
                tx.execute(&self.sql.mark, &[&self.projection]).await?;
                let rows = tx.query(&self.sql.session_positions, &[&self.projection, &topics]).await?;
                tx.commit().await?;
                // The tables may have been made again: no statement prepared for the old ones stays.
                client.statement_cache.clear();
                Ok(rows)
            })
            .await?;
        let mut positions: BTreeMap<String, HashMap<i32, Position>> =
            topics.iter().map(|t| (t.clone(), HashMap::new())).collect();
        for row in rows {
            let partition: i32 = row.get(1);
            let applied_at: DateTime<Utc> = row.get(3);
            let position =
                Position { partition, next_offset: row.get(2), applied_at_ms: applied_at.timestamp_millis() };
            positions.entry(row.get(0)).or_default().insert(partition, position);
        }
        Ok(positions)
    }

    async fn apply(&self, batch: &Batch) -> anyhow::Result<ApplyOutcome> {
        let outcome = self
            .with_client("apply a batch to PostgreSQL", async |client| match self.apply_batch(client, batch).await {
                Err(e) if tables_gone(&e) => {
                    client.statement_cache.clear();
                    Ok(ApplyOutcome::StoreLost)
                }
                other => other,
            })
            .await?;
        Ok(outcome)
    }
}

/// The positions `projection` stored in `schema` for `topic`, by partition
/// (for lag: what the projection applied, next to the topic's end offsets).
pub async fn stored_positions(
    client: &impl tokio_postgres::GenericClient,
    schema: &SchemaName,
    projection: &str,
    topic: &str,
) -> anyhow::Result<HashMap<i32, Position>> {
    let sql = format!(
        "select partition, next_offset, applied_at from {} where projection = $1 and topic = $2",
        schema.table("positions")
    );
    let rows = client.query(&sql, &[&projection, &topic]).await.context("read stored positions")?;
    Ok(rows
        .iter()
        .map(|r| {
            let applied_at: DateTime<Utc> = r.get(2);
            let partition: i32 = r.get(0);
            (partition, Position { partition, next_offset: r.get(1), applied_at_ms: applied_at.timestamp_millis() })
        })
        .collect())
}
