use crate::validation::{Checks, Rejection};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_BODY_BYTES: usize = 200_000;
pub const MAX_SLUG_CHARS: usize = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ArticleStatus {
    Draft,
    Scheduled,
    Published,
    Archived,
}

impl ArticleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ArticleStatus::Draft => "DRAFT",
            ArticleStatus::Scheduled => "SCHEDULED",
            ArticleStatus::Published => "PUBLISHED",
            ArticleStatus::Archived => "ARCHIVED",
        }
    }
}

/// The full snapshot of an article, as stored and as published (Avro
/// `schemas/article`). Times are microseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Article {
    pub id: String,
    pub slug: String,
    pub title: String,
    pub body: String,
    pub author_id: Option<String>,
    pub status: ArticleStatus,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub published_at: Option<i64>,
}

/// Events are past tense; each carries the snapshot after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArticleEvent {
    Drafted,
}

impl ArticleEvent {
    pub fn name(self) -> &'static str {
        match self {
            ArticleEvent::Drafted => "ArticleDrafted",
        }
    }
}

/// Command: create a draft.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftArticle {
    pub title: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub author_id: Option<Uuid>,
}

impl DraftArticle {
    /// Validates the command and builds version 1 of the article.
    pub fn execute(
        self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(Article, ArticleEvent), Rejection> {
        let title = self.title.trim().to_string();
        let slug = self.slug.unwrap_or_else(|| slugify(&title));
        let mut checks = Checks::default();
        checks.require(!title.is_empty(), "title", "must not be empty");
        checks.require(
            title.chars().count() <= MAX_TITLE_CHARS,
            "title",
            "must be at most 200 characters",
        );
        checks.require(
            self.body.len() <= MAX_BODY_BYTES,
            "body",
            "must be at most 200000 bytes",
        );
        checks.require(
            is_valid_slug(&slug),
            "slug",
            "must be 1-120 characters of a-z, 0-9 and single dashes",
        );
        checks.finish()?;
        let micros = now.timestamp_micros();
        let article = Article {
            id: id.to_string(),
            slug,
            title,
            body: self.body,
            author_id: self.author_id.map(|a| a.to_string()),
            status: ArticleStatus::Draft,
            version: 1,
            created_at: micros,
            updated_at: micros,
            published_at: None,
        };
        Ok((article, ArticleEvent::Drafted))
    }
}

/// Lower-case ASCII letters and digits joined by single dashes.
pub fn slugify(title: &str) -> String {
    let mut slug = String::with_capacity(title.len());
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    slug.chars()
        .take(MAX_SLUG_CHARS)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

pub fn is_valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= MAX_SLUG_CHARS
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && !slug.contains("--")
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(title: &str) -> DraftArticle {
        DraftArticle {
            title: title.into(),
            body: "b".into(),
            slug: None,
            author_id: None,
        }
    }

    #[test]
    fn a_draft_starts_at_version_one_with_a_slug() {
        let (a, e) = draft("  Hello, World!  ")
            .execute(Uuid::nil(), Utc::now())
            .expect("valid");
        assert_eq!(
            (a.version, a.status, a.slug.as_str(), a.title.as_str()),
            (1, ArticleStatus::Draft, "hello-world", "Hello, World!")
        );
        assert_eq!(e.name(), "ArticleDrafted");
    }

    #[test]
    fn every_reason_is_reported() {
        let cmd = DraftArticle {
            title: " ".into(),
            body: String::new(),
            slug: Some("Bad Slug".into()),
            author_id: None,
        };
        let Rejection(reasons) = cmd.execute(Uuid::nil(), Utc::now()).expect_err("invalid");
        let fields: Vec<_> = reasons.iter().map(|r| r.field.as_str()).collect();
        assert_eq!(fields, ["title", "slug"]);
    }

    #[test]
    fn snapshot_fits_the_latest_avro_schema() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/article/v1.avsc");
        let schema =
            apache_avro::Schema::parse_str(&std::fs::read_to_string(path).expect("schema"))
                .expect("parse");
        let (a, _) = draft("t").execute(Uuid::nil(), Utc::now()).expect("valid");
        let value = apache_avro::to_value(&a)
            .expect("to_value")
            .resolve(&schema)
            .expect("resolves");
        let bytes = apache_avro::to_avro_datum(&schema, value).expect("encode");
        let back =
            apache_avro::from_avro_datum(&schema, &mut bytes.as_slice(), None).expect("decode");
        let back: Article = apache_avro::from_value(&back).expect("from_value");
        assert_eq!(back, a);
    }
}
