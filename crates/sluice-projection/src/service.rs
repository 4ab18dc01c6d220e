//! What every projector service shares: its configuration (the `SLUICE_*`
//! variables of the runtime), its reader schemas and its `main`. A service
//! adds its store's settings ([`StoreSettings`]) and how to open the store.

use crate::{ProjectionMetrics, ProjectionStore, ProjectorConfig};
use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sluice_avro::{Schema, SchemaSet};
use sluice_core::topics::state_topic;
use sluice_core::validate::{Validate, check_listen, check_not_empty, check_url};
use sluice_telemetry::OpsServer;
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// A store's own settings, flattened into [`ServiceConfig`] (so its fields
/// are `SLUICE_*` variables too), and the service's defaults.
pub trait StoreSettings: Serialize + DeserializeOwned + Default + std::fmt::Debug {
    /// The service's name: in logs, and in its consumer group's.
    const SERVICE: &'static str;
    const DEFAULT_LISTEN: &'static str;
    /// The aggregates it projects unless `SLUICE_AGGREGATES` says otherwise.
    const DEFAULT_AGGREGATES: &'static str;

    /// Checks the store's settings, and the projection's name against what
    /// the store can hold; the message names the variable.
    fn validate(&self, projection: &str) -> Result<(), String>;
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, bound = "S: StoreSettings")]
pub struct ServiceConfig<S> {
    /// SLUICE_LISTEN: `host:port` of `/metrics`, `/healthz` and `/readyz`.
    pub listen: String,
    pub brokers: String,
    pub registry_url: String,
    /// SLUICE_REGISTRY_TIMEOUT_MS: deadline of one schema look-up; a registry
    /// that does not answer in time is retried like one that is down.
    pub registry_timeout_ms: u64,
    pub topic_prefix: String,
    /// SLUICE_AGGREGATES: comma-separated aggregate types to project.
    pub aggregates: String,
    /// SLUICE_PROJECTION: the read model's name (its positions and marker
    /// are stored under it).
    pub projection: String,
    /// SLUICE_GROUP_INSTANCE_ID: static membership of the consumer group
    /// (Kafka's `group.instance.id`). It must be unique among live
    /// processes (a StatefulSet's pod name; never shared by a Deployment's
    /// replicas: the broker fences one of the two and it exits). A replica
    /// that crashed and restarts within the session timeout (10 s) takes its
    /// partitions back at once; a static member never leaves the group on
    /// shutdown, so after a scale-down its partitions wait for that timeout.
    /// Empty (the default): dynamic membership, and a replica killed without
    /// leaving holds its partitions until its session expires.
    pub group_instance_id: String,
    /// SLUICE_ASSIGNMENT: `group` (the default): replicas share the
    /// partitions through the consumer group. `all`: this process reads every
    /// partition itself, from the positions its store holds, without the
    /// group's coordination (the group is still used for the monitoring
    /// commits): for a single replica, and for brokers whose group
    /// coordination cannot be relied on (tansu 0.6.0 after a restart). Two
    /// replicas with `all` would refuse each other's batches (safely, but
    /// neither would make progress for long).
    pub assignment: String,
    pub batch_size: usize,
    pub batch_wait_ms: u64,
    /// SLUICE_IDLE_CHECK_MS: while no record comes, how often the stored
    /// positions are checked (a store that rolled back is noticed then).
    pub idle_check_ms: u64,
    /// Partitions of state topics created by this projector when missing.
    pub partitions: i32,
    /// SLUICE_SCHEMAS_DIR: where the reader schemas are (`<aggregate>/vN.avsc`).
    pub schemas_dir: String,
    /// SLUICE_READER_VERSIONS: `aggregate=N,...` to read with an older schema;
    /// by default each aggregate is read with its newest schema.
    pub reader_versions: String,
    #[serde(flatten)]
    pub store: S,
}

impl<S: StoreSettings> Default for ServiceConfig<S> {
    fn default() -> Self {
        Self {
            listen: S::DEFAULT_LISTEN.into(),
            brokers: "127.0.0.1:9092".into(),
            registry_url: "http://127.0.0.1:8081".into(),
            registry_timeout_ms: sluice_avro::LOOKUP_TIMEOUT.as_millis() as u64,
            topic_prefix: "sluice".into(),
            aggregates: S::DEFAULT_AGGREGATES.into(),
            projection: "cms".into(),
            group_instance_id: String::new(),
            assignment: "group".into(),
            batch_size: 500,
            batch_wait_ms: 5,
            idle_check_ms: 5_000,
            partitions: 3,
            schemas_dir: "schemas".into(),
            reader_versions: String::new(),
            store: S::default(),
        }
    }
}

impl<S: StoreSettings> Validate for ServiceConfig<S> {
    fn validate(&self) -> Result<(), String> {
        check_listen("SLUICE_LISTEN", &self.listen)?;
        check_url("SLUICE_REGISTRY_URL", &self.registry_url, &["http", "https"])?;
        check_not_empty("SLUICE_BROKERS", &self.brokers)?;
        check_not_empty("SLUICE_AGGREGATES", &self.aggregates)?;
        check_not_empty("SLUICE_PROJECTION", &self.projection)?;
        if !matches!(self.assignment.as_str(), "group" | "all") {
            return Err(format!("SLUICE_ASSIGNMENT is `group` or `all`, not `{}`", self.assignment));
        }
        let id = &self.group_instance_id;
        if !id.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) || id.len() > 249 {
            return Err("SLUICE_GROUP_INSTANCE_ID may hold up to 249 letters, digits, '.', '_' and '-'".into());
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
        self.reader_versions()?;
        self.store.validate(&self.projection)
    }
}

impl<S: StoreSettings> ServiceConfig<S> {
    pub fn aggregates(&self) -> Vec<&str> {
        self.aggregates.split(',').map(str::trim).filter(|a| !a.is_empty()).collect()
    }

    /// `SLUICE_READER_VERSIONS` as aggregate -> schema version.
    fn reader_versions(&self) -> Result<HashMap<&str, u32>, String> {
        let mut pinned = HashMap::new();
        for pair in self.reader_versions.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (aggregate, version) = pair.split_once('=').ok_or("SLUICE_READER_VERSIONS takes aggregate=N,...")?;
            let version = version.trim().parse().map_err(|_| "SLUICE_READER_VERSIONS: N must be a number")?;
            pinned.insert(aggregate.trim(), version);
        }
        Ok(pinned)
    }

    /// The reader schema of each aggregate's state topic.
    pub fn reader_schemas(&self) -> anyhow::Result<HashMap<String, Schema>> {
        let set = SchemaSet::load(self.schemas_dir.as_ref()).map_err(|e| anyhow::anyhow!("SLUICE_SCHEMAS_DIR: {e}"))?;
        let pinned = self.reader_versions().map_err(|e| anyhow::anyhow!(e))?;
        let mut readers = HashMap::new();
        for aggregate in self.aggregates() {
            let versions = set.versions(aggregate);
            let file = match pinned.get(aggregate) {
                Some(v) => versions.iter().find(|f| f.version == *v),
                None => versions.last(),
            }
            .with_context(|| format!("no reader schema for {aggregate} in {}", self.schemas_dir))?;
            tracing::info!(aggregate, version = file.version, "reader schema");
            readers.insert(state_topic(&self.topic_prefix, aggregate), file.schema.clone());
        }
        Ok(readers)
    }

    /// The runtime's configuration; its consumer group is
    /// `sluice-<service>-<projection>`.
    pub fn runtime_config(&self) -> anyhow::Result<ProjectorConfig> {
        Ok(ProjectorConfig {
            group_id: format!("sluice-{}-{}", S::SERVICE, self.projection),
            group_instance_id: Some(self.group_instance_id.clone()).filter(|id| !id.is_empty()),
            assign_all: self.assignment == "all",
            projection: self.projection.clone(),
            brokers: self.brokers.clone(),
            registry_url: self.registry_url.clone(),
            registry_timeout: Duration::from_millis(self.registry_timeout_ms),
            topics: self.aggregates().iter().map(|a| state_topic(&self.topic_prefix, a)).collect(),
            batch_size: self.batch_size,
            batch_wait: Duration::from_millis(self.batch_wait_ms),
            idle_check: Duration::from_millis(self.idle_check_ms),
            partitions: self.partitions,
            readers: self.reader_schemas()?,
        })
    }
}

/// The `main` of a projector service: configuration, ops endpoints, the
/// store `open_store` gives, then the projection until SIGTERM.
pub fn run<S, St>(open_store: impl AsyncFnOnce(&ServiceConfig<S>) -> anyhow::Result<St>) -> ExitCode
where
    S: StoreSettings,
    St: ProjectionStore + 'static,
{
    sluice_telemetry::run_service(S::SERVICE, async move |config: ServiceConfig<S>| {
        let shutdown = sluice_telemetry::shutdown_token();
        let (ops, metrics) = OpsServer::start(&config.listen, &shutdown, ProjectionMetrics::register)?;
        let store = Arc::new(open_store(&config).await?);
        let runtime = config.runtime_config()?;
        let result = crate::run_projector(runtime, store, metrics, ops.readiness.clone(), shutdown.clone()).await;
        shutdown.cancel();
        ops.stopped().await?;
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize)]
    struct Plain {
        plain_url: String,
    }

    impl StoreSettings for Plain {
        const SERVICE: &'static str = "projector-plain";
        const DEFAULT_LISTEN: &'static str = "127.0.0.1:1";
        const DEFAULT_AGGREGATES: &'static str = "article, author";

        fn validate(&self, projection: &str) -> Result<(), String> {
            if projection.contains(':') { Err("SLUICE_PROJECTION must not contain ':'".into()) } else { Ok(()) }
        }
    }

    #[test]
    fn defaults_are_the_services_and_validation_names_the_variable() {
        let mut config = ServiceConfig::<Plain>::default();
        assert_eq!(config.listen, "127.0.0.1:1");
        assert_eq!(config.aggregates(), ["article", "author"]);
        assert_eq!(config.validate(), Ok(()));
        config.reader_versions = "article=x".into();
        assert!(config.validate().is_err_and(|e| e.contains("SLUICE_READER_VERSIONS")));
        config.reader_versions = "article=2".into();
        config.projection = "a:b".into();
        assert!(config.validate().is_err_and(|e| e.contains("SLUICE_PROJECTION")));
        config.projection = "cms".into();
        config.group_instance_id = "projector-redis-0".into();
        assert_eq!(config.validate(), Ok(()));
        config.group_instance_id = "pod 0".into();
        assert!(config.validate().is_err_and(|e| e.contains("SLUICE_GROUP_INSTANCE_ID")));
        config.group_instance_id = String::new();
        config.assignment = "each".into();
        assert!(config.validate().is_err_and(|e| e.contains("SLUICE_ASSIGNMENT")));
    }

    #[test]
    fn the_runtime_reads_each_aggregate_with_its_newest_schema_unless_pinned() {
        let config = ServiceConfig::<Plain> {
            schemas_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas").into(),
            reader_versions: "author=1".into(),
            topic_prefix: "p".into(),
            ..Default::default()
        };
        let runtime = config.runtime_config().expect("runtime config");
        assert_eq!(runtime.group_id, "sluice-projector-plain-cms");
        assert_eq!(runtime.group_instance_id, None, "dynamic membership unless asked");
        assert!(!runtime.assign_all, "the group shares the partitions unless asked");
        assert_eq!(runtime.topics, ["p.article.state", "p.author.state"]);
        let fields = |topic: &str| match &runtime.readers[topic] {
            Schema::Record(record) => record.fields.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
            other => panic!("not a record: {other:?}"),
        };
        assert!(fields("p.article.state").contains(&"scheduled_at".to_string()), "article v3");
        assert!(!fields("p.author.state").contains(&"bio".to_string()), "author pinned to v1");
    }
}
