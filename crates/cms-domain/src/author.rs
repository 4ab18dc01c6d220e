//! Authors: created, renamed, their bio updated. A rename fans out to every
//! article view of the author on the read side.

use crate::validation::{Checks, Rejection};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_BIO_CHARS: usize = 2_000;

/// The full snapshot of an author (Avro `schemas/author`, latest version).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Author {
    pub id: String,
    pub name: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub bio: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorEvent {
    Created,
    Renamed,
    BioUpdated,
}

impl AuthorEvent {
    pub fn name(self) -> &'static str {
        match self {
            AuthorEvent::Created => "AuthorCreated",
            AuthorEvent::Renamed => "AuthorRenamed",
            AuthorEvent::BioUpdated => "AuthorBioUpdated",
        }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAuthor {
    /// Not blank; surrounding spaces are trimmed (and count towards the length).
    #[schema(min_length = 1, max_length = 100, pattern = r"^[^\u0000]*\S[^\u0000]*$")]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 2000, pattern = r"^[^\u0000]*$")]
    pub bio: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameAuthor {
    /// A new name: not blank, different from the current one.
    #[schema(min_length = 1, max_length = 100, pattern = r"^[^\u0000]*\S[^\u0000]*$")]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAuthorBio {
    #[schema(max_length = 2000, pattern = r"^[^\u0000]*$")]
    pub bio: Option<String>,
}

#[derive(Debug, Clone)]
pub enum AuthorCommand {
    Rename(RenameAuthor),
    UpdateBio(UpdateAuthorBio),
}

/// The name as sent (trimmed after the checks; its spaces count towards the length).
fn check_name(checks: &mut Checks, name: &str) {
    checks.require(!sluice_core::text::is_blank(name), "name", "must not be empty");
    checks.require(!name.contains('\0'), "name", "must not contain the NUL character");
    checks.require(name.chars().count() <= MAX_NAME_CHARS, "name", "must be at most 100 characters");
}

fn check_bio(checks: &mut Checks, bio: Option<&str>) {
    checks.require(bio.is_none_or(|b| b.chars().count() <= MAX_BIO_CHARS), "bio", "must be at most 2000 characters");
    checks.require(bio.is_none_or(|b| !b.contains('\0')), "bio", "must not contain the NUL character");
}

impl CreateAuthor {
    pub fn execute(self, id: Uuid, now: DateTime<Utc>) -> Result<(Author, AuthorEvent), Rejection> {
        let mut checks = Checks::default();
        check_name(&mut checks, &self.name);
        let name = self.name.trim_matches(sluice_core::text::is_pattern_space).to_string();
        check_bio(&mut checks, self.bio.as_deref());
        checks.finish()?;
        let micros = now.timestamp_micros();
        let author =
            Author { id: id.to_string(), name, version: 1, created_at: micros, updated_at: micros, bio: self.bio };
        Ok((author, AuthorEvent::Created))
    }
}

impl Author {
    pub fn handle(&self, command: AuthorCommand, now: DateTime<Utc>) -> Result<(Author, AuthorEvent), Rejection> {
        let mut next = self.clone();
        let mut checks = Checks::default();
        let event = match command {
            AuthorCommand::Rename(r) => {
                check_name(&mut checks, &r.name);
                next.name = r.name.trim_matches(sluice_core::text::is_pattern_space).to_string();
                checks.require(next.name != self.name, "name", "is already the author's name");
                AuthorEvent::Renamed
            }
            AuthorCommand::UpdateBio(u) => {
                check_bio(&mut checks, u.bio.as_deref());
                next.bio = u.bio;
                AuthorEvent::BioUpdated
            }
        };
        checks.finish()?;
        next.version = self.version + 1;
        next.updated_at = now.timestamp_micros().max(self.updated_at);
        Ok((next, event))
    }
}
