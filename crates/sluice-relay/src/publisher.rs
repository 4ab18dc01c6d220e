//! Hands outbox rows to the idempotent producer as keyed records with headers.
//! A row that can never be published goes to the dead-letter topic instead.

use crate::ack::{AckContext, RowAck, RowId, TxnAck};
use crate::dead_letter::{DeadLetters, DeadRow, refused_locally_for_good};
use crate::{OutboxRow, RelayMetrics};
use sluice_core::header_set::{HeaderSelection, HeaderSet};
use sluice_core::{headers, topics};
use sluice_kafka::rdkafka::ClientConfig;
use sluice_kafka::rdkafka::error::{KafkaError, RDKafkaErrorCode};
use sluice_kafka::rdkafka::message::{Header, OwnedHeaders};
use sluice_kafka::rdkafka::producer::{BaseRecord, Producer, PurgeConfig, ThreadedProducer};
use sluice_kafka::{CleanupPolicy, TopicSpec};
use sluice_telemetry::prometheus::IntCounter;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why a publisher's wait was cut short: its session is ending.
pub(crate) const SESSION_ENDED: &str = "the relay session is ending";

/// Rows acknowledged but not yet made durable as relayed, above which the
/// publisher waits (like a full producer queue): bounds memory when the
/// database is slower than the broker.
const RECORDER_BACKLOG_LIMIT: usize = 200_000;

pub(crate) struct Publisher {
    producer: ThreadedProducer<AckContext>,
    dead_letters: Arc<DeadLetters>,
    brokers: String,
    prefix: String,
    partitions: i32,
    events_topics: bool,
    headers: HeaderSelection,
    /// Where each aggregate type seen goes (its state topic, and events
    /// topic when enabled); topics are created on first sight. `Err` holds
    /// why the aggregate type cannot be a topic.
    destinations: HashMap<String, Result<Vec<Destination>, String>>,
    metrics: RelayMetrics,
    /// Fires when the session ends (shutdown, lost lock, failed delivery):
    /// every wait of the publisher gives up then.
    cancel: CancellationToken,
}

/// Settings of a publisher.
pub(crate) struct PublisherConfig<'a> {
    pub brokers: &'a str,
    pub prefix: &'a str,
    pub partitions: i32,
    pub events_topics: bool,
    pub delivery_timeout_ms: u64,
    pub max_record_bytes: u64,
    pub headers: HeaderSelection,
}

/// A topic with its record counter and headers, looked up once rather than
/// per record.
struct Destination {
    topic: String,
    records: IntCounter,
    headers: HeaderSet,
}

/// Where a row was read from, for the headers and dead letters.
pub(crate) struct Source<'a> {
    pub table: &'a str,
    pub lsn: &'a str,
    pub committed_at: &'a str,
}

/// The client's queue, in KiB: it bounds the relay's memory (when the broker
/// is the bottleneck it fills and `send` waits for room). 16 MiB keeps
/// batches full (`make bench`: the same rows/s as 64 MiB, a third of the
/// resident memory), and it always holds the largest record allowed: a record
/// larger than the queue would be refused as "queue full" forever.
fn queue_kbytes(max_record_bytes: u64) -> u64 {
    16_384u64.max(max_record_bytes.div_ceil(1024) + 1)
}

fn producer_config(config: &PublisherConfig<'_>) -> ClientConfig {
    let mut settings = sluice_kafka::producer_config(config.brokers, "sluice-outbox-relay");
    settings
        .set("message.timeout.ms", config.delivery_timeout_ms.to_string())
        // A larger record is refused here, alone (dead-lettered); no batch is
        // larger than what the topic accepts.
        .set("message.max.bytes", config.max_record_bytes.to_string())
        .set("batch.size", config.max_record_bytes.to_string())
        .set("queue.buffering.max.kbytes", queue_kbytes(config.max_record_bytes).to_string())
        .set("queue.buffering.max.messages", "20000");
    settings
}

impl Publisher {
    pub(crate) fn new(
        config: &PublisherConfig<'_>,
        context: AckContext,
        dead_letters: Arc<DeadLetters>,
        metrics: RelayMetrics,
        cancel: CancellationToken,
    ) -> anyhow::Result<Self> {
        let producer = producer_config(config).create_with_context(context)?;
        Ok(Self {
            producer,
            dead_letters,
            brokers: config.brokers.into(),
            prefix: config.prefix.into(),
            partitions: config.partitions,
            events_topics: config.events_topics,
            headers: config.headers.clone(),
            destinations: HashMap::new(),
            metrics,
            cancel,
        })
    }

    /// Sends `row` to its state topic (and events topic), creating the topics
    /// the first time an aggregate type is seen. Waits while the client's
    /// queue is full, which bounds memory. `id` names the outbox row to
    /// delete once acknowledged (None for re-published rows).
    pub(crate) async fn publish(
        &mut self,
        row: &OutboxRow,
        source: &Source<'_>,
        txn: &Arc<TxnAck>,
        id: Option<RowId>,
    ) -> anyhow::Result<()> {
        let cancel = self.cancel.clone();
        tokio::select! {
            biased;
            _ = cancel.cancelled() => anyhow::bail!(SESSION_ENDED),
            r = self.ensure_topics(&row.aggregate_type) => r?,
        }
        let destinations = match self.destinations.get(&row.aggregate_type) {
            Some(Ok(d)) => d,
            Some(Err(reason)) => {
                let reason = reason.clone();
                return self.dead_letter(dead_row(row, source, reason, true), "invalid_topic", txn, id).await;
            }
            None => anyhow::bail!("no destination for {}", row.aggregate_type),
        };
        while self.producer.context().finisher.backlog() > RECORDER_BACKLOG_LIMIT {
            self.pause().await?;
        }
        let records = u32::try_from(destinations.len()).unwrap_or(u32::MAX);
        let ack = RowAck::new(txn, id, records);
        for destination in destinations {
            if let Err(refused) = self.send(destination, row, source, &ack).await? {
                // Permanent for this record: the row goes to the dead-letter
                // topic; its other records (if any) still count.
                let dead = dead_row(row, source, refused, false);
                tokio::select! {
                    biased;
                    _ = self.cancel.cancelled() => anyhow::bail!(SESSION_ENDED),
                    r = self.dead_letters.send(&dead, "too_large") => r?,
                }
                ack.mark_dead_lettered();
                if ack.record_done() {
                    self.producer.context().finisher.finish(ack.clone());
                }
            }
        }
        Ok(())
    }

    /// Sends a row that cannot be published to the dead-letter topic; once
    /// there, the row (when its id is known) counts as done and is recorded
    /// as dead, so that snapshots and replays skip it.
    pub(crate) async fn dead_letter(
        &self,
        dead: DeadRow,
        kind: &str,
        txn: &Arc<TxnAck>,
        id: Option<RowId>,
    ) -> anyhow::Result<()> {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => anyhow::bail!(SESSION_ENDED),
            r = self.dead_letters.send(&dead, kind) => r?,
        }
        let ack = RowAck::new(txn, id, 1);
        ack.mark_dead_lettered();
        ack.record_done();
        self.producer.context().finisher.finish(ack);
        Ok(())
    }

    /// A short wait for room (producer queue, recorder backlog); fails once
    /// the session ends, so that no wait outlives it.
    async fn pause(&self) -> anyhow::Result<()> {
        tokio::select! {
            _ = self.cancel.cancelled() => anyhow::bail!(SESSION_ENDED),
            _ = tokio::time::sleep(Duration::from_millis(5)) => Ok(()),
        }
    }

    /// Drops the records still queued in the client (not yet sent): after
    /// the relay lock was lost, another relay may be publishing, and these
    /// older records must not land after its newer ones. Their rows fail
    /// and stay unconfirmed.
    pub(crate) fn purge_queued(&self) {
        self.producer.purge(PurgeConfig::default().queue());
    }

    /// Ok(Ok) when handed to the client, Ok(Err(reason)) when the client
    /// refuses the record for good (too large), Err for anything else.
    async fn send(
        &self,
        destination: &Destination,
        row: &OutboxRow,
        source: &Source<'_>,
        ack: &Arc<RowAck>,
    ) -> anyhow::Result<Result<(), String>> {
        let topic = destination.topic.as_str();
        let version = row.aggregate_version.to_string();
        let values = [
            (headers::EVENT_ID, Some(row.id.as_str())),
            (headers::EVENT_TYPE, Some(row.event_type.as_str())),
            (headers::AGGREGATE_TYPE, Some(row.aggregate_type.as_str())),
            (headers::AGGREGATE_VERSION, Some(version.as_str())),
            (headers::SOURCE_LSN, Some(source.lsn)),
            (headers::COMMITTED_AT, Some(source.committed_at)),
            (headers::TRACEPARENT, row.traceparent.as_deref()),
        ];
        let mut record_headers = OwnedHeaders::new_with_capacity(values.len());
        // A tombstone (an erasure) has no snapshot to carry its version:
        // it always carries the header, or consumers could not order it.
        let tombstone = row.payload.is_none();
        for (key, value) in values {
            let chosen = destination.headers.contains(key) || (tombstone && key == headers::AGGREGATE_VERSION);
            if let Some(value) = value.filter(|_| chosen) {
                record_headers = record_headers.insert(Header { key, value: Some(value) });
            }
        }
        let mut record: BaseRecord<'_, str, [u8], Arc<RowAck>> =
            BaseRecord::with_opaque_to(topic, ack.clone()).key(row.aggregate_id.as_str()).headers(record_headers);
        if let Some(payload) = &row.payload {
            record = record.payload(payload.as_slice());
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    if let Err(e) = self.pause().await {
                        ack.abandon(SESSION_ENDED.into());
                        return Err(e);
                    }
                }
                Err((KafkaError::MessageProduction(code), _)) if refused_locally_for_good(code) => {
                    return Ok(Err(format!("the Kafka client refuses the record for {topic}: {code}")));
                }
                Err((e, _)) => {
                    let reason = format!("cannot hand a record for {topic} to the producer: {e}");
                    ack.abandon(reason.clone());
                    anyhow::bail!(reason);
                }
            }
        }
        destination.records.inc();
        self.metrics.bytes.inc_by(row.payload.as_ref().map_or(0, |p| p.len() as u64));
        Ok(Ok(()))
    }

    async fn ensure_topics(&mut self, aggregate_type: &str) -> anyhow::Result<()> {
        if self.destinations.contains_key(aggregate_type) {
            return Ok(());
        }
        let mut specs = vec![TopicSpec {
            name: topics::state_topic(&self.prefix, aggregate_type),
            partitions: self.partitions,
            cleanup: CleanupPolicy::Compact,
        }];
        if self.events_topics {
            specs.push(TopicSpec {
                name: topics::events_topic(&self.prefix, aggregate_type),
                partitions: self.partitions,
                cleanup: CleanupPolicy::Delete,
            });
        }
        if let Some(reason) = specs.iter().find_map(|s| topics::check_topic_name(&s.name).err()) {
            let reason = format!("aggregate type `{aggregate_type}` makes no valid topic name: {reason}");
            self.destinations.insert(aggregate_type.to_string(), Err(reason));
            return Ok(());
        }
        match sluice_kafka::ensure_topics(&self.brokers, &specs).await {
            Ok(()) => {}
            // Would fail again after every restart: the rows go to the
            // dead-letter topic instead of stopping the relay.
            Err(e) if e.is_permanent_topic_refusal() => {
                let reason = format!("aggregate type `{aggregate_type}`: {e}");
                self.destinations.insert(aggregate_type.to_string(), Err(reason));
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        let destinations = specs
            .into_iter()
            .map(|spec| Destination {
                records: self.metrics.records.with_label_values(&[spec.name.as_str()]),
                topic: spec.name,
                headers: self.headers.for_aggregate(aggregate_type),
            })
            .collect();
        self.destinations.insert(aggregate_type.to_string(), Ok(destinations));
        Ok(())
    }

    /// Waits until every queued record is delivered or refused, or until
    /// `deadline`; returns how many records were still in flight.
    pub(crate) async fn drain(&self, deadline: tokio::time::Instant) -> i32 {
        loop {
            let in_flight = self.producer.in_flight_count();
            if in_flight == 0 || tokio::time::Instant::now() >= deadline {
                return in_flight;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// What a dead letter says about a decoded row.
fn dead_row(row: &OutboxRow, source: &Source<'_>, reason: String, with_payload: bool) -> DeadRow {
    let mut fields = vec![
        (headers::EVENT_ID, row.id.clone()),
        (headers::EVENT_TYPE, row.event_type.clone()),
        (headers::AGGREGATE_TYPE, row.aggregate_type.clone()),
        (headers::AGGREGATE_VERSION, row.aggregate_version.to_string()),
    ];
    if let Some(tp) = &row.traceparent {
        fields.push((headers::TRACEPARENT, tp.clone()));
    }
    DeadRow {
        reason,
        table: source.table.to_string(),
        lsn: source.lsn.to_string(),
        committed_at: source.committed_at.to_string(),
        fields,
        key: Some(row.aggregate_id.clone().into_bytes()),
        value: if with_payload { row.payload.clone() } else { None },
        payload_bytes: row.payload.as_ref().map_or(0, Vec::len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record the relay accepts (up to `SLUICE_MAX_RECORD_BYTES`) always
    /// fits the client's queue: otherwise librdkafka answers "queue full" to
    /// it forever and the relay stops at that row without a word.
    #[test]
    fn the_queue_holds_the_largest_record_allowed() {
        for max_record_bytes in [1_000_000, 16_777_216, 20_000_000, 50_000_000, 1_000_000_000] {
            let config = PublisherConfig {
                brokers: "127.0.0.1:9092",
                prefix: "p",
                partitions: 1,
                events_topics: false,
                delivery_timeout_ms: 1000,
                max_record_bytes,
                headers: HeaderSelection::default(),
            };
            let settings = producer_config(&config);
            let queue: u64 = settings.get("queue.buffering.max.kbytes").expect("set").parse().expect("a number");
            assert!(queue * 1024 > max_record_bytes, "{max_record_bytes} B record, {queue} KiB queue");
            assert!(queue >= 16_384, "the queue keeps batches full");
        }
    }
}
