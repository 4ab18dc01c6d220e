//! The consume → decode → apply loop.

use crate::dlq::{self, DeadLetter};
use crate::group::{Expected, GroupContext, Owned};
use crate::{ApplyOutcome, Batch, Change, Position, ProjectionMetrics, ProjectionStore};
use anyhow::Context;
use sluice_avro::{AvroError, Decoded, RegistryDecoder, Schema, avro_to_json};
use sluice_core::topics::{dlq_topic, retried_topic, retry_topic};
use sluice_core::{ErrorKind, headers};
use sluice_kafka::rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use sluice_kafka::rdkafka::error::KafkaError;
use sluice_kafka::rdkafka::message::{Headers, Message, OwnedMessage};
use sluice_kafka::rdkafka::producer::FutureProducer;
use sluice_kafka::rdkafka::{Offset, TopicPartitionList};
use sluice_kafka::{CleanupPolicy, TopicSpec};
use sluice_telemetry::{Readiness, retry_until_shutdown as retry};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Back-off between look-ups of a writer schema the registry cannot give yet.
const REGISTRY_BACKOFF_FIRST: Duration = Duration::from_millis(100);
const REGISTRY_BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Pause before a new session, so that a store that keeps disagreeing with
/// the projector cannot make it spin.
const RESTART_PAUSE: Duration = Duration::from_millis(200);
/// After a consumption error that restarts the session.
const CONSUMER_RESTART_PAUSE: Duration = Duration::from_secs(2);
/// After a consumer error (brokers down), before reading on.
const CONSUMER_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// A replica that stops heart-beating (killed, frozen) loses its partitions
/// to the others after this long (librdkafka's default is 45 s). tansu 0.6
/// evicts such a member only when another member joins after it expired.
const GROUP_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Records prefetched from the broker, at most (KiB): a few batches ahead.
const PREFETCH_KIB: u32 = 8 * 1024;

#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    /// Name of the read model; part of every key it writes.
    pub projection: String,
    pub brokers: String,
    pub group_id: String,
    /// Static group membership (`group.instance.id`): a restarted process
    /// with the same id takes its partitions back at once instead of
    /// waiting for the old member to expire. Unique per live replica.
    pub group_instance_id: Option<String>,
    /// Read every partition of the topics without the group's coordination
    /// (one replica only; see `SLUICE_ASSIGNMENT`).
    pub assign_all: bool,
    pub registry_url: String,
    /// Deadline of one schema look-up; a registry that does not answer in
    /// time is retried like one that is down.
    pub registry_timeout: Duration,
    pub topics: Vec<String>,
    pub batch_size: usize,
    pub batch_wait: Duration,
    /// While no record comes, how often the stored positions are compared
    /// with the expected ones, so that a store that rolled back while the
    /// topics were quiet is noticed without waiting for the next record.
    pub idle_check: Duration,
    /// The reader schema per topic: every writer version is resolved into it.
    /// A topic without one is decoded with the writer's schema.
    pub readers: HashMap<String, Schema>,
    /// Partitions of a state topic this projection creates because it starts
    /// before the relay has written anything (same default as the relay).
    pub partitions: i32,
}

/// Runs until `shutdown` fires, then returns after the batch in hand is
/// stored (or dropped, when it waits on the registry: it is read again at
/// the next start).
pub async fn run_projector<S: ProjectionStore + 'static>(
    config: ProjectorConfig,
    store: Arc<S>,
    metrics: ProjectionMetrics,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let dlq_producer = sluice_kafka::producer(&config.brokers, &format!("{}-dlq", config.projection))?;
    let specs: Vec<TopicSpec> = config
        .topics
        .iter()
        .flat_map(|t| {
            [
                TopicSpec { name: t.clone(), partitions: config.partitions, cleanup: CleanupPolicy::Compact },
                TopicSpec { name: dlq_topic(t), partitions: 1, cleanup: CleanupPolicy::Delete },
                TopicSpec { name: retry_topic(t), partitions: config.partitions, cleanup: CleanupPolicy::Delete },
            ]
        })
        .collect();
    retry("create missing state, dead-letter and retry topics", &shutdown, || async {
        sluice_kafka::ensure_topics(&config.brokers, &specs).await.map_err(anyhow::Error::from)
    })
    .await?;
    let config = with_retry_topics(config);
    let decoders: HashMap<String, RegistryDecoder> = config
        .topics
        .iter()
        .map(|t| {
            let decoder = RegistryDecoder::new(&config.registry_url, config.readers.get(t).cloned());
            (t.clone(), decoder.with_timeout(config.registry_timeout))
        })
        .collect();

    let ctx = BatchContext { config: &config, decoders: &decoders, dlq: &dlq_producer, metrics: &metrics };
    loop {
        match session(&ctx, &store, &readiness, &shutdown).await? {
            SessionEnd::Shutdown => break,
            SessionEnd::Restart(why) => {
                readiness.set_ready(false);
                metrics.session_restarts.with_label_values(&[config.projection.as_str(), why.label()]).inc();
                tracing::warn!(projection = %config.projection, reason = %why, "starting again from the positions the store holds");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(why.pause()) => {}
                }
            }
        }
    }
    tracing::info!(projection = %config.projection, "projection stopped");
    Ok(())
}

enum SessionEnd {
    Shutdown,
    Restart(Restart),
}

/// Why the store refused a batch.
enum Restart {
    StoreLost,
    /// A blue/green rebuild retired the generation this projector wrote to.
    Retired,
    /// A partition could not be positioned from the store when assigned.
    Rebalance(String),
    PositionMismatch {
        topic: String,
        partition: i32,
        expected: Option<i64>,
        stored: Option<i64>,
    },
    /// The consumer reported an error that may have skipped records.
    Consumer(String),
}

impl Restart {
    fn label(&self) -> &'static str {
        match self {
            Restart::StoreLost => "store_lost",
            Restart::Retired => "generation_retired",
            Restart::Rebalance(_) => "rebalance",
            Restart::PositionMismatch { .. } => "position_mismatch",
            Restart::Consumer(_) => "consumer_error",
        }
    }

    /// How long to wait before the next session: an error that recurs
    /// (a deleted topic, a refused authorization) must not spin.
    fn pause(&self) -> Duration {
        match self {
            Restart::Consumer(_) => CONSUMER_RESTART_PAUSE,
            _ => RESTART_PAUSE,
        }
    }
}

impl std::fmt::Display for Restart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let offset = |o: &Option<i64>| o.map_or_else(|| "nothing".to_string(), |o| o.to_string());
        match self {
            Restart::StoreLost => {
                write!(
                    f,
                    "the store lost this projection's data (marker gone, e.g. Redis restarted without persistence)"
                )
            }
            Restart::Retired => write!(
                f,
                "a blue/green rebuild retired the generation this projector wrote to: following the serving pointer"
            ),
            Restart::Rebalance(reason) => write!(f, "{reason}"),
            Restart::Consumer(error) => write!(f, "the consumer reported {error}"),
            Restart::PositionMismatch { topic, partition, expected, stored } => write!(
                f,
                "the store holds position {} for {topic}/{partition} where {} was expected: it rolled back \
                 (lost AOF tail, failover to a lagging replica, restored backup), another projector wrote it, or a \
                 blue/green rebuild swapped in the next generation",
                offset(stored),
                offset(expected)
            ),
        }
    }
}

/// Takes every partition of `topics`, each from the position the store
/// holds, as the group's assignment callback does for its share.
fn assign_all<S: ProjectionStore + 'static>(
    consumer: &StreamConsumer<GroupContext<S>>,
    topics: &[&str],
) -> anyhow::Result<()> {
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        let partitions = tokio::task::block_in_place(|| sluice_kafka::partition_count(consumer, topic))
            .with_context(|| format!("the partitions of {topic}"))?;
        for partition in 0..partitions {
            tpl.add_partition(topic, partition);
        }
    }
    consumer.context().position(consumer, &mut tpl);
    consumer.assign(&tpl).context("assign the partitions")?;
    Ok(())
}

/// An error the consumer reported. Those of an unreachable or restarting
/// broker are informational: librdkafka reconnects and goes on from where it
/// was, so the session goes on after a short pause (a new consumer would
/// join the group again, which tansu 0.6.0 may never complete after its
/// restart). Any other consumption error (a corrupt or oversized message, an
/// offset reset, a refused authorization...) may mean records were skipped:
/// the session starts again from the store's positions, which checks them
/// against the partitions' ends. Errors that are not about consumption end
/// the process.
async fn consumer_error(e: KafkaError, projection: &str) -> anyhow::Result<Option<Restart>> {
    use sluice_kafka::rdkafka::types::RDKafkaErrorCode as Code;
    match e {
        KafkaError::MessageConsumption(
            code @ (Code::AllBrokersDown
            | Code::BrokerTransportFailure
            | Code::Resolve
            | Code::OperationTimedOut
            | Code::RequestTimedOut
            | Code::NetworkException
            | Code::BrokerNotAvailable
            | Code::NotCoordinator
            | Code::CoordinatorNotAvailable
            | Code::CoordinatorLoadInProgress
            | Code::LeaderNotAvailable
            | Code::NotLeaderForPartition
            | Code::RebalanceInProgress),
        ) => {
            tracing::warn!(projection, error = %code, "broker unreachable; going on once it answers");
            tokio::time::sleep(CONSUMER_ERROR_PAUSE).await;
            Ok(None)
        }
        KafkaError::MessageConsumption(code) => Ok(Some(Restart::Consumer(code.to_string()))),
        other => Err(anyhow::Error::new(other).context("consume")),
    }
}

/// Joins the projector's consumer group and consumes the partitions it is
/// given, each from the position the store holds, until shutdown or until
/// the store refuses a batch.
async fn session<S: ProjectionStore + 'static>(
    ctx: &BatchContext<'_>,
    store: &Arc<S>,
    readiness: &Readiness,
    shutdown: &CancellationToken,
) -> anyhow::Result<SessionEnd> {
    let config = ctx.config;
    let metrics = ctx.metrics;
    // A fresh consumer per session: nothing fetched for an earlier session's
    // positions can reach this one.
    let owned = Arc::new(Mutex::new(Owned::default()));
    let context = GroupContext {
        store: store.clone(),
        topics: config.topics.clone(),
        owned: owned.clone(),
        runtime: tokio::runtime::Handle::current(),
        projection: config.projection.clone(),
    };
    let mut consumer_config = sluice_kafka::consumer_config(&config.brokers, &config.group_id);
    if let Some(instance) = &config.group_instance_id {
        consumer_config.set("group.instance.id", instance);
    }
    let consumer: StreamConsumer<GroupContext<S>> = consumer_config
        .set("session.timeout.ms", GROUP_SESSION_TIMEOUT.as_millis().to_string())
        // librdkafka prefetches up to 64 MiB by default: a store slower than
        // the broker (PostgreSQL) would hold that much in memory.
        .set("queued.max.messages.kbytes", PREFETCH_KIB.to_string())
        .create_with_context(context)?;
    let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
    if config.assign_all {
        assign_all(&consumer, &topics)?;
    } else {
        consumer.subscribe(&topics).context("subscribe to the topics")?;
    }
    tracing::info!(projection = %config.projection, topics = ?config.topics, group = %config.group_id, "projection started");
    let mut bootstrap = Bootstrap { done: false, last_log: None };

    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
            m = consumer.recv() => match m {
                Ok(m) => Some(m.detach()),
                Err(e) => match consumer_error(e, &config.projection).await? {
                    Some(why) => return Ok(SessionEnd::Restart(why)),
                    None => None,
                },
            },
            // Quiet topics: an empty batch still compares the positions.
            _ = tokio::time::sleep(config.idle_check) => None,
        };
        let mut batch = Vec::new();
        if let Some(first) = first {
            batch.push(first);
            let deadline = tokio::time::sleep(config.batch_wait);
            tokio::pin!(deadline);
            while batch.len() < config.batch_size {
                tokio::select! {
                    _ = &mut deadline => break,
                    m = consumer.recv() => match m {
                        Ok(m) => batch.push(m.detach()),
                        Err(e) => match consumer_error(e, &config.projection).await? {
                            // What this batch holds is dropped, read again from the store's positions.
                            Some(why) => return Ok(SessionEnd::Restart(why)),
                            None => break,
                        },
                    },
                }
            }
        }
        // The rebalance callbacks ran inside recv(); they do not run again
        // until the next one, so what they left holds for this batch.
        let expected = {
            let mut owned = owned.lock().map_err(|_| anyhow::anyhow!("ownership lock poisoned"))?;
            if let Some(reason) = owned.failure.take() {
                return Ok(SessionEnd::Restart(Restart::Rebalance(reason)));
            }
            owned.expected.clone()
        };
        if expected.is_empty() && batch.is_empty() {
            bootstrap.check(&owned, readiness, metrics, &config.projection);
            continue; // nothing owned, nothing to compare
        }
        let advanced = match ctx.process(batch, &expected, store.as_ref(), shutdown).await? {
            Processed::Stored(advanced) => advanced,
            Processed::Refused(why) => return Ok(SessionEnd::Restart(why)),
            Processed::Stopped => return Ok(SessionEnd::Shutdown),
        };
        let mut commit = TopicPartitionList::new();
        {
            let mut owned = owned.lock().map_err(|_| anyhow::anyhow!("ownership lock poisoned"))?;
            for (topic, partitions) in advanced {
                for (partition, next) in partitions {
                    if let Some(position) = owned.expected.get_mut(&topic).and_then(|p| p.get_mut(&partition)) {
                        *position = Some(next);
                    }
                    metrics
                        .position
                        .with_label_values(&[config.projection.as_str(), topic.as_str(), &partition.to_string()])
                        .set(next);
                    commit.add_partition_offset(&topic, partition, Offset::Offset(next))?;
                }
            }
        }
        // Group offsets are for monitoring only; the store holds the truth.
        if commit.count() > 0
            && let Err(e) = consumer.commit(&commit, CommitMode::Async)
        {
            tracing::debug!(error = %e, "group offset commit failed (monitoring only)");
        }
        bootstrap.check(&owned, readiness, metrics, &config.projection);
    }
}

/// Ready once the group assigned this replica its share and every partition
/// it owns reached the end offset captured when it was assigned. Until then
/// the progress is exported (`sluice_projection_bootstrap_*`) and logged.
struct Bootstrap {
    done: bool,
    last_log: Option<tokio::time::Instant>,
}

/// How often bootstrap progress is logged.
const PROGRESS_LOG_EVERY: Duration = Duration::from_secs(5);

impl Bootstrap {
    fn check(&mut self, owned: &Mutex<Owned>, readiness: &Readiness, metrics: &ProjectionMetrics, projection: &str) {
        if self.done {
            return;
        }
        let Ok(owned) = owned.lock() else { return };
        let position_of = |topic: &String, partition: &i32| {
            owned.expected.get(topic).and_then(|p| p.get(partition)).copied().flatten().unwrap_or(0)
        };
        let end: i64 = owned.targets.values().sum();
        let position: i64 = owned.targets.iter().map(|((t, p), end)| position_of(t, p).min(*end)).sum();
        metrics.bootstrap_end.with_label_values(&[projection]).set(end);
        metrics.bootstrap_position.with_label_values(&[projection]).set(position);
        let caught_up = owned.joined && position >= end;
        if caught_up {
            self.done = true;
            readiness.set_ready(true);
            tracing::info!(
                projection,
                end,
                "bootstrap complete: reached the end offsets captured when partitions were assigned"
            );
        } else if self.last_log.is_none_or(|at| at.elapsed() >= PROGRESS_LOG_EVERY) {
            self.last_log = Some(tokio::time::Instant::now());
            let percent = if end > 0 { position as f64 * 100.0 / end as f64 } else { 0.0 };
            tracing::info!(projection, position, end, percent = format!("{percent:.1}"), "bootstrap progress");
        }
    }
}

struct BatchContext<'a> {
    config: &'a ProjectorConfig,
    decoders: &'a HashMap<String, RegistryDecoder>,
    dlq: &'a FutureProducer,
    metrics: &'a ProjectionMetrics,
}

enum Processed {
    /// Stored; the new next offsets by topic and partition.
    Stored(BTreeMap<String, BTreeMap<i32, i64>>),
    /// The store wrote nothing: start again from what it holds.
    Refused(Restart),
    /// Shutdown while the batch waited on the registry; nothing stored.
    Stopped,
}

/// What to do with one record.
enum Decision {
    Apply(Change),
    DeadLetter(String),
    /// Shutdown came while waiting on the registry.
    Stopped,
}

impl BatchContext<'_> {
    /// Decodes, dead-letters what can never be decoded, waits out the
    /// registry for the rest, then hands changes and new positions to the
    /// store together with the positions it is expected to hold.
    async fn process<S: ProjectionStore>(
        &self,
        batch: Vec<OwnedMessage>,
        expected: &Expected,
        store: &S,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Processed> {
        let projection = self.config.projection.as_str();
        let now_ms = now_ms();
        let mut changes: BTreeMap<String, Vec<Change>> = BTreeMap::new();
        let mut advanced: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
        for msg in &batch {
            let topic = msg.topic().to_string();
            let Some(&stored) = expected.get(&topic).and_then(|p| p.get(&msg.partition())) else {
                // A partition revoked since it was fetched: its new owner
                // reads it again from the position the store holds.
                continue;
            };
            if stored.is_some_and(|next| msg.offset() < next) {
                // Already applied; storing its offset would move the position back.
                continue;
            }
            self.metrics.records.with_label_values(&[projection, &topic]).inc();
            advanced.entry(topic.clone()).or_default().insert(msg.partition(), msg.offset() + 1);
            match self.decide(msg, shutdown).await {
                Decision::Apply(change) => changes.entry(topic).or_default().push(change),
                Decision::Stopped => return Ok(Processed::Stopped),
                Decision::DeadLetter(reason) => {
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
        let positions = advanced
            .iter()
            .map(|(topic, partitions)| {
                let positions = partitions
                    .iter()
                    .map(|(&partition, &next_offset)| Position { partition, next_offset, applied_at_ms: now_ms })
                    .collect();
                (topic.clone(), positions)
            })
            .collect();
        let batch = Batch { expected: expected.clone(), changes, positions };
        let timer = self.metrics.batch_seconds.start_timer();
        // A lost answer is retried too: the store then holds the new positions,
        // the retry reports a mismatch, and the next session starts from them.
        match retry("apply batch", shutdown, || store.apply(&batch)).await? {
            ApplyOutcome::Applied { changed } => {
                if advanced.is_empty() {
                    timer.stop_and_discard();
                } else {
                    timer.observe_duration();
                }
                for (topic, n) in changed {
                    self.metrics.applied.with_label_values(&[projection, &topic]).inc_by(n as u64);
                }
                Ok(Processed::Stored(advanced))
            }
            ApplyOutcome::PositionMismatch { topic, partition, expected, stored } => {
                Ok(Processed::Refused(Restart::PositionMismatch { topic, partition, expected, stored }))
            }
            ApplyOutcome::StoreLost => Ok(Processed::Refused(Restart::StoreLost)),
            ApplyOutcome::Retired => Ok(Processed::Refused(Restart::Retired)),
        }
    }

    async fn decide(&self, msg: &OwnedMessage, shutdown: &CancellationToken) -> Decision {
        let Some(key) = msg.key() else {
            return Decision::DeadLetter("record has no key (aggregate id)".into());
        };
        let Ok(aggregate_id) = std::str::from_utf8(key) else {
            return Decision::DeadLetter("key is not UTF-8".into());
        };
        let header = |name: &str| -> Option<String> {
            let headers = msg.headers()?;
            headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let aggregate_type = header(headers::AGGREGATE_TYPE).unwrap_or_else(|| aggregate_from_topic(msg.topic()));
        let header_version = header(headers::AGGREGATE_VERSION).and_then(|v| v.parse::<i64>().ok());
        let Some(payload) = msg.payload() else {
            // A tombstone: the aggregate was erased at this version. One
            // without the header is erased for good (no version can follow).
            let version = header_version.unwrap_or(i64::MAX);
            return Decision::Apply(Change {
                aggregate_type,
                aggregate_id: aggregate_id.to_string(),
                version,
                document: None,
            });
        };
        let decoded = match self.decode(msg, payload, shutdown).await {
            Ok(Some(decoded)) => decoded,
            Ok(None) => return Decision::Stopped,
            Err(reason) => return Decision::DeadLetter(reason),
        };
        let document = match avro_to_json(decoded.value) {
            Ok(d) => d,
            Err(AvroError::Codec(e)) | Err(AvroError::Framing(e)) => {
                return Decision::DeadLetter(format!("not representable as JSON: {e}"));
            }
            Err(e) => return Decision::DeadLetter(e.to_string()),
        };
        let version = header_version.or_else(|| document.get("version").and_then(serde_json::Value::as_i64));
        let Some(version) = version else {
            return Decision::DeadLetter("no aggregate version in headers or snapshot".into());
        };
        Decision::Apply(Change {
            aggregate_type,
            aggregate_id: aggregate_id.to_string(),
            version,
            document: Some(document),
        })
    }

    /// Ok(Some) decoded; Err(reason) when the bytes can never decode (bad
    /// framing, a writer schema that does not parse, bytes that do not decode
    /// with it or do not resolve into the reader): dead-letter. Whatever is
    /// the registry's fault (an id it does not know yet, 5xx, no answer in
    /// time, unreachable) is retried with back-off until it answers, or
    /// Ok(None) at shutdown.
    async fn decode(
        &self,
        msg: &OwnedMessage,
        payload: &[u8],
        shutdown: &CancellationToken,
    ) -> Result<Option<Decoded>, String> {
        let topic = msg.topic();
        let decoder = self.decoders.get(topic).ok_or_else(|| format!("no decoder for topic {topic}"))?;
        let projection = self.config.projection.as_str();
        let mut delay = REGISTRY_BACKOFF_FIRST;
        loop {
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return Ok(None),
                decoded = decoder.decode(payload) => decoded,
            };
            match attempt {
                Ok(decoded) => return Ok(Some(decoded)),
                Err(e) if e.kind() == ErrorKind::Transient => {
                    self.metrics.registry_retries.with_label_values(&[projection, topic]).inc();
                    tracing::warn!(projection, topic, partition = msg.partition(), offset = msg.offset(), error = %e, retry_in = ?delay, "cannot get the writer schema from the registry; retrying (the record waits, it is not dead-lettered)");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(None),
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(REGISTRY_BACKOFF_MAX);
                }
                Err(e) => return Err(format!("undecodable: {e}")),
            }
        }
    }
}

/// Adds each topic's retry topic, read with the same reader schema.
fn with_retry_topics(mut config: ProjectorConfig) -> ProjectorConfig {
    for topic in config.topics.clone() {
        if let Some(reader) = config.readers.get(&topic).cloned() {
            config.readers.insert(retry_topic(&topic), reader);
        }
        config.topics.push(retry_topic(&topic));
    }
    config
}

/// `prefix.article.state` (or its `.retry`) -> `article`
fn aggregate_from_topic(topic: &str) -> String {
    let topic = retried_topic(topic).unwrap_or(topic);
    topic.rsplit('.').nth(1).unwrap_or(topic).to_string()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
