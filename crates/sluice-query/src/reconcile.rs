//! Controlled update (periodic repair): page through the source of truth's
//! catch-up log, compare each aggregate's current version with the read
//! model's and repair what is behind through the projectors' own
//! version-guarded upsert (no position moves).
//!
//! What it can repair: an aggregate missing from the read model, or held at
//! an older version (a lost write, a hand-made deletion, a restored backup),
//! and an erasure the read model missed. What it reports and leaves alone: a
//! read model ahead of the source, or holding a different document at the
//! same version; the guarded upsert cannot overwrite those (rebuild the
//! projection: `sluice projection rebuild`).

use crate::model::{Models, Source};
use crate::source::{LoggedChange, SourceOfTruth};
use serde_json::Value;
use sluice_store::Change;
use std::collections::BTreeMap;

const PAGE: usize = 1_000;
const CHUNK: usize = 500;

/// What one aggregate's comparison found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Behind (or missing): repaired to the source's version.
    Repaired { had: Option<i64>, now: i64 },
    /// Ahead of the source: left alone.
    Ahead { had: i64, source: i64 },
    /// Another document at the same version: left alone.
    Differs { version: i64 },
    /// Behind, but the repair failed (the run goes on; the next one retries).
    Failed { reason: String },
}

#[derive(Debug, Default)]
pub struct Report {
    pub checked: usize,
    /// (aggregate type, id, what was found), in that order.
    pub findings: Vec<(String, String, Finding)>,
}

impl Report {
    pub fn repaired(&self) -> usize {
        self.findings.iter().filter(|(_, _, f)| matches!(f, Finding::Repaired { .. })).count()
    }
}

/// Compares and repairs the read model `into` of `models`.
pub async fn run(models: &Models, into: Source, source: &SourceOfTruth, topic_prefix: &str) -> anyhow::Result<Report> {
    // The newest change of every aggregate (the log ascends per aggregate).
    let mut latest: BTreeMap<(String, String), LoggedChange> = BTreeMap::new();
    let mut cursor = String::new();
    loop {
        let (page, next) = source.changes(&cursor, PAGE).await?;
        if page.is_empty() {
            break;
        }
        for change in page {
            let key = (change.aggregate_type.clone(), change.aggregate_id.clone());
            if latest.get(&key).is_none_or(|c| c.version < change.version) {
                latest.insert(key, change);
            }
        }
        cursor = next;
    }
    let mut by_type: BTreeMap<String, Vec<LoggedChange>> = BTreeMap::new();
    for ((aggregate_type, _), change) in latest {
        by_type.entry(aggregate_type).or_default().push(change);
    }
    let mut report = Report::default();
    for (aggregate_type, changes) in by_type {
        let topic = sluice_core::topics::state_topic(topic_prefix, &aggregate_type);
        for chunk in changes.chunks(CHUNK) {
            let ids: Vec<String> = chunk.iter().map(|c| c.aggregate_id.clone()).collect();
            let held = models.stored(into, &aggregate_type, &ids).await?;
            for (change, (version, doc)) in chunk.iter().zip(held) {
                report.checked += 1;
                let erased = change.snapshot.is_null();
                let finding = match version {
                    None if erased => None,
                    Some(v) if v < change.version => Some(Finding::Repaired { had: Some(v), now: change.version }),
                    None => Some(Finding::Repaired { had: None, now: change.version }),
                    Some(v) if v > change.version => Some(Finding::Ahead { had: v, source: change.version }),
                    Some(v) if !erased && doc.as_ref() != Some(&change.snapshot) => {
                        Some(Finding::Differs { version: v })
                    }
                    Some(_) => None,
                };
                let finding = match finding {
                    Some(Finding::Repaired { had, .. }) => {
                        repair(models, into, source, &topic, &aggregate_type, change, had).await
                    }
                    other => other,
                };
                if let Some(finding) = finding {
                    report.findings.push((aggregate_type.clone(), change.aggregate_id.clone(), finding));
                }
            }
        }
    }
    Ok(report)
}

/// Repairs one aggregate the read model holds behind `change`: an erasure
/// as logged; a snapshot as the source of truth holds it *now* (the log
/// was read earlier: it may have changed or been erased since). `None` when
/// the guarded upsert changed nothing (the read model caught up meanwhile).
async fn repair(
    models: &Models,
    into: Source,
    source: &SourceOfTruth,
    topic: &str,
    aggregate_type: &str,
    change: &LoggedChange,
    had: Option<i64>,
) -> Option<Finding> {
    let id = change.aggregate_id.as_str();
    let repair = if change.snapshot.is_null() {
        Ok(Some(Change::erasure(aggregate_type, id, change.version)))
    } else {
        source.fetch(aggregate_type, id).await.map(|now| {
            now.map(|now| Change {
                aggregate_type: aggregate_type.into(),
                aggregate_id: id.into(),
                version: now.version,
                document: Some(now.doc),
            })
        })
    };
    let repair = match repair {
        // Erased since the log was read: its erasure is further on in the
        // log, for the next run.
        Ok(None) => return None,
        Ok(Some(repair)) => repair,
        Err(reason) => return Some(Finding::Failed { reason }),
    };
    let now = repair.version;
    match models.apply(into, topic, repair).await {
        Ok(true) => Some(Finding::Repaired { had, now }),
        Ok(false) => None,
        Err(e) => Some(Finding::Failed { reason: format!("{e:#}") }),
    }
}

/// Parses a stored document for a comparison (`None` when absent).
pub fn parse_doc(doc: Option<&str>) -> Option<Value> {
    doc.and_then(|d| serde_json::from_str(d).ok())
}
