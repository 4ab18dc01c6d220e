//! Hands outbox rows to the idempotent producer as keyed records with headers.

use crate::ack::{AckContext, TxnAck};
use crate::{OutboxRow, RelayMetrics};
use sluice_core::{headers, topics};
use sluice_kafka::rdkafka::error::{KafkaError, RDKafkaErrorCode};
use sluice_kafka::rdkafka::message::{Header, OwnedHeaders};
use sluice_kafka::rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use sluice_kafka::{CleanupPolicy, TopicSpec};
use sluice_telemetry::prometheus::IntCounter;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct Publisher {
    producer: ThreadedProducer<AckContext>,
    brokers: String,
    prefix: String,
    partitions: i32,
    events_topics: bool,
    /// Where each aggregate type seen goes (its state topic, and events
    /// topic when enabled); topics are created on first sight.
    destinations: HashMap<String, Vec<Destination>>,
    metrics: RelayMetrics,
}

/// A topic with its record counter, looked up once rather than per record.
struct Destination {
    topic: String,
    records: IntCounter,
}

/// Where a row was read from, for the headers.
pub(crate) struct Source<'a> {
    pub lsn: &'a str,
    pub committed_at: &'a str,
}

impl Publisher {
    pub(crate) fn new(
        brokers: &str,
        prefix: &str,
        partitions: i32,
        events_topics: bool,
        metrics: RelayMetrics,
    ) -> anyhow::Result<Self> {
        let producer = sluice_kafka::producer_config(brokers, "sluice-outbox-relay").create_with_context(AckContext)?;
        Ok(Self {
            producer,
            brokers: brokers.into(),
            prefix: prefix.into(),
            partitions,
            events_topics,
            destinations: HashMap::new(),
            metrics,
        })
    }

    /// Sends `row` to its state topic (and events topic), creating the topics
    /// the first time an aggregate type is seen. Waits while the client's
    /// queue is full, which bounds memory.
    pub(crate) async fn publish(
        &mut self,
        row: &OutboxRow,
        source: &Source<'_>,
        ack: &Arc<TxnAck>,
    ) -> anyhow::Result<()> {
        self.ensure_topics(&row.aggregate_type).await?;
        for destination in self.destinations.get(&row.aggregate_type).into_iter().flatten() {
            self.send(destination, row, source, ack).await?;
        }
        Ok(())
    }

    async fn send(
        &self,
        destination: &Destination,
        row: &OutboxRow,
        source: &Source<'_>,
        ack: &Arc<TxnAck>,
    ) -> anyhow::Result<()> {
        let topic = destination.topic.as_str();
        let version = row.aggregate_version.to_string();
        let mut record_headers = OwnedHeaders::new_with_capacity(7)
            .insert(Header { key: headers::EVENT_ID, value: Some(row.id.as_str()) })
            .insert(Header { key: headers::EVENT_TYPE, value: Some(row.event_type.as_str()) })
            .insert(Header { key: headers::AGGREGATE_TYPE, value: Some(row.aggregate_type.as_str()) })
            .insert(Header { key: headers::AGGREGATE_VERSION, value: Some(version.as_str()) })
            .insert(Header { key: headers::SOURCE_LSN, value: Some(source.lsn) })
            .insert(Header { key: headers::COMMITTED_AT, value: Some(source.committed_at) });
        if let Some(tp) = &row.traceparent {
            record_headers = record_headers.insert(Header { key: headers::TRACEPARENT, value: Some(tp.as_str()) });
        }
        let mut record: BaseRecord<'_, str, [u8], Arc<TxnAck>> =
            BaseRecord::with_opaque_to(topic, ack.clone()).key(row.aggregate_id.as_str()).headers(record_headers);
        if let Some(payload) = &row.payload {
            record = record.payload(payload.as_slice());
        }
        ack.record_sent();
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => {
                    ack.record_unsent();
                    return Err(anyhow::anyhow!("cannot hand a record for {topic} to the producer: {e}"));
                }
            }
        }
        destination.records.inc();
        self.metrics.bytes.inc_by(row.payload.as_ref().map_or(0, |p| p.len() as u64));
        Ok(())
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
        sluice_kafka::ensure_topics(&self.brokers, &specs).await?;
        let destinations = specs
            .into_iter()
            .map(|spec| Destination {
                records: self.metrics.records.with_label_values(&[spec.name.as_str()]),
                topic: spec.name,
            })
            .collect();
        self.destinations.insert(aggregate_type.to_string(), destinations);
        Ok(())
    }

    /// Waits until every queued record is delivered or refused.
    pub(crate) fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(timeout) {
            tracing::warn!(error = %e, "producer flush did not complete");
        }
    }
}
