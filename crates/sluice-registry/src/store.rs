//! The registry's state, rebuilt from the `_schemas` log: schemas by global
//! id, subjects as versions pointing at ids, compatibility configuration.

use crate::Level;
use crate::record::{ConfigValue, LogKey, SchemaValue};
use apache_avro::Schema;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone)]
pub struct StoredSchema {
    pub text: String,
    pub canonical: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionEntry {
    pub id: u32,
    pub deleted: bool,
}

#[derive(Default)]
pub struct SchemaStore {
    schemas: BTreeMap<u32, StoredSchema>,
    by_canonical: HashMap<String, u32>,
    subjects: BTreeMap<String, BTreeMap<u32, VersionEntry>>,
    global: Option<Level>,
    subject_levels: HashMap<String, Level>,
}

/// Parses a schema and gives its identity form (see `identity`).
pub fn parse(text: &str) -> Result<(Schema, String), String> {
    let schema = Schema::parse_str(text).map_err(|e| e.to_string())?;
    crate::compat::check_unions(&schema)?;
    let identity = crate::identity::identity_form(text)?;
    Ok((schema, identity))
}

impl SchemaStore {
    /// Applies one record of the log (a `None` value is a tombstone).
    pub fn apply(&mut self, key: &LogKey, value: Option<&serde_json::Value>) {
        match key {
            LogKey::Schema { subject, version, .. } => {
                match value.and_then(|v| serde_json::from_value::<SchemaValue>(v.clone()).ok()) {
                    Some(v) => {
                        if !self.schemas.contains_key(&v.id)
                            && let Ok((_, canonical)) = parse(&v.schema)
                        {
                            self.by_canonical.entry(canonical.clone()).or_insert(v.id);
                            self.schemas.insert(v.id, StoredSchema { text: v.schema.clone(), canonical });
                        }
                        self.subjects
                            .entry(subject.clone())
                            .or_default()
                            .insert(*version, VersionEntry { id: v.id, deleted: v.deleted });
                    }
                    None => {
                        if let Some(versions) = self.subjects.get_mut(subject) {
                            versions.remove(version);
                            if versions.is_empty() {
                                self.subjects.remove(subject);
                            }
                        }
                    }
                }
            }
            LogKey::Config { subject, .. } => {
                let level = value
                    .and_then(|v| serde_json::from_value::<ConfigValue>(v.clone()).ok())
                    .and_then(|c| Level::parse(&c.compatibility_level));
                match (subject, level) {
                    (None, level) => self.global = level,
                    (Some(s), Some(level)) => {
                        self.subject_levels.insert(s.clone(), level);
                    }
                    (Some(s), None) => {
                        self.subject_levels.remove(s);
                    }
                }
            }
        }
    }

    pub fn next_id(&self) -> u32 {
        self.schemas.keys().next_back().map_or(1, |id| id + 1)
    }

    pub fn id_of(&self, canonical: &str) -> Option<u32> {
        self.by_canonical.get(canonical).copied()
    }

    /// A schema by id, while some version (live or soft-deleted) refers to it.
    pub fn schema(&self, id: u32) -> Option<&StoredSchema> {
        let referenced = self.subjects.values().any(|versions| versions.values().any(|v| v.id == id));
        if referenced { self.schemas.get(&id) } else { None }
    }

    pub fn versions(&self, subject: &str) -> impl Iterator<Item = (u32, VersionEntry)> + '_ {
        self.subjects.get(subject).into_iter().flat_map(|v| v.iter().map(|(n, e)| (*n, *e)))
    }

    pub fn live_versions(&self, subject: &str) -> Vec<(u32, u32)> {
        self.versions(subject).filter(|(_, e)| !e.deleted).map(|(n, e)| (n, e.id)).collect()
    }

    /// Whether the subject exists: it has versions, live or (with `deleted`) soft-deleted.
    pub fn has_subject(&self, subject: &str, deleted: bool) -> bool {
        self.versions(subject).any(|(_, e)| deleted || !e.deleted)
    }

    pub fn subjects(&self, deleted: bool) -> Vec<String> {
        self.subjects.keys().filter(|s| self.has_subject(s, deleted)).cloned().collect()
    }

    pub fn next_version(&self, subject: &str) -> u32 {
        self.versions(subject).map(|(n, _)| n).max().map_or(1, |n| n + 1)
    }

    /// The live version of `subject` holding the schema with `canonical` form.
    pub fn find_live(&self, subject: &str, canonical: &str) -> Option<(u32, u32)> {
        let id = self.id_of(canonical)?;
        self.live_versions(subject).into_iter().find(|(_, v_id)| *v_id == id)
    }

    /// Subjects and versions that use schema `id`.
    pub fn usages(&self, id: u32, deleted: bool) -> Vec<(String, u32)> {
        self.subjects
            .iter()
            .flat_map(|(s, versions)| {
                versions
                    .iter()
                    .filter(move |(_, e)| e.id == id && (deleted || !e.deleted))
                    .map(move |(n, _)| (s.clone(), *n))
            })
            .collect()
    }

    pub fn global_level(&self) -> Level {
        self.global.unwrap_or(Level::DEFAULT)
    }

    pub fn subject_level(&self, subject: &str) -> Option<Level> {
        self.subject_levels.get(subject).copied()
    }

    pub fn effective_level(&self, subject: &str) -> Level {
        self.subject_level(subject).unwrap_or_else(|| self.global_level())
    }
}
