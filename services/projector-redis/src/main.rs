//! projector-redis: configuration and wiring of the projector runtime with
//! the Redis store.

use serde::{Deserialize, Serialize};
use sluice_core::topics::state_topic;
use sluice_core::validate::{Validate, check_listen, check_not_empty, check_url};
use sluice_projection::redis_store::RedisStore;
use sluice_projection::{ProjectionMetrics, ProjectorConfig};
use sluice_telemetry::Readiness;
use sluice_telemetry::prometheus::Registry;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    listen: String,
    redis_url: String,
    brokers: String,
    registry_url: String,
    topic_prefix: String,
    /// SLUICE_AGGREGATES: comma-separated aggregate types to project.
    aggregates: String,
    /// SLUICE_PROJECTION: the read model's name (its Redis key prefix).
    projection: String,
    batch_size: usize,
    batch_wait_ms: u64,
    /// Partitions of state topics created by this projector when missing.
    partitions: i32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9091".into(),
            redis_url: "redis://127.0.0.1:6379/".into(),
            brokers: "127.0.0.1:9092".into(),
            registry_url: "http://127.0.0.1:8081".into(),
            topic_prefix: "sluice".into(),
            aggregates: "article".into(),
            projection: "cms".into(),
            batch_size: 500,
            batch_wait_ms: 5,
            partitions: 3,
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), String> {
        check_listen("SLUICE_LISTEN", &self.listen)?;
        check_url("SLUICE_REDIS_URL", &self.redis_url, &["redis", "rediss"])?;
        check_url("SLUICE_REGISTRY_URL", &self.registry_url, &["http", "https"])?;
        check_not_empty("SLUICE_BROKERS", &self.brokers)?;
        check_not_empty("SLUICE_AGGREGATES", &self.aggregates)?;
        check_not_empty("SLUICE_PROJECTION", &self.projection)?;
        if self.projection.contains(['{', '}', ':']) {
            return Err("SLUICE_PROJECTION must not contain '{', '}' or ':'".into());
        }
        if self.partitions < 1 {
            return Err("SLUICE_PARTITIONS must be at least 1".into());
        }
        if self.batch_size == 0 {
            return Err("SLUICE_BATCH_SIZE must be positive".into());
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    sluice_telemetry::run_service("projector-redis", |config: Config| async move {
        let shutdown = sluice_telemetry::shutdown_token();
        let registry = Registry::new();
        let metrics = ProjectionMetrics::register(&registry)?;
        let readiness = Readiness::default();
        let ops = sluice_telemetry::ops_router(registry, readiness.clone());
        let (listen, token) = (config.listen.clone(), shutdown.clone());
        let server = tokio::spawn(async move { sluice_telemetry::serve(&listen, ops, token).await });

        let store = Arc::new(RedisStore::connect(&config.redis_url, &config.projection).await?);
        let topics = config
            .aggregates
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| state_topic(&config.topic_prefix, a))
            .collect();
        let runtime = ProjectorConfig {
            group_id: format!("sluice-projector-redis-{}", config.projection),
            projection: config.projection,
            brokers: config.brokers,
            registry_url: config.registry_url,
            topics,
            batch_size: config.batch_size,
            batch_wait: Duration::from_millis(config.batch_wait_ms),
            partitions: config.partitions,
        };
        let result = sluice_projection::run_projector(runtime, store, metrics, readiness, shutdown.clone()).await;
        shutdown.cancel();
        server.await??;
        result
    })
}
