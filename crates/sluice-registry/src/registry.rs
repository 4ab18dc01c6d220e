//! Registry operations. Writes are serialised, appended to the log,
//! acknowledged by the broker and read back from the log before they count;
//! reads come from the replayed state. A registration claims its id and
//! version first (see `store` for the rules that keep an id bound to one
//! schema when two instances both write).

use crate::Level;
use crate::error::RegistryError;
use crate::log::{SchemaLog, read_back, tail};
use crate::record::{ClaimValue, ConfigValue, LogKey, SchemaValue};
use crate::store::{SchemaStore, parse};
use apache_avro::Schema;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Lost claims in a row before a registration gives up (each loss means
/// another instance registered something in between).
const CLAIM_ATTEMPTS: u32 = 20;

pub struct Registry {
    store: Arc<RwLock<SchemaStore>>,
    log: SchemaLog,
    /// The offset after the last record applied to `store`.
    applied: watch::Receiver<i64>,
    writes: tokio::sync::Mutex<()>,
}

/// A version of a subject, as answered by the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectVersion {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    pub schema: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    Latest,
    Number(u32),
}

impl VersionSpec {
    pub fn parse(s: &str) -> Result<Self> {
        if s == "latest" || s == "-1" {
            return Ok(VersionSpec::Latest);
        }
        match s.parse::<u32>() {
            Ok(n) if (1..=i32::MAX as u32).contains(&n) => Ok(VersionSpec::Number(n)),
            _ => Err(RegistryError::invalid_version(s)),
        }
    }
}

type Result<T> = std::result::Result<T, RegistryError>;

impl Registry {
    /// Replays the log, then keeps tailing it until `shutdown`.
    pub async fn open(brokers: &str, topic: &str, shutdown: CancellationToken) -> anyhow::Result<Arc<Self>> {
        let store = Arc::new(RwLock::new(SchemaStore::default()));
        let (applied_tx, applied) = watch::channel(0);
        let (log, consumer) = SchemaLog::open(brokers, topic, &store, &applied_tx).await?;
        tokio::spawn(tail(consumer, store.clone(), applied_tx, shutdown));
        Ok(Arc::new(Self { store, log, applied, writes: tokio::sync::Mutex::new(()) }))
    }

    pub fn read(&self) -> Result<RwLockReadGuard<'_, SchemaStore>> {
        self.store.read().map_err(|_| RegistryError::store("state lock poisoned"))
    }

    /// Appends a record and waits until this instance has applied it.
    async fn append(&self, key: LogKey, value: Option<serde_json::Value>) -> Result<()> {
        let offset = self.log.append(&key, value.as_ref()).await.map_err(RegistryError::store)?;
        read_back(&mut self.applied.clone(), offset).await.map_err(RegistryError::store)
    }

    /// Registers `text` under `subject`: the existing id when it is already a
    /// live version there, else a new version after the compatibility check.
    pub async fn register(&self, subject: &str, text: &str) -> Result<u32> {
        let (schema, identity) = parse(text).map_err(RegistryError::invalid_schema)?;
        let _guard = self.writes.lock().await;
        for attempt in 1..=CLAIM_ATTEMPTS {
            let (id, version) = {
                let store = self.read()?;
                if let Some((_, id)) = store.find_version(subject, &identity, false) {
                    return Ok(id);
                }
                let live = live_schemas(&store, subject)?;
                let problems = store
                    .effective_level(subject)
                    .check(&schema, &live.iter().map(|(v, s)| (*v, s)).collect::<Vec<_>>());
                if !problems.is_empty() {
                    return Err(RegistryError::incompatible(subject, &problems));
                }
                (store.id_of(&identity).unwrap_or_else(|| store.next_id()), store.next_version(subject))
            };
            let claim = uuid::Uuid::new_v4().to_string();
            let value = ClaimValue { subject: subject.into(), version, id, schema: text.into() };
            self.append(LogKey::claim(&claim), Some(to_json(&value)?)).await?;
            if self.read()?.claim_won(&claim) != Some(true) {
                tracing::warn!(
                    subject,
                    version,
                    id,
                    attempt,
                    "another instance claimed this id or version first; retrying"
                );
                continue;
            }
            let value = SchemaValue { subject: subject.into(), version, id, schema: text.into(), deleted: false };
            self.append(LogKey::schema(subject, version), Some(to_json(&value)?)).await?;
            tracing::info!(subject, version, id, "schema registered");
            return Ok(id);
        }
        Err(RegistryError::store(format!("gave up registering under {subject} after {CLAIM_ATTEMPTS} lost claims")))
    }

    /// The version of `subject` holding `text`.
    pub fn lookup(&self, subject: &str, text: &str, deleted: bool) -> Result<SubjectVersion> {
        let (_, identity) = parse(text).map_err(RegistryError::invalid_schema)?;
        let store = self.read()?;
        if !store.has_subject(subject, deleted) {
            return Err(RegistryError::subject_not_found(subject));
        }
        let (version, _) =
            store.find_version(subject, &identity, deleted).ok_or_else(RegistryError::schema_not_found)?;
        version_of(&store, subject, version)
    }

    pub fn version(&self, subject: &str, spec: VersionSpec, deleted: bool) -> Result<SubjectVersion> {
        let store = self.read()?;
        let number = resolve(&store, subject, spec, deleted)?;
        version_of(&store, subject, number)
    }

    pub async fn delete_subject(&self, subject: &str, permanent: bool) -> Result<Vec<u32>> {
        let _guard = self.writes.lock().await;
        let versions: Vec<(u32, crate::store::VersionEntry)> = self.read()?.versions(subject).collect();
        if versions.is_empty() {
            return Err(RegistryError::subject_not_found(subject));
        }
        let live: Vec<u32> = versions.iter().filter(|(_, e)| !e.deleted).map(|(n, _)| *n).collect();
        if permanent {
            if !live.is_empty() {
                return Err(RegistryError::subject_not_soft_deleted(subject));
            }
            for (n, _) in &versions {
                self.append(LogKey::schema(subject, *n), None).await?;
            }
            return Ok(versions.into_iter().map(|(n, _)| n).collect());
        }
        if live.is_empty() {
            return Err(RegistryError::subject_not_found(subject));
        }
        for n in &live {
            self.soft_delete(subject, *n).await?;
        }
        Ok(live)
    }

    pub async fn delete_version(&self, subject: &str, spec: VersionSpec, permanent: bool) -> Result<u32> {
        let _guard = self.writes.lock().await;
        let (number, deleted) = {
            let store = self.read()?;
            let number = resolve(&store, subject, spec, permanent)?;
            let deleted = store.versions(subject).any(|(n, e)| n == number && e.deleted);
            (number, deleted)
        };
        if permanent {
            if !deleted {
                return Err(RegistryError::version_not_soft_deleted(subject, number));
            }
            self.append(LogKey::schema(subject, number), None).await?;
        } else {
            self.soft_delete(subject, number).await?;
        }
        Ok(number)
    }

    async fn soft_delete(&self, subject: &str, version: u32) -> Result<()> {
        let found = version_of(&*self.read()?, subject, version)?;
        let value = SchemaValue { subject: subject.into(), version, id: found.id, schema: found.schema, deleted: true };
        self.append(LogKey::schema(subject, version), Some(to_json(&value)?)).await
    }

    pub async fn set_level(&self, subject: Option<&str>, level: Level) -> Result<()> {
        let _guard = self.writes.lock().await;
        let value = ConfigValue { compatibility_level: level.as_str().into() };
        self.append(LogKey::config(subject), Some(to_json(&value)?)).await
    }

    /// Removes a level; returns the one that was in force.
    pub async fn delete_level(&self, subject: Option<&str>) -> Result<Level> {
        let _guard = self.writes.lock().await;
        let previous = {
            let store = self.read()?;
            match subject {
                Some(s) => store.subject_level(s).ok_or_else(|| RegistryError::subject_not_found(s))?,
                None => store.global_level(),
            }
        };
        self.append(LogKey::config(subject), None).await?;
        Ok(previous)
    }

    /// Whether `text` could be registered, as Confluent's compatibility
    /// routes answer: `None` checks as registering would (the subject's level,
    /// against the latest or every live version; a subject without versions
    /// accepts anything); `Latest` or a number checks against that version alone.
    pub fn test_compatibility(&self, subject: &str, spec: Option<VersionSpec>, text: &str) -> Result<Vec<String>> {
        let (schema, _) = parse(text).map_err(RegistryError::invalid_schema)?;
        let store = self.read()?;
        let level = store.effective_level(subject);
        let live = live_schemas(&store, subject)?;
        let all: Vec<(u32, &Schema)> = live.iter().map(|(v, s)| (*v, s)).collect();
        let against: Vec<(u32, &Schema)> = match spec {
            None => all,
            Some(spec) => {
                let number = resolve(&store, subject, spec, false)?;
                all.into_iter().filter(|(v, _)| *v == number).collect()
            }
        };
        Ok(level.check(&schema, &against))
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(RegistryError::store)
}

fn live_schemas(store: &SchemaStore, subject: &str) -> Result<Vec<(u32, Schema)>> {
    store
        .live_versions(subject)
        .into_iter()
        .map(|(v, id)| {
            let text = store.schema(id).ok_or_else(|| RegistryError::store(format!("schema {id} missing")))?;
            let (schema, _) = parse(&text.text).map_err(RegistryError::store)?;
            Ok((v, schema))
        })
        .collect()
}

fn resolve(store: &SchemaStore, subject: &str, spec: VersionSpec, deleted: bool) -> Result<u32> {
    if !store.has_subject(subject, deleted) {
        return Err(RegistryError::subject_not_found(subject));
    }
    let mut candidates = store.versions(subject).filter(|(_, e)| deleted || !e.deleted).map(|(n, _)| n);
    match spec {
        VersionSpec::Latest => candidates.max().ok_or_else(|| RegistryError::version_not_found("latest")),
        VersionSpec::Number(n) => {
            candidates.find(|v| *v == n).ok_or_else(|| RegistryError::version_not_found(&n.to_string()))
        }
    }
}

fn version_of(store: &SchemaStore, subject: &str, version: u32) -> Result<SubjectVersion> {
    let (_, entry) = store
        .versions(subject)
        .find(|(n, _)| *n == version)
        .ok_or_else(|| RegistryError::version_not_found(&version.to_string()))?;
    let schema = store.schema(entry.id).ok_or_else(RegistryError::schema_not_found)?;
    Ok(SubjectVersion { subject: subject.into(), version, id: entry.id, schema: schema.text.clone() })
}
