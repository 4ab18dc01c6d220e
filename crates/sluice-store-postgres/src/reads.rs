//! The query side's reads of the PostgreSQL read model: one aggregate with
//! the position of its partition (read in one statement, so the lag computed
//! from it is the lag of the row read), lists of published articles with a
//! keyset cursor, full-text search. Documents come back as the JSON the
//! topic's snapshot has (the same fields as in Redis), built from the row.

use crate::SchemaName;
use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use sluice_store::Position;
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// An article's snapshot as JSON, from a row of `articles` aliased `a`.
const ARTICLE_JSON: &str = "jsonb_build_object(
    'id', a.id, 'slug', a.slug, 'title', a.title, 'body', a.body, 'author_id', a.author_id,
    'status', a.status, 'version', a.version, 'tags', to_jsonb(a.tags),
    'created_at', (extract(epoch from a.created_at) * 1000000)::bigint,
    'updated_at', (extract(epoch from a.updated_at) * 1000000)::bigint,
    'published_at', (extract(epoch from a.published_at) * 1000000)::bigint,
    'scheduled_at', (extract(epoch from a.scheduled_at) * 1000000)::bigint)";

/// An author's snapshot as JSON, from a row of `authors` aliased `a`.
const AUTHOR_JSON: &str = "jsonb_build_object(
    'id', a.id, 'name', a.name, 'bio', a.bio, 'version', a.version,
    'created_at', (extract(epoch from a.created_at) * 1000000)::bigint,
    'updated_at', (extract(epoch from a.updated_at) * 1000000)::bigint)";

/// One aggregate as [`PgReads::entity`] found it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub doc: Option<serde_json::Value>,
    pub version: Option<i64>,
    /// An article's author name; an author's counts by status.
    pub extra: Option<serde_json::Value>,
    pub applied: Option<Position>,
    /// Whether the projection's marker is there (false: not built).
    pub built: bool,
    /// The version it was erased at, when the read model holds its erasure.
    pub erased: Option<i64>,
}

/// A published article of a list or a search.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: String,
    pub published_at: Option<i64>,
    pub doc: serde_json::Value,
    pub author_name: Option<String>,
}

pub struct PgReads {
    pool: Pool,
    schema: SchemaName,
    projection: String,
}

impl PgReads {
    pub fn connect(database_url: &str, schema: &str, projection: &str) -> anyhow::Result<Self> {
        let schema = SchemaName::parse(schema).map_err(|e| anyhow::anyhow!(e))?;
        let mut config = tokio_postgres::Config::from_str(database_url)
            .map_err(|_| anyhow::anyhow!("the database URL is not a valid PostgreSQL URL"))?;
        config.application_name("sluice-query-api");
        config.connect_timeout(CONNECT_TIMEOUT);
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(4)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .context("database pool")?;
        Ok(Self { pool, schema, projection: projection.into() })
    }

    async fn client(&self) -> anyhow::Result<deadpool_postgres::Object> {
        self.pool.get().await.context("connect to the PostgreSQL read model")
    }

    /// `aggregate_type` `id` (an article or an author) with the stored
    /// position of `topic` `partition`, in one statement.
    pub async fn entity(&self, aggregate_type: &str, id: &str, topic: &str, partition: i32) -> anyhow::Result<Entity> {
        let s = &self.schema;
        let (table, json, extra) = match aggregate_type {
            "article" => ("articles", ARTICLE_JSON, "to_jsonb(a.author_name)"),
            "author" => (
                "authors",
                AUTHOR_JSON,
                "jsonb_build_object('DRAFT', a.drafts, 'SCHEDULED', a.scheduled, 'PUBLISHED', a.published, \
                 'ARCHIVED', a.archived)",
            ),
            other => anyhow::bail!("the PostgreSQL read model holds no {other}"),
        };
        let sql = format!(
            "select (select {json} from {t} a where a.id = $2),
                    (select a.version from {t} a where a.id = $2),
                    (select {extra} from {t} a where a.id = $2),
                    (select next_offset from {p} where projection = $1 and topic = $3 and partition = $4),
                    (select applied_at from {p} where projection = $1 and topic = $3 and partition = $4),
                    exists (select 1 from {m} where projection = $1),
                    (select version from {e} where aggregate_type = $5 and id = $2)",
            t = s.table(table),
            p = s.table("positions"),
            m = s.table("projections"),
            e = s.table("erased"),
        );
        let client = self.client().await?;
        let row = client
            .query_one(&sql, &[&self.projection, &id, &topic, &partition, &aggregate_type])
            .await
            .context("read from the PostgreSQL read model")?;
        let next: Option<i64> = row.get(3);
        let at: Option<DateTime<Utc>> = row.get(4);
        let applied = next.zip(at).map(|(next_offset, at)| Position {
            partition,
            next_offset,
            applied_at_ms: at.timestamp_millis(),
        });
        Ok(Entity {
            doc: row.get(0),
            version: row.get(1),
            extra: row.get(2),
            applied,
            built: row.get(5),
            erased: row.get(6),
        })
    }

    /// The ids of the articles whose slug is `slug`.
    pub async fn article_ids_by_slug(&self, slug: &str) -> anyhow::Result<Vec<String>> {
        let sql = format!("select id from {} where slug = $1 order by id", self.schema.table("articles"));
        let rows = self.client().await?.query(&sql, &[&slug]).await.context("read a slug")?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// What the read model holds of each of `ids` of `aggregate_type`: the
    /// version (of its row, or of its erasure) and its snapshot (JSON), by id.
    pub async fn stored(
        &self,
        aggregate_type: &str,
        ids: &[String],
    ) -> anyhow::Result<HashMap<String, (i64, Option<serde_json::Value>)>> {
        let s = &self.schema;
        let rows = match aggregate_type {
            "article" | "author" => {
                let (table, json) =
                    if aggregate_type == "article" { ("articles", ARTICLE_JSON) } else { ("authors", AUTHOR_JSON) };
                let sql = format!(
                    "select a.id, a.version, {json} from {t} a where a.id = any($1)
                     union all
                     select e.id, e.version, null from {e} e where e.aggregate_type = $2 and e.id = any($1)",
                    t = s.table(table),
                    e = s.table("erased"),
                );
                self.client().await?.query(&sql, &[&ids, &aggregate_type]).await
            }
            _ => {
                let sql = format!(
                    "select d.id, d.version, d.doc from {d} d where d.aggregate_type = $2 and d.id = any($1)
                     union all
                     select e.id, e.version, null from {e} e where e.aggregate_type = $2 and e.id = any($1)",
                    d = s.table("documents"),
                    e = s.table("erased"),
                );
                self.client().await?.query(&sql, &[&ids, &aggregate_type]).await
            }
        }
        .context("read stored versions")?;
        let mut stored: HashMap<String, (i64, Option<serde_json::Value>)> = HashMap::new();
        for row in rows {
            let (id, version, doc): (String, i64, Option<serde_json::Value>) = (row.get(0), row.get(1), row.get(2));
            if stored.get(&id).is_none_or(|(v, _)| *v < version) {
                stored.insert(id, (version, doc));
            }
        }
        Ok(stored)
    }

    /// The stored positions of `topic`.
    pub async fn positions(&self, topic: &str) -> anyhow::Result<HashMap<i32, Position>> {
        crate::stored_positions(&**self.client().await?, &self.schema, &self.projection, topic).await
    }

    /// Published articles, newest first, after (`published_at` µs, id),
    /// optionally with a tag or of an author.
    pub async fn published(
        &self,
        tag: Option<&str>,
        author: Option<&str>,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> anyhow::Result<Vec<Row>> {
        let sql = format!(
            "select a.id, (extract(epoch from a.published_at) * 1000000)::bigint, {ARTICLE_JSON}, a.author_name
               from {t} a
              where a.status = 'PUBLISHED'
                and ($1::text is null or a.tags @> array[$1::text])
                and ($2::text is null or a.author_id = $2)
                and ($3::bigint is null
                     or (a.published_at, a.id) < (to_timestamp($3::bigint / 1000000.0), $4::text))
              order by a.published_at desc, a.id desc
              limit $5",
            t = self.schema.table("articles")
        );
        let (at, id) = after.map_or((None, None), |(at, id)| (Some(at), Some(id)));
        let client = self.client().await?;
        let rows = client.query(&sql, &[&tag, &author, &at, &id, &limit]).await.context("list published articles")?;
        Ok(rows
            .iter()
            .map(|r| Row { id: r.get(0), published_at: r.get(1), doc: r.get(2), author_name: r.get(3) })
            .collect())
    }

    /// Full-text search over titles (weighted first) and bodies, best first.
    pub async fn search(&self, query: &str, limit: i64) -> anyhow::Result<Vec<Row>> {
        let sql = format!(
            "select a.id, (extract(epoch from a.published_at) * 1000000)::bigint, {ARTICLE_JSON}, a.author_name
               from {t} a, websearch_to_tsquery('english', $1) q
              where a.status = 'PUBLISHED' and a.search @@ q
              order by ts_rank(a.search, q) desc, a.published_at desc, a.id
              limit $2",
            t = self.schema.table("articles")
        );
        let client = self.client().await?;
        let rows = client.query(&sql, &[&query, &limit]).await.context("search articles")?;
        Ok(rows
            .iter()
            .map(|r| Row { id: r.get(0), published_at: r.get(1), doc: r.get(2), author_name: r.get(3) })
            .collect())
    }
}
