//! projector-redis: configuration and wiring of the projector runtime with
//! the Redis store.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sluice_avro::{Schema, SchemaSet};
use sluice_core::topics::state_topic;
use sluice_core::validate::{Validate, check_listen, check_not_empty, check_url};
use sluice_projection::{ProjectionMetrics, ProjectorConfig};
use sluice_store_redis::RedisStore;
use sluice_telemetry::OpsServer;
use std::collections::HashMap;
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
    /// SLUICE_REGISTRY_TIMEOUT_MS: deadline of one schema look-up; a registry
    /// that does not answer in time is retried like one that is down.
    registry_timeout_ms: u64,
    topic_prefix: String,
    /// SLUICE_AGGREGATES: comma-separated aggregate types to project.
    aggregates: String,
    /// SLUICE_PROJECTION: the read model's name (its Redis key prefix).
    projection: String,
    batch_size: usize,
    batch_wait_ms: u64,
    /// SLUICE_IDLE_CHECK_MS: while no record comes, how often the stored
    /// positions are checked (a store that rolled back is noticed then).
    idle_check_ms: u64,
    /// Partitions of state topics created by this projector when missing.
    partitions: i32,
    /// SLUICE_SCHEMAS_DIR: where the reader schemas are (`<aggregate>/vN.avsc`).
    schemas_dir: String,
    /// SLUICE_READER_VERSIONS: `aggregate=N,...` to read with an older schema;
    /// by default each aggregate is read with its newest schema.
    reader_versions: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9091".into(),
            redis_url: "redis://127.0.0.1:6379/".into(),
            brokers: "127.0.0.1:9092".into(),
            registry_url: "http://127.0.0.1:8081".into(),
            registry_timeout_ms: sluice_avro::LOOKUP_TIMEOUT.as_millis() as u64,
            topic_prefix: "sluice".into(),
            aggregates: "article".into(),
            projection: "cms".into(),
            batch_size: 500,
            batch_wait_ms: 5,
            idle_check_ms: 5_000,
            partitions: 3,
            schemas_dir: "schemas".into(),
            reader_versions: String::new(),
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
        if self.registry_timeout_ms == 0 {
            return Err("SLUICE_REGISTRY_TIMEOUT_MS must be positive".into());
        }
        if self.idle_check_ms == 0 {
            return Err("SLUICE_IDLE_CHECK_MS must be positive".into());
        }
        Ok(())
    }
}

/// The reader schema of each aggregate's state topic.
fn reader_schemas(config: &Config, aggregates: &[&str]) -> anyhow::Result<HashMap<String, Schema>> {
    let set = SchemaSet::load(config.schemas_dir.as_ref()).map_err(|e| anyhow::anyhow!("SLUICE_SCHEMAS_DIR: {e}"))?;
    let mut pinned: HashMap<&str, u32> = HashMap::new();
    for pair in config.reader_versions.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (aggregate, version) = pair.split_once('=').context("SLUICE_READER_VERSIONS takes aggregate=N,...")?;
        pinned.insert(aggregate.trim(), version.trim().parse().context("SLUICE_READER_VERSIONS: N must be a number")?);
    }
    let mut readers = HashMap::new();
    for aggregate in aggregates {
        let versions = set.versions(aggregate);
        let file = match pinned.get(aggregate) {
            Some(v) => versions.iter().find(|f| f.version == *v),
            None => versions.last(),
        }
        .with_context(|| format!("no reader schema for {aggregate} in {}", config.schemas_dir))?;
        tracing::info!(aggregate, version = file.version, "reader schema");
        readers.insert(state_topic(&config.topic_prefix, aggregate), file.schema.clone());
    }
    Ok(readers)
}

fn main() -> ExitCode {
    sluice_telemetry::run_service("projector-redis", |config: Config| async move {
        let shutdown = sluice_telemetry::shutdown_token();
        let (ops, metrics) = OpsServer::start(&config.listen, &shutdown, ProjectionMetrics::register)?;

        let store = Arc::new(RedisStore::connect(&config.redis_url, &config.projection).await?);
        let aggregates: Vec<&str> = config.aggregates.split(',').map(str::trim).filter(|a| !a.is_empty()).collect();
        let topics: Vec<String> = aggregates.iter().map(|a| state_topic(&config.topic_prefix, a)).collect();
        let readers = reader_schemas(&config, &aggregates)?;
        let runtime = ProjectorConfig {
            group_id: format!("sluice-projector-redis-{}", config.projection),
            projection: config.projection,
            brokers: config.brokers,
            registry_url: config.registry_url,
            registry_timeout: Duration::from_millis(config.registry_timeout_ms),
            topics,
            batch_size: config.batch_size,
            batch_wait: Duration::from_millis(config.batch_wait_ms),
            idle_check: Duration::from_millis(config.idle_check_ms),
            partitions: config.partitions,
            readers,
        };
        let result =
            sluice_projection::run_projector(runtime, store, metrics, ops.readiness.clone(), shutdown.clone()).await;
        shutdown.cancel();
        ops.stopped().await?;
        result
    })
}
