//! The query API: reads of the CMS read models (Redis first, the PostgreSQL
//! read model when Redis is down, and for search), each answer saying how
//! stale it is; readers bound staleness or read their own writes, and a
//! single aggregate staler than asked is refreshed from the source of truth
//! through the projectors' own version-guarded upsert.

pub mod answer;
mod coalesce;
/// The consistency a reader asks for (it lives in `sluice-core`: a contract, fuzzed without the service).
pub use sluice_core::consistency;
mod entity;
pub mod lag;
mod lists;
pub mod metrics;
pub mod model;
mod openapi;
pub mod reconcile;
mod refresh;
pub mod source;

use axum::Router;
use axum::routing::get;
use coalesce::Coalescer;
use lag::LagMonitor;
use metrics::QueryMetrics;
use model::Models;
use source::SourceOfTruth;
use std::sync::Arc;
use std::time::Duration;

pub use answer::{FRESHNESS_HEADER, LAG_MESSAGES_HEADER, LAG_MS_HEADER, READ_MODEL_HEADER, VERSION_HEADER};
pub use openapi::openapi_json;

/// What every handler shares.
pub struct Query {
    pub models: Models,
    pub lag: LagMonitor,
    /// `None`: no source of truth configured; nothing is refreshed.
    pub source: Option<SourceOfTruth>,
    pub topic_prefix: String,
    /// How long a list waits for a token's aggregate (or a bound) before it
    /// answers `stale`.
    pub wait_deadline: Duration,
    pub metrics: QueryMetrics,
    refreshes: Coalescer<refresh::Outcome>,
}

impl Query {
    pub fn new(
        models: Models,
        lag: LagMonitor,
        source: Option<SourceOfTruth>,
        topic_prefix: &str,
        wait_deadline: Duration,
        metrics: QueryMetrics,
    ) -> Self {
        Self {
            models,
            lag,
            source,
            topic_prefix: topic_prefix.into(),
            wait_deadline,
            metrics,
            refreshes: Coalescer::default(),
        }
    }

    pub fn topic(&self, aggregate_type: &str) -> String {
        sluice_core::topics::state_topic(&self.topic_prefix, aggregate_type)
    }

    /// Refreshes the lag cache of both state topics, once; the first error.
    pub async fn refresh_lag(&self) -> anyhow::Result<()> {
        let mut result = Ok(());
        for aggregate in ["article", "author"] {
            let topic = self.topic(aggregate);
            let positions = self.models.least_positions(&topic).await;
            let monitor = self.lag.clone();
            let refreshed = tokio::task::spawn_blocking(move || monitor.refresh_blocking(&topic, &positions)).await;
            let refreshed = refreshed.map_err(anyhow::Error::from).and_then(|r| r);
            if result.is_ok() {
                result = refreshed;
            }
        }
        result
    }
}

pub type QueryState = Arc<Query>;

/// The reads; with `tokens`, each needs a bearer token (`/openapi.json` does not).
pub fn router(state: QueryState, tokens: Option<sluice_telemetry::auth::Tokens>) -> Router {
    let reads = Router::new()
        .route("/articles", get(lists::published))
        .route("/articles/search", get(lists::search))
        .route("/articles/by-slug/{slug}", get(entity::article_by_slug))
        .route("/articles/{id}", get(entity::article))
        .route("/articles/{id}/page", get(entity::article_page))
        .route("/authors/{id}", get(entity::author))
        .route("/authors/{id}/articles", get(lists::by_author))
        .route("/tags/{tag}/articles", get(lists::by_tag))
        .with_state(state);
    let reads = match tokens {
        Some(tokens) => reads.layer(axum::middleware::from_fn_with_state(tokens, sluice_telemetry::auth::require_read)),
        None => reads,
    };
    reads.route("/openapi.json", get(|| async { ([("content-type", "application/json")], openapi_json()) }))
}
