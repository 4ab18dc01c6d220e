//! On-demand refresh: fetch one aggregate from the source of truth and apply
//! it through the projectors' own version-guarded upsert (never moving a
//! projection's position, so the projector still applies every record and
//! an older one changes nothing). Concurrent refreshes of a key share one.

use crate::QueryState;
use crate::model::Source;
use futures::FutureExt;
use sluice_store::Change;
use std::time::Instant;

#[derive(Debug, Clone)]
pub enum Outcome {
    /// The source of truth's snapshot; `applied` says whether the read
    /// model took it (it may refuse, e.g. while it is rebuilt).
    Fetched { doc: serde_json::Value, version: i64, applied: bool },
    /// The source of truth does not hold it (never created, or erased).
    Gone,
    /// The source of truth could not be asked.
    Failed,
}

pub async fn refresh(q: &QueryState, into: Source, aggregate_type: &str, id: &str) -> Outcome {
    let started = Instant::now();
    let key = format!("{}:{aggregate_type}:{id}", into.name());
    let (outcome, joined) = q
        .refreshes
        .run(&key, || {
            let (q, aggregate_type, id) = (q.clone(), aggregate_type.to_string(), id.to_string());
            async move { fetch_and_apply(&q, into, &aggregate_type, &id).await }.boxed()
        })
        .await;
    let outcome = outcome.unwrap_or(Outcome::Failed);
    if joined {
        q.metrics.coalesced.inc();
    } else {
        q.metrics.refresh_seconds.observe(started.elapsed().as_secs_f64());
        let label = match &outcome {
            Outcome::Fetched { applied: true, .. } => "applied",
            Outcome::Fetched { applied: false, .. } => "not_applied",
            Outcome::Gone => "gone",
            Outcome::Failed => "failed",
        };
        q.metrics.refreshes.with_label_values(&[label]).inc();
    }
    outcome
}

async fn fetch_and_apply(q: &QueryState, into: Source, aggregate_type: &str, id: &str) -> Outcome {
    let Some(source) = &q.source else { return Outcome::Failed };
    let fetched = match source.fetch(aggregate_type, id).await {
        Ok(Some(fetched)) => fetched,
        Ok(None) => return Outcome::Gone,
        Err(e) => {
            tracing::warn!(aggregate_type, id, error = %e, "on-demand refresh failed");
            return Outcome::Failed;
        }
    };
    let change = Change {
        aggregate_type: aggregate_type.into(),
        aggregate_id: id.into(),
        version: fetched.version,
        document: Some(fetched.doc.clone()),
    };
    let applied = match q.models.apply(into, &q.topic(aggregate_type), change).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(aggregate_type, id, error = %format!("{e:#}"), "refreshed snapshot not applied");
            false
        }
    };
    Outcome::Fetched { doc: fetched.doc, version: fetched.version, applied }
}
