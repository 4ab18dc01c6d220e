//! The registry's state, rebuilt from the `_schemas` log: schemas by global
//! id, subjects as versions pointing at ids, compatibility configuration.
//!
//! # How ids stay bound to one schema
//!
//! The log is a single partition, so every instance applies the same records
//! in the same order and derives the same state. A registration that needs a
//! new id or a new version first appends a **claim** (`SLUICE_CLAIM`, a key of
//! its own per attempt) and only then the Confluent-shaped `SCHEMA` record.
//! Applying a claim, in log order:
//!
//! - its id must be unbound, or bound to the same schema (same identity);
//! - its version must be at least the subject's next version (above every
//!   version and every winning claim of that subject seen so far);
//!
//! otherwise the claim is void, for every instance alike. The writer appends,
//! waits until its own instance has applied the log up to its claim, and
//! proceeds only if the claim won; a loser re-reads the state and retries with
//! a fresh id and version (and checks compatibility again, so a version is
//! always checked against every version before it). A `SCHEMA` record that
//! contradicts a winning claim, or binds an id that is bound to another
//! schema, is void too. So when two instances both act as leader, the first
//! claim in topic order wins and no id is ever bound to two schemas.
//!
//! Claims are never deleted: a permanent delete tombstones the `SCHEMA`
//! records only. After compaction the claims still carry every id ever
//! bound, so ids never go backwards and a freed id is never given to another
//! schema; versions are not reused either. Every writer replays the whole
//! topic before it writes, so a claim can only lose to an earlier claim,
//! which compaction keeps: a replay of the compacted topic reaches the same
//! verdicts. Topics written before claims existed (`SCHEMA` records only)
//! are read as before, the first record binding an id winning; an instance
//! of that older kind must not keep writing beside a newer one (its records
//! claim nothing, so only the first-binding rule protects them).

use crate::Level;
use crate::record::{ClaimValue, ConfigValue, LogKey, SchemaValue};
use apache_avro::Schema;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone)]
pub struct StoredSchema {
    pub text: String,
    pub identity: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionEntry {
    pub id: u32,
    pub deleted: bool,
}

#[derive(Default)]
pub struct SchemaStore {
    /// Every id ever bound, to its one schema.
    bindings: BTreeMap<u32, StoredSchema>,
    by_identity: HashMap<String, u32>,
    /// The highest id any record mentions, bound or not.
    max_id: u32,
    /// Winning claims: subject -> version -> id.
    claimed: HashMap<String, BTreeMap<u32, u32>>,
    /// Outcome of every claim applied (claim key -> won).
    claims: HashMap<String, bool>,
    subjects: BTreeMap<String, BTreeMap<u32, VersionEntry>>,
    global: Option<Level>,
    subject_levels: HashMap<String, Level>,
}

/// Parses a schema and gives its identity form (see `identity`).
pub fn parse(text: &str) -> Result<(Schema, String), String> {
    // apache-avro 0.21 panics on some invalid names (`"name": ""`) instead of
    // answering an error: a client's schema must not take the request (or a
    // registry replaying the log) down with it.
    let parsed = std::panic::catch_unwind(|| Schema::parse_str(text))
        .map_err(|_| "the schema cannot be parsed: a name is not a valid Avro name".to_string())?;
    let schema = parsed.map_err(|e| e.to_string())?;
    crate::compat::check_unions(&schema)?;
    let identity = crate::identity::identity_form(text)?;
    Ok((schema, identity))
}

impl SchemaStore {
    /// Applies one record of the log (a `None` value is a tombstone). An
    /// `Err` says why a record was void; the state is then unchanged.
    pub fn apply(&mut self, key: &LogKey, value: Option<&serde_json::Value>) -> Result<(), String> {
        match key {
            LogKey::Schema { subject, version, .. } => match value {
                Some(v) => {
                    let v: SchemaValue = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
                    self.apply_schema(subject, *version, &v)
                }
                None => {
                    if let Some(versions) = self.subjects.get_mut(subject) {
                        versions.remove(version);
                        if versions.is_empty() {
                            self.subjects.remove(subject);
                        }
                    }
                    Ok(())
                }
            },
            LogKey::SluiceClaim { claim, .. } => {
                let value = value.ok_or("a claim without a value")?;
                let c: ClaimValue = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
                self.max_id = self.max_id.max(c.id);
                let outcome = self.judge_claim(&c);
                self.claims.insert(claim.clone(), outcome.is_ok());
                outcome
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
                Ok(())
            }
        }
    }

    fn judge_claim(&mut self, c: &ClaimValue) -> Result<(), String> {
        let (_, identity) = parse(&c.schema)?;
        if let Some(bound) = self.bindings.get(&c.id)
            && bound.identity != identity
        {
            return Err(format!("claim on id {} lost: it is bound to another schema", c.id));
        }
        let next = self.next_version(&c.subject);
        if c.version < next {
            return Err(format!("claim on {} version {} lost: the next version is {next}", c.subject, c.version));
        }
        self.bind(c.id, &c.schema, identity);
        self.claimed.entry(c.subject.clone()).or_default().insert(c.version, c.id);
        Ok(())
    }

    fn apply_schema(&mut self, subject: &str, version: u32, v: &SchemaValue) -> Result<(), String> {
        self.max_id = self.max_id.max(v.id);
        let (_, identity) = parse(&v.schema)?;
        let claimed = self.claimed.get(subject).and_then(|c| c.get(&version)).copied();
        if let Some(id) = claimed
            && id != v.id
        {
            return Err(format!("{subject} version {version} is claimed for id {id}, not {}", v.id));
        }
        match self.bindings.get(&v.id) {
            Some(bound) if bound.identity != identity => {
                return Err(format!("id {} is bound to another schema", v.id));
            }
            Some(_) => {}
            None => self.bind(v.id, &v.schema, identity),
        }
        self.subjects
            .entry(subject.to_string())
            .or_default()
            .insert(version, VersionEntry { id: v.id, deleted: v.deleted });
        Ok(())
    }

    fn bind(&mut self, id: u32, text: &str, identity: String) {
        if !self.bindings.contains_key(&id) {
            self.by_identity.entry(identity.clone()).or_insert(id);
            self.bindings.insert(id, StoredSchema { text: text.to_string(), identity });
        }
    }

    /// Whether the claim `claim` was applied and won (None: not applied yet).
    pub fn claim_won(&self, claim: &str) -> Option<bool> {
        self.claims.get(claim).copied()
    }

    /// An id no record has mentioned yet.
    pub fn next_id(&self) -> u32 {
        self.max_id + 1
    }

    /// The id bound to the schema with this identity, if any.
    pub fn id_of(&self, identity: &str) -> Option<u32> {
        self.by_identity.get(identity).copied()
    }

    /// A schema by id, while some version (live or soft-deleted) refers to it.
    pub fn schema(&self, id: u32) -> Option<&StoredSchema> {
        let referenced = self.subjects.values().any(|versions| versions.values().any(|v| v.id == id));
        if referenced { self.bindings.get(&id) } else { None }
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

    /// Above every version of the subject and every version ever claimed.
    pub fn next_version(&self, subject: &str) -> u32 {
        let existing = self.versions(subject).map(|(n, _)| n).max().unwrap_or(0);
        let claimed = self.claimed.get(subject).and_then(|c| c.keys().next_back().copied()).unwrap_or(0);
        existing.max(claimed) + 1
    }

    /// The newest version of `subject` (live, or any with `deleted`) whose
    /// schema has this identity, and its id.
    pub fn find_version(&self, subject: &str, identity: &str, deleted: bool) -> Option<(u32, u32)> {
        self.versions(subject)
            .filter(|(_, e)| deleted || !e.deleted)
            .filter(|(_, e)| self.bindings.get(&e.id).is_some_and(|s| s.identity == identity))
            .map(|(n, e)| (n, e.id))
            .last()
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(field: &str) -> String {
        format!(r#"{{"type":"record","name":"R","fields":[{{"name":"{field}","type":"int"}}]}}"#)
    }

    fn claim(store: &mut SchemaStore, key: &str, subject: &str, version: u32, id: u32, text: &str) -> bool {
        let value = json!({"subject": subject, "version": version, "id": id, "schema": text});
        let applied = store.apply(&LogKey::claim(key), Some(&value)).is_ok();
        assert_eq!(store.claim_won(key), Some(applied));
        applied
    }

    fn record(store: &mut SchemaStore, subject: &str, version: u32, id: u32, text: &str) -> bool {
        let value = json!({"subject": subject, "version": version, "id": id, "schema": text, "deleted": false});
        store.apply(&LogKey::schema(subject, version), Some(&value)).is_ok()
    }

    #[test]
    fn the_first_claim_in_log_order_wins_and_contradicting_records_are_void() {
        let (x, y) = (schema("x"), schema("y"));
        let mut store = SchemaStore::default();
        assert!(claim(&mut store, "c1", "s", 1, 1, &x));
        assert!(!claim(&mut store, "c2", "t", 1, 1, &y), "id 1 is X's");
        assert!(!claim(&mut store, "c3", "s", 1, 2, &y), "version 1 of s is taken");
        assert!(claim(&mut store, "c4", "s", 2, 2, &y), "the loser's retry");
        assert!(claim(&mut store, "c5", "t", 1, 1, &x), "the same schema keeps its id elsewhere");
        assert!(!record(&mut store, "s", 1, 2, &y), "a record contradicting the claim on s/1");
        assert!(record(&mut store, "s", 1, 1, &x));
        assert!(record(&mut store, "s", 2, 2, &y));
        assert_eq!(store.schema(1).map(|s| s.text.as_str()), Some(x.as_str()));
        assert_eq!(store.schema(2).map(|s| s.text.as_str()), Some(y.as_str()));
        assert_eq!((store.next_id(), store.next_version("s"), store.next_version("t")), (3, 3, 2));
    }

    #[test]
    fn ids_and_versions_survive_the_loss_of_every_schema_record() {
        let mut store = SchemaStore::default();
        assert!(claim(&mut store, "c1", "s", 1, 7, &schema("x")));
        // Compaction dropped the SCHEMA records of a permanently deleted subject.
        assert!(store.schema(7).is_none());
        assert_eq!((store.next_id(), store.next_version("s")), (8, 2));
        assert!(!claim(&mut store, "c2", "u", 1, 7, &schema("z")), "id 7 stays X's");
    }

    #[test]
    fn topics_written_before_claims_bind_an_id_to_its_first_schema() {
        let mut store = SchemaStore::default();
        assert!(record(&mut store, "u", 1, 5, &schema("z")));
        assert!(!record(&mut store, "v", 1, 5, &schema("x")), "id 5 is Z's");
        assert!(store.versions("v").next().is_none());
        assert_eq!(store.next_id(), 6);
    }

    // The registry's schema parser with what a client may send: arbitrary
    // text and JSON shaped like schemas. An error says why; nothing panics.
    fn schema_like() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let kind = prop_oneof![
            Just("\"int\""),
            Just("\"string\""),
            Just("\"null\""),
            Just("[\"null\",\"null\"]"),
            Just("{\"type\":\"array\"}"),
            Just("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[]}"),
            Just("\"R\""),
            Just("{\"type\":\"fixed\",\"name\":\"F\",\"size\":-1}"),
            Just("{}"),
        ];
        (proptest::collection::vec(("[a-z_]{0,3}", kind), 0..4), "[A-Za-z_]{0,3}").prop_map(|(fields, name)| {
            let fields: Vec<String> = fields.iter().map(|(n, t)| format!(r#"{{"name":"{n}","type":{t}}}"#)).collect();
            format!(r#"{{"type":"record","name":"{name}","fields":[{}]}}"#, fields.join(","))
        })
    }

    #[test]
    fn an_empty_name_is_refused_not_a_panic() {
        let reason = parse(r#"{"type":"record","name":"","fields":[]}"#).expect_err("empty name");
        assert!(reason.contains("name"), "{reason}");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_is_refused_with_a_reason(text in proptest::prelude::any::<String>()) {
            if let Err(reason) = parse(&text) {
                proptest::prop_assert!(!reason.is_empty());
            }
        }

        #[test]
        fn schema_shaped_json_is_parsed_or_refused(text in schema_like()) {
            if let Err(reason) = parse(&text) {
                proptest::prop_assert!(!reason.is_empty());
            }
        }
    }
}
