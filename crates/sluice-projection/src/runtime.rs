//! The consume → decode → apply loop.

use crate::dlq::{self, DeadLetter};
use crate::{Position, ProjectionMetrics, ProjectionStore, Upsert};
use anyhow::Context;
use sluice_avro::{AvroError, RegistryDecoder, Schema, avro_to_json};
use sluice_core::topics::dlq_topic;
use sluice_core::{ErrorKind, headers};
use sluice_kafka::rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use sluice_kafka::rdkafka::message::{Headers, Message, OwnedMessage};
use sluice_kafka::rdkafka::producer::FutureProducer;
use sluice_kafka::rdkafka::{Offset, TopicPartitionList};
use sluice_kafka::{CleanupPolicy, TopicSpec};
use sluice_telemetry::{Readiness, retry_until_shutdown as retry};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    /// Name of the read model; part of every key it writes.
    pub projection: String,
    pub brokers: String,
    pub group_id: String,
    pub registry_url: String,
    pub topics: Vec<String>,
    pub batch_size: usize,
    pub batch_wait: Duration,
    /// The reader schema per topic: every writer version is resolved into it.
    /// A topic without one is decoded with the writer's schema.
    pub readers: HashMap<String, Schema>,
    /// Partitions of a state topic this projection creates because it starts
    /// before the relay has written anything (same default as the relay).
    pub partitions: i32,
}

/// Runs until `shutdown` fires, then returns after the batch in hand is stored.
pub async fn run_projector<S: ProjectionStore + 'static>(
    config: ProjectorConfig,
    store: Arc<S>,
    metrics: ProjectionMetrics,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let consumer = Arc::new(sluice_kafka::consumer(&config.brokers, &config.group_id)?);
    let dlq_producer = sluice_kafka::producer(&config.brokers, &format!("{}-dlq", config.projection))?;
    let decoders: HashMap<String, RegistryDecoder> = config
        .topics
        .iter()
        .map(|t| (t.clone(), RegistryDecoder::new(&config.registry_url, config.readers.get(t).cloned())))
        .collect();

    let specs: Vec<TopicSpec> = config
        .topics
        .iter()
        .flat_map(|t| {
            [
                TopicSpec { name: t.clone(), partitions: config.partitions, cleanup: CleanupPolicy::Compact },
                TopicSpec { name: dlq_topic(t), partitions: 1, cleanup: CleanupPolicy::Delete },
            ]
        })
        .collect();
    retry("create missing state and dead-letter topics", &shutdown, || async {
        sluice_kafka::ensure_topics(&config.brokers, &specs).await.map_err(anyhow::Error::from)
    })
    .await?;

    let ctx = BatchContext { config: &config, decoders: &decoders, dlq: &dlq_producer, metrics: &metrics };
    loop {
        match session(&ctx, &consumer, store.as_ref(), &readiness, &shutdown).await? {
            SessionEnd::Shutdown => break,
            SessionEnd::StoreLost => {
                readiness.set_ready(false);
                tracing::warn!(
                    projection = %config.projection,
                    "the store lost this projection's data (marker gone, e.g. Redis restarted without persistence); rebuilding from the start"
                );
            }
        }
    }
    tracing::info!(projection = %config.projection, "projection stopped");
    Ok(())
}

enum SessionEnd {
    Shutdown,
    StoreLost,
}

/// Consumes from the stored positions (the beginning when there are none)
/// until shutdown or until the store turns out to have lost its data.
async fn session<S: ProjectionStore>(
    ctx: &BatchContext<'_>,
    consumer: &Arc<StreamConsumer>,
    store: &S,
    readiness: &Readiness,
    shutdown: &CancellationToken,
) -> anyhow::Result<SessionEnd> {
    let config = ctx.config;
    let metrics = ctx.metrics;
    let mut assignment = TopicPartitionList::new();
    let mut targets: HashMap<(String, i32), i64> = HashMap::new();
    let mut positions: HashMap<(String, i32), i64> = HashMap::new();
    for topic in &config.topics {
        let ends = wait_for_topic(consumer, topic, shutdown).await?;
        let stored = retry("load stored positions", shutdown, || store.load_positions(topic)).await?;
        for (partition, end) in ends {
            let next = stored.get(&partition).map(|p| p.next_offset);
            let offset = next.map_or(Offset::Beginning, Offset::Offset);
            assignment.add_partition_offset(topic, partition, offset)?;
            targets.insert((topic.clone(), partition), end);
            positions.insert((topic.clone(), partition), next.unwrap_or(0));
        }
    }
    retry("mark the store", shutdown, || store.mark_initialized()).await?;
    consumer.assign(&assignment).context("assign partitions")?;
    tracing::info!(projection = %config.projection, topics = ?config.topics, "projection started");
    let mut bootstrap = Bootstrap { targets, done: false };
    bootstrap.check(&positions, readiness, &config.projection);

    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
            m = consumer.recv() => m.map(|m| m.detach()),
        };
        let mut batch = vec![first.context("consume")?];
        let deadline = tokio::time::sleep(config.batch_wait);
        tokio::pin!(deadline);
        while batch.len() < config.batch_size {
            tokio::select! {
                _ = &mut deadline => break,
                m = consumer.recv() => batch.push(m.context("consume")?.detach()),
            }
        }
        let Some(stored) = ctx.process(batch, store, shutdown).await? else { return Ok(SessionEnd::StoreLost) };
        let mut commit = TopicPartitionList::new();
        for ((topic, partition), next) in stored {
            positions.insert((topic.clone(), partition), next);
            metrics
                .position
                .with_label_values(&[config.projection.as_str(), topic.as_str(), &partition.to_string()])
                .set(next);
            commit.add_partition_offset(&topic, partition, Offset::Offset(next))?;
        }
        // Group offsets are for monitoring only; the store holds the truth.
        if let Err(e) = consumer.commit(&commit, CommitMode::Async) {
            tracing::debug!(error = %e, "group offset commit failed (monitoring only)");
        }
        bootstrap.check(&positions, readiness, &config.projection);
    }
}

/// Ready once every partition reached the end offset captured at start.
struct Bootstrap {
    targets: HashMap<(String, i32), i64>,
    done: bool,
}

impl Bootstrap {
    fn check(&mut self, positions: &HashMap<(String, i32), i64>, readiness: &Readiness, projection: &str) {
        if self.done {
            return;
        }
        let caught_up = self.targets.iter().all(|(tp, end)| positions.get(tp).copied().unwrap_or(0) >= *end);
        if caught_up {
            self.done = true;
            readiness.set_ready(true);
            tracing::info!(projection, "bootstrap complete: reached the end offsets captured at start");
        }
    }
}

struct BatchContext<'a> {
    config: &'a ProjectorConfig,
    decoders: &'a HashMap<String, RegistryDecoder>,
    dlq: &'a FutureProducer,
    metrics: &'a ProjectionMetrics,
}

impl BatchContext<'_> {
    /// Decodes, dead-letters what cannot be decoded, applies the rest with the
    /// new positions. Returns the stored next offsets, or None when the store
    /// lost its data (nothing was applied).
    async fn process<S: ProjectionStore>(
        &self,
        batch: Vec<OwnedMessage>,
        store: &S,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Option<BTreeMap<(String, i32), i64>>> {
        let projection = self.config.projection.as_str();
        let now_ms = now_ms();
        let mut by_topic: BTreeMap<String, (Vec<Upsert>, BTreeMap<i32, i64>)> = BTreeMap::new();
        for msg in &batch {
            let topic = msg.topic().to_string();
            self.metrics.records.with_label_values(&[projection, &topic]).inc();
            let entry = by_topic.entry(topic.clone()).or_default();
            entry.1.insert(msg.partition(), msg.offset() + 1);
            match self.to_upsert(msg, shutdown).await? {
                Ok(upsert) => entry.0.push(upsert),
                Err(reason) => {
                    tracing::warn!(projection, topic = %topic, partition = msg.partition(), offset = msg.offset(), %reason, "record sent to the dead-letter topic");
                    let letter = DeadLetter {
                        projection,
                        topic: &topic,
                        partition: msg.partition(),
                        offset: msg.offset(),
                        key: msg.key(),
                        payload: msg.payload(),
                        headers: msg.headers().map(|h| h.as_borrowed()),
                        reason,
                    };
                    retry("send to the dead-letter topic", shutdown, || dlq::send(self.dlq, letter.clone())).await?;
                    self.metrics.dead_letters.with_label_values(&[projection, &topic]).inc();
                }
            }
        }
        let mut stored = BTreeMap::new();
        for (topic, (upserts, offsets)) in by_topic {
            let positions: Vec<Position> = offsets
                .iter()
                .map(|(&partition, &next_offset)| Position { partition, next_offset, applied_at_ms: now_ms })
                .collect();
            let timer = self.metrics.batch_seconds.start_timer();
            let Some(changed) = retry("apply batch", shutdown, || store.apply(&topic, &upserts, &positions)).await?
            else {
                return Ok(None);
            };
            timer.observe_duration();
            self.metrics.applied.with_label_values(&[projection, &topic]).inc_by(changed as u64);
            stored.extend(offsets.into_iter().map(|(p, o)| ((topic.clone(), p), o)));
        }
        Ok(Some(stored))
    }

    /// Ok(Ok(upsert)), Ok(Err(reason)) for a record to dead-letter; Err only
    /// when shutting down while the registry is unreachable.
    async fn to_upsert(
        &self,
        msg: &OwnedMessage,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Result<Upsert, String>> {
        let Some(key) = msg.key() else {
            return Ok(Err("record has no key (aggregate id)".into()));
        };
        let Ok(aggregate_id) = std::str::from_utf8(key) else {
            return Ok(Err("key is not UTF-8".into()));
        };
        let Some(payload) = msg.payload() else {
            return Ok(Err("tombstone (purge) records are not projected yet".into()));
        };
        let decoded = loop {
            let Some(decoder) = self.decoders.get(msg.topic()) else {
                return Ok(Err(format!("no decoder for topic {}", msg.topic())));
            };
            match decoder.decode(payload).await {
                Ok(d) => break d,
                Err(e) if e.kind() == ErrorKind::Transient && !shutdown.is_cancelled() => {
                    tracing::warn!(error = %e, "schema registry unavailable, retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) if e.kind() == ErrorKind::Transient => anyhow::bail!("shutting down: {e}"),
                Err(e) => return Ok(Err(format!("undecodable: {e}"))),
            }
        };
        let document = match avro_to_json(decoded.value) {
            Ok(d) => d,
            Err(AvroError::Codec(e)) | Err(AvroError::Framing(e)) => {
                return Ok(Err(format!("not representable as JSON: {e}")));
            }
            Err(e) => return Ok(Err(e.to_string())),
        };
        let header = |name: &str| -> Option<String> {
            let headers = msg.headers()?;
            headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let version = header(headers::AGGREGATE_VERSION)
            .and_then(|v| v.parse::<i64>().ok())
            .or_else(|| document.get("version").and_then(serde_json::Value::as_i64));
        let Some(version) = version else {
            return Ok(Err("no aggregate version in headers or snapshot".into()));
        };
        let aggregate_type = header(headers::AGGREGATE_TYPE).unwrap_or_else(|| aggregate_from_topic(msg.topic()));
        Ok(Ok(Upsert { aggregate_type, aggregate_id: aggregate_id.to_string(), version, document }))
    }
}

/// `prefix.article.state` -> `article`
fn aggregate_from_topic(topic: &str) -> String {
    topic.rsplit('.').nth(1).unwrap_or(topic).to_string()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Waits until `topic` exists; returns its end offsets by partition.
async fn wait_for_topic(
    consumer: &Arc<StreamConsumer>,
    topic: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<(i32, i64)>> {
    loop {
        let c = consumer.clone();
        let t = topic.to_string();
        let result = tokio::task::spawn_blocking(move || sluice_kafka::watermarks(c.as_ref(), &t)).await?;
        match result {
            Ok(marks) if !marks.is_empty() => {
                return Ok(marks.into_iter().map(|w| (w.partition, w.high)).collect());
            }
            Ok(_) => tracing::info!(topic, "topic has no partitions yet; waiting"),
            Err(e) => tracing::info!(topic, error = %e, "topic not available yet; waiting"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => anyhow::bail!("shut down while waiting for topic {topic}"),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
