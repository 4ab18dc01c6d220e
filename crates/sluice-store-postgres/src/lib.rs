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
//!
//! The marker, the positions and their compare-and-set (`ledger.rs`) are
//! shared with [`kit`], which stores a user's own projection the same way.

pub mod generation;
pub mod kit;
mod ledger;
mod plan;
pub mod reads;
mod rows;
mod schema;
mod sql;

pub use ledger::stored_positions;
pub use schema::SchemaName;

use deadpool_postgres::Object;
use ledger::Ledger;
use rows::{ARTICLE, AUTHOR, Articles, Authors, Documents, Erasures};
use sluice_store::{ApplyOutcome, Batch, Position, ProjectionStore};
use sql::Statements;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The schema a projector writes to unless told otherwise.
pub const DEFAULT_SCHEMA: &str = "cms_read";

pub struct PostgresStore {
    ledger: Ledger,
    sql: Statements,
}

impl PostgresStore {
    /// A store for `projection` in `schema`. Connects lazily: a database
    /// that is not up yet is waited for by the projector's retries.
    pub fn connect(database_url: &str, schema: &str, projection: &str) -> anyhow::Result<Self> {
        let ledger = Ledger::connect(database_url, schema, projection, "sluice-projector-postgres")?;
        let sql = Statements::new(ledger.schema());
        Ok(Self { ledger, sql })
    }

    pub fn schema(&self) -> &SchemaName {
        self.ledger.schema()
    }

    async fn apply_batch(&self, client: &mut Object, batch: &Batch) -> anyhow::Result<ApplyOutcome> {
        let sql = &self.sql;
        let keys = plan::keys(batch);
        let (types, ids): (Vec<&str>, Vec<&str>) = keys.iter().copied().unzip();
        let tx = client.transaction().await?;
        self.ledger.lock(&tx).await?;
        // Only after the lock: these reads see every batch committed before.
        let (refused, versions) = futures::try_join!(self.ledger.check(&tx, batch), async {
            if keys.is_empty() {
                Ok(Vec::new())
            } else {
                let statement = tx.prepare_cached(&sql.stored_versions).await?;
                Ok(tx.query(&statement, &[&types, &ids]).await?)
            }
        })?;
        if let Some(refused) = refused {
            return Ok(refused);
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
            tx.execute(&statement, &[&e.aggregate_type, &e.id, &e.version]).await?;
        }
        if !named_articles.is_empty() || !named_authors.is_empty() {
            let statement = tx.prepare_cached(&sql.refresh_author_names).await?;
            tx.execute(&statement, &[&named_articles, &named_authors]).await?;
        }
        if !recount.is_empty() {
            let statement = tx.prepare_cached(&sql.recount_authors).await?;
            tx.execute(&statement, &[&recount]).await?;
        }
        self.ledger.write_positions(&tx, batch).await?;
        tx.commit().await?;
        Ok(ApplyOutcome::Applied { changed: plan.changed })
    }
}

impl ProjectionStore for PostgresStore {
    async fn start_session(&self, topics: &[String]) -> anyhow::Result<BTreeMap<String, HashMap<i32, Position>>> {
        self.ledger.start_session(topics, async |tx| schema::ensure(tx, self.ledger.schema()).await).await
    }

    async fn apply(&self, batch: &Batch) -> anyhow::Result<ApplyOutcome> {
        self.ledger.apply(async |client| self.apply_batch(client, batch).await).await
    }
}
