//! query-api: configuration and wiring; routes live in `sluice-query`.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sluice_core::validate::{Validate, check_listen, check_not_empty, check_url};
use sluice_query::QueryState;
use sluice_telemetry::Readiness;
use sluice_telemetry::prometheus::Registry;
use std::process::ExitCode;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    listen: String,
    redis_url: String,
    /// SLUICE_PROJECTION: which Redis read model to serve.
    projection: String,
}

impl Default for Config {
    fn default() -> Self {
        Self { listen: "127.0.0.1:8082".into(), redis_url: "redis://127.0.0.1:6379/".into(), projection: "cms".into() }
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), String> {
        check_listen("SLUICE_LISTEN", &self.listen)?;
        check_url("SLUICE_REDIS_URL", &self.redis_url, &["redis", "rediss"])?;
        check_not_empty("SLUICE_PROJECTION", &self.projection)
    }
}

fn main() -> ExitCode {
    sluice_telemetry::run_service("query-api", |config: Config| async move {
        let client = redis::Client::open(config.redis_url.as_str()).context("SLUICE_REDIS_URL")?;
        let redis = redis::aio::ConnectionManager::new(client).await.context("connect to Redis")?;
        let readiness = Readiness::default();
        let app = sluice_query::router(QueryState { redis, projection: config.projection })
            .merge(sluice_telemetry::ops_router(Registry::new(), readiness.clone()));
        readiness.set_ready(true);
        sluice_telemetry::serve(&config.listen, app, sluice_telemetry::shutdown_token()).await
    })
}
