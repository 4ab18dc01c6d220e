//! A user's own projection: how many published articles carry each tag, in the user's PostgreSQL
//! table `tag_counts`. The tables and `apply` are ours; the rest is Sluice's runtime and kit.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_core::{Secret, validate::check_url};
use sluice_projection::service::{self, ServiceConfig, StoreSettings};
use sluice_store_postgres::kit::{Change, KitStore, PgProjection, Transaction};
use std::{collections::BTreeSet, process::ExitCode};

/// `tagged`: each article's last applied version and the tags it counts
/// for (none unless published; an erased article keeps its version).
const TABLES: &str = "
    create table if not exists tagged (id text primary key, version bigint not null, tags text[] not null);
    create table if not exists tag_counts (tag text primary key, articles bigint not null);";

/// The tags an article leaves (-1 each) and those it now counts for (+1 each).
const COUNT: &str = "
    insert into tag_counts (tag, articles)
    select tag, sum(n) from (select unnest($1::text[]), -1 union all select unnest($2::text[]), 1) d(tag, n)
     group by tag
    on conflict (tag) do update set articles = tag_counts.articles + excluded.articles";

struct TagCounts;

impl PgProjection for TagCounts {
    fn tables(&self) -> &str {
        TABLES
    }

    async fn apply(&self, tx: &Transaction<'_>, changes: &[Change]) -> anyhow::Result<usize> {
        let mut changed = 0;
        for change in changes {
            let stored =
                tx.query_opt("select version, tags from tagged where id = $1", &[&change.aggregate_id]).await?;
            // The version guard: a duplicate, a replay or an older record changes nothing.
            if stored.as_ref().is_some_and(|row| row.get::<_, i64>(0) >= change.version) {
                continue;
            }
            let old: Vec<String> = stored.map(|row| row.get(1)).unwrap_or_default();
            let new = published_tags(change.document.as_ref()); // an erasure (None) counts for none
            tx.execute(COUNT, &[&old, &new]).await?;
            tx.execute(
                "insert into tagged values ($1, $2, $3) on conflict (id) do update set version = $2, tags = $3",
                &[&change.aggregate_id, &change.version, &new],
            )
            .await?;
            changed += 1;
        }
        tx.execute("delete from tag_counts where articles = 0", &[]).await?;
        Ok(changed)
    }
}

fn published_tags(doc: Option<&Value>) -> Vec<String> {
    let Some(doc) = doc.filter(|doc| doc["status"] == "PUBLISHED") else { return Vec::new() };
    let tags: BTreeSet<&str> = doc["tags"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    tags.into_iter().map(Into::into).collect()
}

/// SLUICE_DATABASE_URL and SLUICE_PG_SCHEMA, beside the runtime's SLUICE_* variables.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Settings {
    database_url: Secret,
    pg_schema: Option<String>,
}

impl StoreSettings for Settings {
    const SERVICE: &'static str = "tag-counts";
    const DEFAULT_LISTEN: &'static str = "127.0.0.1:9094";
    const DEFAULT_AGGREGATES: &'static str = "article";

    fn validate(&self, _projection: &str) -> Result<(), String> {
        check_url("SLUICE_DATABASE_URL", self.database_url.expose(), &["postgres", "postgresql"])
    }
}

fn main() -> ExitCode {
    service::run(async |config: &ServiceConfig<Settings>| {
        let schema = config.store.pg_schema.as_deref().unwrap_or("tag_counts");
        KitStore::connect(config.store.database_url.expose(), schema, &config.projection, TagCounts)
    })
}
