//! Snapshots (JSON, as the projector decoded them from Avro) as table rows.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sluice_store::Change;

pub const ARTICLE: &str = "article";
pub const AUTHOR: &str = "author";

/// An article snapshot, any schema version (fields added later default).
/// Timestamps are `timestamp-micros`: microseconds since the epoch.
#[derive(Debug, Deserialize)]
struct ArticleDoc {
    slug: String,
    title: String,
    body: String,
    #[serde(default)]
    author_id: Option<String>,
    status: String,
    created_at: i64,
    updated_at: i64,
    #[serde(default)]
    published_at: Option<i64>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    scheduled_at: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct AuthorDoc {
    name: String,
    #[serde(default)]
    bio: Option<String>,
    created_at: i64,
    updated_at: i64,
}

/// Column arrays of article upserts, for one `unnest` statement.
#[derive(Debug, Default)]
pub struct Articles {
    pub id: Vec<String>,
    pub version: Vec<i64>,
    pub slug: Vec<String>,
    pub title: Vec<String>,
    pub body: Vec<String>,
    pub author_id: Vec<Option<String>>,
    pub status: Vec<String>,
    /// Each a JSON array of strings (arrays of arrays must be rectangular).
    pub tags: Vec<serde_json::Value>,
    pub created_at: Vec<DateTime<Utc>>,
    pub updated_at: Vec<DateTime<Utc>>,
    pub published_at: Vec<Option<DateTime<Utc>>>,
    pub scheduled_at: Vec<Option<DateTime<Utc>>>,
}

impl Articles {
    pub fn push(&mut self, change: &Change, doc: &serde_json::Value) -> anyhow::Result<()> {
        let a = ArticleDoc::deserialize(doc).with_context(|| not_a_row(change))?;
        let at = |micros: i64| timestamp(micros).with_context(|| not_a_row(change));
        let optional = |micros: Option<i64>| micros.map(timestamp).transpose().with_context(|| not_a_row(change));
        // Parse every field before pushing any, so the columns stay aligned.
        let (created_at, updated_at) = (at(a.created_at)?, at(a.updated_at)?);
        let (published_at, scheduled_at) = (optional(a.published_at)?, optional(a.scheduled_at)?);
        self.id.push(change.aggregate_id.clone());
        self.version.push(change.version);
        self.slug.push(a.slug);
        self.title.push(a.title);
        self.body.push(a.body);
        self.author_id.push(a.author_id);
        self.status.push(a.status);
        self.tags.push(serde_json::Value::from(a.tags));
        self.created_at.push(created_at);
        self.updated_at.push(updated_at);
        self.published_at.push(published_at);
        self.scheduled_at.push(scheduled_at);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }
}

#[derive(Debug, Default)]
pub struct Authors {
    pub id: Vec<String>,
    pub version: Vec<i64>,
    pub name: Vec<String>,
    pub bio: Vec<Option<String>>,
    pub created_at: Vec<DateTime<Utc>>,
    pub updated_at: Vec<DateTime<Utc>>,
}

impl Authors {
    pub fn push(&mut self, change: &Change, doc: &serde_json::Value) -> anyhow::Result<()> {
        let a = AuthorDoc::deserialize(doc).with_context(|| not_a_row(change))?;
        let created_at = timestamp(a.created_at).with_context(|| not_a_row(change))?;
        let updated_at = timestamp(a.updated_at).with_context(|| not_a_row(change))?;
        self.id.push(change.aggregate_id.clone());
        self.version.push(change.version);
        self.name.push(a.name);
        self.bio.push(a.bio);
        self.created_at.push(created_at);
        self.updated_at.push(updated_at);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }
}

/// Aggregates without a table of their own: their snapshot as `jsonb`.
#[derive(Debug, Default)]
pub struct Documents {
    pub aggregate_type: Vec<String>,
    pub id: Vec<String>,
    pub version: Vec<i64>,
    pub doc: Vec<serde_json::Value>,
}

impl Documents {
    pub fn push(&mut self, change: &Change, doc: &serde_json::Value) {
        self.aggregate_type.push(change.aggregate_type.clone());
        self.id.push(change.aggregate_id.clone());
        self.version.push(change.version);
        self.doc.push(doc.clone());
    }

    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }
}

#[derive(Debug, Default)]
pub struct Erasures {
    pub aggregate_type: Vec<String>,
    pub id: Vec<String>,
    pub version: Vec<i64>,
}

impl Erasures {
    pub fn push(&mut self, change: &Change) {
        self.aggregate_type.push(change.aggregate_type.clone());
        self.id.push(change.aggregate_id.clone());
        self.version.push(change.version);
    }

    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }
}

fn timestamp(micros: i64) -> anyhow::Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros).with_context(|| format!("timestamp {micros} µs is out of range"))
}

fn not_a_row(change: &Change) -> String {
    format!(
        "the {} snapshot {} at version {} does not fit the {0}s table",
        change.aggregate_type, change.aggregate_id, change.version
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(version: i64) -> Change {
        Change { aggregate_type: ARTICLE.into(), aggregate_id: "a".into(), version, document: None }
    }

    #[test]
    fn older_article_schemas_fill_in_defaults_and_micros_are_exact() {
        let mut rows = Articles::default();
        let v1 = json!({"id": "a", "slug": "s", "title": "t", "body": "b", "author_id": null, "status": "DRAFT",
                        "version": 1, "created_at": 1_700_000_000_123_456_i64, "updated_at": 1, "published_at": null});
        rows.push(&change(1), &v1).expect("v1 snapshot");
        assert_eq!(rows.tags, vec![json!([])]);
        assert_eq!(rows.scheduled_at, vec![None]);
        assert_eq!(rows.created_at[0].timestamp_micros(), 1_700_000_000_123_456);
    }

    #[test]
    fn a_snapshot_that_is_not_an_article_is_refused_with_where_it_came_from_and_leaves_no_partial_row() {
        let mut rows = Articles::default();
        let bad = json!({"slug": "s", "title": "t", "body": "b", "status": "DRAFT", "created_at": i64::MAX,
                         "updated_at": 1});
        let error = format!("{:#}", rows.push(&change(7), &bad).expect_err("out of range"));
        assert!(error.contains("article snapshot a at version 7"), "{error}");
        assert!(rows.is_empty() && rows.created_at.is_empty());
        assert!(rows.push(&change(8), &json!({"title": "no slug"})).is_err());
    }
}
