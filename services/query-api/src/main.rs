//! query-api: configuration and wiring; routes live in `sluice-query`.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sluice_core::Secret;
use sluice_core::validate::{Validate, check_listen, check_not_empty, check_url};
use sluice_query::lag::LagMonitor;
use sluice_query::metrics::QueryMetrics;
use sluice_query::model::{Models, PgModel, RedisModel};
use sluice_query::source::SourceOfTruth;
use sluice_query::{Query, QueryState};
use sluice_telemetry::Readiness;
use sluice_telemetry::auth::Tokens;
use sluice_telemetry::prometheus::Registry;
use sluice_telemetry::rate_limit::{self, RateLimit};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    listen: String,
    /// SLUICE_REDIS_URL: the Redis read model (empty: none).
    redis_url: String,
    /// SLUICE_PROJECTION: which Redis read model (alias) to serve.
    projection: String,
    /// SLUICE_POSTGRES_URL: the PostgreSQL read model, served when Redis is
    /// down and for search (empty: none). Its role writes the read schema
    /// for on-demand refreshes.
    postgres_url: Secret,
    /// SLUICE_POSTGRES_SCHEMA
    postgres_schema: String,
    /// SLUICE_POSTGRES_PROJECTION: the PostgreSQL projection's name.
    postgres_projection: String,
    /// SLUICE_BROKERS: where the state topics are (for their watermarks).
    brokers: String,
    /// SLUICE_TOPIC_PREFIX: the state topics are `<prefix>.<aggregate>.state`.
    topic_prefix: String,
    /// SLUICE_SOURCE_URL: command-api, the source of truth for on-demand
    /// refreshes (empty: never refresh; staler-than-asked reads say `stale`).
    source_url: String,
    /// SLUICE_SOURCE_TOKEN: a read token of command-api.
    source_token: Secret,
    /// SLUICE_SOURCE_TIMEOUT_MS: how long a refresh waits for the source.
    source_timeout_ms: u64,
    /// SLUICE_WATERMARK_CACHE_MS: how often the lag cache is refreshed.
    watermark_cache_ms: u64,
    /// SLUICE_WAIT_DEADLINE_MS: how long a list waits for a token or bound.
    wait_deadline_ms: u64,
    /// SLUICE_READ_TOKENS: comma-separated bearer tokens; when set, every
    /// read needs one (empty: reads are open).
    read_tokens: Secret,
    /// SLUICE_RATE_LIMIT: requests per second per caller (bearer token, or
    /// address without one); 0 = no limit.
    rate_limit: f64,
    /// SLUICE_RATE_BURST: requests a caller may send at once.
    rate_burst: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8082".into(),
            redis_url: "redis://127.0.0.1:6379/".into(),
            projection: "cms".into(),
            postgres_url: Secret::default(),
            postgres_schema: "cms_read".into(),
            postgres_projection: "cms".into(),
            brokers: "127.0.0.1:9092".into(),
            topic_prefix: "sluice".into(),
            source_url: String::new(),
            source_token: Secret::default(),
            source_timeout_ms: 2_000,
            watermark_cache_ms: 250,
            wait_deadline_ms: 2_000,
            read_tokens: Secret::default(),
            rate_limit: 0.0,
            rate_burst: 100,
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), String> {
        check_listen("SLUICE_LISTEN", &self.listen)?;
        RateLimit::new(self.rate_limit, self.rate_burst)?;
        if self.redis_url.is_empty() && self.postgres_url.is_empty() {
            return Err("set SLUICE_REDIS_URL or SLUICE_POSTGRES_URL (or both): there is no read model to serve".into());
        }
        if !self.redis_url.is_empty() {
            check_url("SLUICE_REDIS_URL", &self.redis_url, &["redis", "rediss"])?;
        }
        if !self.postgres_url.is_empty() {
            check_url("SLUICE_POSTGRES_URL", self.postgres_url.expose(), &["postgres", "postgresql"])?;
        }
        if !self.source_url.is_empty() {
            check_url("SLUICE_SOURCE_URL", &self.source_url, &["http", "https"])?;
        }
        check_not_empty("SLUICE_PROJECTION", &self.projection)?;
        check_not_empty("SLUICE_BROKERS", &self.brokers)?;
        check_not_empty("SLUICE_TOPIC_PREFIX", &self.topic_prefix)?;
        for (var, ms) in [
            ("SLUICE_SOURCE_TIMEOUT_MS", self.source_timeout_ms),
            ("SLUICE_WATERMARK_CACHE_MS", self.watermark_cache_ms),
        ] {
            if !(1..=60_000).contains(&ms) {
                return Err(format!("{var} must be between 1 and 60000"));
            }
        }
        if self.wait_deadline_ms > 60_000 {
            return Err("SLUICE_WAIT_DEADLINE_MS must be at most 60000".into());
        }
        Ok(())
    }
}

async fn models(config: &Config) -> anyhow::Result<Models> {
    let redis = if config.redis_url.is_empty() {
        None
    } else {
        Some(RedisModel::connect(&config.redis_url, &config.projection).await.context("SLUICE_REDIS_URL")?)
    };
    let postgres = if config.postgres_url.is_empty() {
        None
    } else {
        let url = config.postgres_url.expose();
        let (schema, projection) = (&config.postgres_schema, &config.postgres_projection);
        Some(PgModel {
            reads: sluice_store_postgres::reads::PgReads::connect(url, schema, projection)
                .context("SLUICE_POSTGRES_URL")?,
            store: sluice_store_postgres::PostgresStore::connect(url, schema, projection)
                .context("SLUICE_POSTGRES_URL")?,
        })
    };
    Ok(Models { redis, postgres })
}

fn main() -> ExitCode {
    // `query-api openapi` prints the OpenAPI document (`make openapi`).
    if std::env::args().nth(1).as_deref() == Some("openapi") {
        println!("{}", sluice_query::openapi_json());
        return ExitCode::SUCCESS;
    }
    sluice_telemetry::run_service("query-api", |config: Config| async move {
        let registry = Registry::new();
        let metrics = QueryMetrics::register(&registry)?;
        let source = if config.source_url.is_empty() {
            None
        } else {
            let timeout = Duration::from_millis(config.source_timeout_ms);
            Some(SourceOfTruth::new(&config.source_url, config.source_token.clone(), timeout)?)
        };
        let query: QueryState = Arc::new(Query::new(
            models(&config).await?,
            LagMonitor::new(&config.brokers, lag_cache_max_age(config.watermark_cache_ms)),
            source,
            &config.topic_prefix,
            Duration::from_millis(config.wait_deadline_ms),
            metrics,
        ));
        let readiness = Readiness::default();
        let shutdown = sluice_telemetry::shutdown_token();
        tokio::spawn(watch_lag(query.clone(), readiness.clone(), Duration::from_millis(config.watermark_cache_ms)));
        let tokens = Tokens::parse(&Secret::default(), &config.read_tokens);
        let tokens = (!tokens.read.is_empty()).then_some(tokens);
        if tokens.is_none() {
            tracing::warn!("reads are open to anyone: SLUICE_READ_TOKENS is empty");
        }
        let http = sluice_telemetry::http_metrics::HttpMetrics::register(&registry, "query")?;
        let limit = RateLimit::new(config.rate_limit, config.rate_burst)
            .map_err(anyhow::Error::msg)?
            .map(|l| l.knowing(tokens.as_ref().unwrap_or(&Tokens::default())));
        let app = http
            .layer(rate_limit::layer(limit, sluice_query::router(query, tokens)))
            .merge(sluice_telemetry::ops_router(registry, readiness));
        sluice_telemetry::serve(&config.listen, app, shutdown).await
    })
}

/// A lag cache older than this (five refreshes missed, at least 3 s) is not
/// used: answers then say the lag is unknown.
fn lag_cache_max_age(every_ms: u64) -> Duration {
    Duration::from_millis((5 * every_ms).max(3_000))
}

/// Keeps the lag cache fresh; ready once it knows the topics (every answer
/// can then say how stale it is).
async fn watch_lag(query: QueryState, readiness: Readiness, every: Duration) {
    let mut failing = false;
    loop {
        match query.refresh_lag().await {
            Ok(()) => {
                readiness.set_ready(true);
                if failing {
                    tracing::info!("lag cache refreshed again");
                    failing = false;
                }
            }
            Err(e) if !failing => {
                tracing::warn!(error = %format!("{e:#}"), "cannot refresh the lag cache; answers carry the last known lag");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(every).await;
    }
}
