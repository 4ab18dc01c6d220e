//! Articles: a draft that can be edited, scheduled, published, unpublished,
//! archived (a logical delete) and restored.

use crate::validation::{Checks, Reason, Rejection};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_BODY_BYTES: usize = 200_000;
pub const MAX_SLUG_CHARS: usize = 120;
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG_CHARS: usize = 40;

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

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Draft, Self::Scheduled, Self::Published, Self::Archived].into_iter().find(|v| v.as_str() == s)
    }
}

/// The full snapshot of an article, as stored and as published (Avro
/// `schemas/article`, latest version). Times are microseconds since the epoch.
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
    pub tags: Vec<String>,
    pub scheduled_at: Option<i64>,
}

/// Events are past tense; each carries the snapshot after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArticleEvent {
    Drafted,
    Edited,
    Scheduled,
    Published,
    Unpublished,
    Archived,
    Restored,
    /// Hard-deleted (an erasure request): the aggregate's last event, with no
    /// snapshot.
    Erased,
}

impl ArticleEvent {
    pub fn name(self) -> &'static str {
        match self {
            ArticleEvent::Drafted => "ArticleDrafted",
            ArticleEvent::Edited => "ArticleEdited",
            ArticleEvent::Scheduled => "ArticleScheduled",
            ArticleEvent::Published => "ArticlePublished",
            ArticleEvent::Unpublished => "ArticleUnpublished",
            ArticleEvent::Archived => "ArticleArchived",
            ArticleEvent::Restored => "ArticleRestored",
            ArticleEvent::Erased => "ArticleErased",
        }
    }
}

/// Command: create a draft.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftArticle {
    /// Not blank; surrounding spaces are trimmed (and count towards the length).
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\u0000]*\S[^\u0000]*$")]
    pub title: String,
    /// At most 200,000 bytes of UTF-8.
    #[serde(default)]
    #[schema(max_length = 200000, pattern = r"^[^\u0000]*$")]
    pub body: String,
    /// Derived from the title when absent.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 120, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    pub slug: Option<String>,
    /// An existing author.
    #[serde(default)]
    pub author_id: Option<Uuid>,
    /// Stored lower-case, duplicates dropped.
    #[serde(default)]
    #[schema(max_items = 20, value_type = Vec<Tag>)]
    pub tags: Vec<String>,
}

/// A tag in the API document: 1-40 letters, digits and single dashes.
pub struct Tag;

impl utoipa::PartialSchema for Tag {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_TAG_CHARS))
            .pattern(Some(r"^[\t\n\f\r ]*[A-Za-z0-9]+(-[A-Za-z0-9]+)*[\t\n\f\r ]*$"))
            .description(Some(
                "Letters, digits and single dashes; stored trimmed and lower-case (spaces count towards the length).",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Tag {}

/// Command: change title, body, slug or tags (at least one).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditArticle {
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\u0000]*\S[^\u0000]*$")]
    pub title: Option<String>,
    #[schema(max_length = 200000, pattern = r"^[^\u0000]*$")]
    pub body: Option<String>,
    #[schema(min_length = 1, max_length = 120, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    pub slug: Option<String>,
    #[schema(max_items = 20, value_type = Option<Vec<Tag>>)]
    pub tags: Option<Vec<String>>,
}

/// Command: publish automatically at `publish_at` (in the future).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleArticle {
    pub publish_at: DateTime<Utc>,
}

/// A command on an existing article.
#[derive(Debug, Clone)]
pub enum ArticleCommand {
    Edit(EditArticle),
    Schedule(ScheduleArticle),
    Publish,
    Unpublish,
    Archive,
    Restore,
}

impl DraftArticle {
    /// Validates the command and builds version 1 of the article.
    pub fn execute(self, id: Uuid, now: DateTime<Utc>) -> Result<(Article, ArticleEvent), Rejection> {
        let title = self.title.trim_matches(sluice_core::text::is_pattern_space).to_string();
        let slug = self.slug.unwrap_or_else(|| slugify(&title));
        let mut checks = Checks::default();
        check_title(&mut checks, &self.title);
        check_body(&mut checks, &self.body);
        check_slug(&mut checks, &slug);
        check_tags(&mut checks, &self.tags);
        let tags = normalize_tags(self.tags);
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
            tags,
            scheduled_at: None,
        };
        Ok((article, ArticleEvent::Drafted))
    }
}

impl Article {
    /// Applies `command`: the next version and its event, or why not.
    pub fn handle(&self, command: ArticleCommand, now: DateTime<Utc>) -> Result<(Article, ArticleEvent), Rejection> {
        use ArticleStatus::*;
        let mut next = self.clone();
        let event = match command {
            ArticleCommand::Edit(edit) => {
                refuse_if(self.status == Archived, "status", "an archived article cannot be edited; restore it first")?;
                next.apply_edit(edit)?;
                ArticleEvent::Edited
            }
            ArticleCommand::Schedule(s) => {
                refuse_if(
                    matches!(self.status, Published | Archived),
                    "status",
                    &format!("a {} article cannot be scheduled", self.status.as_str().to_lowercase()),
                )?;
                refuse_if(s.publish_at <= now, "publish_at", "must be in the future")?;
                next.status = Scheduled;
                next.scheduled_at = Some(s.publish_at.timestamp_micros());
                ArticleEvent::Scheduled
            }
            ArticleCommand::Publish => {
                refuse_if(self.status == Published, "status", "the article is already published")?;
                refuse_if(
                    self.status == Archived,
                    "status",
                    "an archived article cannot be published; restore it first",
                )?;
                next.status = Published;
                next.published_at = Some(now.timestamp_micros());
                next.scheduled_at = None;
                ArticleEvent::Published
            }
            ArticleCommand::Unpublish => {
                refuse_if(
                    !matches!(self.status, Published | Scheduled),
                    "status",
                    "only a published or scheduled article can be unpublished",
                )?;
                next.status = Draft;
                next.scheduled_at = None;
                ArticleEvent::Unpublished
            }
            ArticleCommand::Archive => {
                refuse_if(self.status == Archived, "status", "the article is already archived")?;
                next.status = Archived;
                next.scheduled_at = None;
                ArticleEvent::Archived
            }
            ArticleCommand::Restore => {
                refuse_if(self.status != Archived, "status", "only an archived article can be restored")?;
                next.status = Draft;
                ArticleEvent::Restored
            }
        };
        next.version = self.version + 1;
        next.updated_at = now.timestamp_micros().max(self.updated_at);
        Ok((next, event))
    }

    fn apply_edit(&mut self, edit: EditArticle) -> Result<(), Rejection> {
        if edit.title.is_none() && edit.body.is_none() && edit.slug.is_none() && edit.tags.is_none() {
            return Err(Rejection(vec![Reason::new(
                "",
                "an edit must change at least one of title, body, slug, tags",
            )]));
        }
        let mut checks = Checks::default();
        if let Some(title) = edit.title {
            check_title(&mut checks, &title);
            self.title = title.trim_matches(sluice_core::text::is_pattern_space).to_string();
        }
        if let Some(body) = edit.body {
            check_body(&mut checks, &body);
            self.body = body;
        }
        if let Some(slug) = edit.slug {
            check_slug(&mut checks, &slug);
            self.slug = slug;
        }
        if let Some(tags) = edit.tags {
            check_tags(&mut checks, &tags);
            self.tags = normalize_tags(tags);
        }
        checks.finish()
    }
}

fn refuse_if(condition: bool, field: &str, message: &str) -> Result<(), Rejection> {
    if condition { Err(Rejection(vec![Reason::new(field, message)])) } else { Ok(()) }
}

/// The title as sent (its surrounding spaces are trimmed after the checks,
/// and count towards the length: what the API document says).
fn check_title(checks: &mut Checks, title: &str) {
    checks.require(!sluice_core::text::is_blank(title), "title", "must not be empty");
    checks.require(!title.contains('\0'), "title", "must not contain the NUL character");
    checks.require(title.chars().count() <= MAX_TITLE_CHARS, "title", "must be at most 200 characters");
}

fn check_body(checks: &mut Checks, body: &str) {
    checks.require(body.len() <= MAX_BODY_BYTES, "body", "must be at most 200000 bytes");
    checks.require(!body.contains('\0'), "body", "must not contain the NUL character");
}

fn check_slug(checks: &mut Checks, slug: &str) {
    checks.require(is_valid_slug(slug), "slug", "must be 1-120 characters of a-z, 0-9 and single dashes");
}

/// The tags as sent, before they are lower-cased and de-duplicated.
fn check_tags(checks: &mut Checks, tags: &[String]) {
    checks.require(tags.len() <= MAX_TAGS, "tags", "at most 20 tags");
    checks.require(
        tags.iter().all(|t| t.len() <= MAX_TAG_CHARS && is_valid_slug(&normalize_tag(t))),
        "tags",
        "each tag must be 1-40 characters of letters, digits and single dashes",
    );
}

/// ASCII spaces trimmed, ASCII lower case (what the document's pattern says).
fn normalize_tag(tag: &str) -> String {
    tag.trim_matches(|c: char| c.is_ascii_whitespace()).to_ascii_lowercase()
}

/// Normalised, duplicates removed, first occurrence kept (`Rust` and ` rust`
/// are one tag).
fn normalize_tags(tags: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = normalize_tag(&tag);
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    out
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
    slug.chars().take(MAX_SLUG_CHARS).collect::<String>().trim_end_matches('-').to_string()
}

pub fn is_valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= MAX_SLUG_CHARS
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && !slug.contains("--")
        && slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
