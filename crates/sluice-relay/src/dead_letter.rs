//! Rows that can never be published (an aggregate type that is no valid topic
//! name, a record larger than the broker accepts, an undecodable column) go
//! to `<prefix>.relay.dlq` with the reason, so the slot moves on instead of
//! meeting the same row after every restart. The row stays in the outbox (it
//! is never recorded as relayed), so it can be repaired and replayed.

use crate::RelayMetrics;
use crate::ack::RowAck;
use sluice_core::headers::{self, dlq};
use sluice_kafka::rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use sluice_kafka::rdkafka::producer::{FutureProducer, FutureRecord};
use sluice_kafka::rdkafka::types::RDKafkaErrorCode;
use sluice_kafka::rdkafka::util::Timeout;
use sluice_kafka::{CleanupPolicy, TopicSpec};
use std::sync::Arc;
use std::time::Duration;

/// Headers only the relay's dead letters carry.
pub mod relay_headers {
    pub const SOURCE_TABLE: &str = "sluice.dlq.source_table";
    pub const PAYLOAD_BYTES: &str = "sluice.dlq.payload_bytes";
    /// Present when the broker refused even the capped value: the dead
    /// letter carries only headers and key.
    pub const VALUE_DROPPED: &str = "sluice.dlq.value_dropped";
}

/// `<prefix>.relay.dlq`.
pub fn relay_dlq_topic(prefix: &str) -> String {
    format!("{prefix}.relay.dlq")
}

/// The Kafka client's refusals of one record before it is sent, judged on
/// that record alone (larger than `SLUICE_MAX_RECORD_BYTES`): they recur
/// however often it is sent.
pub(crate) fn refused_locally_for_good(code: RDKafkaErrorCode) -> bool {
    matches!(code, RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize)
}

/// The broker's refusals in a delivery report that hold for every record of
/// the topic. The broker refuses whole batches, so a refusal for size or
/// record format may be caused by a batch-mate: those are not judged per
/// record (the session stops and sends again; see `ack.rs`).
pub(crate) fn refused_by_broker_for_good(code: RDKafkaErrorCode) -> bool {
    matches!(code, RDKafkaErrorCode::InvalidTopic)
}

/// The broker refused a batch as too large: a topic whose
/// `max.message.bytes` is below the relay's batches.
pub(crate) fn batch_too_large(code: RDKafkaErrorCode) -> bool {
    matches!(code, RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge)
}

/// A row that cannot be published, with what is known of it.
pub(crate) struct DeadRow {
    pub reason: String,
    pub table: String,
    pub lsn: String,
    pub committed_at: String,
    /// Header name and value pairs describing the row (event id, aggregate...).
    pub fields: Vec<(&'static str, String)>,
    pub key: Option<Vec<u8>>,
    /// The payload, or for an undecodable row its columns as JSON; `None`
    /// when it is what was too large.
    pub value: Option<Vec<u8>>,
    pub payload_bytes: usize,
}

/// A record the broker refused after it was handed to the producer.
pub(crate) struct BrokerRefusal {
    pub row: Arc<RowAck>,
    pub dead: DeadRow,
}

impl BrokerRefusal {
    pub(crate) fn from_message(msg: &BorrowedMessage<'_>, reason: String, row: Arc<RowAck>) -> Self {
        let mut fields = Vec::new();
        let mut lsn = String::new();
        let mut committed_at = String::new();
        if let Some(h) = msg.headers() {
            for header in h.iter() {
                let value = header.value.map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
                match header.key {
                    headers::SOURCE_LSN => lsn = value,
                    headers::COMMITTED_AT => committed_at = value,
                    k => {
                        if let Some(name) = KNOWN.iter().find(|n| **n == k) {
                            fields.push((*name, value));
                        }
                    }
                }
            }
        }
        let payload_bytes = msg.payload().map_or(0, <[u8]>::len);
        fields.push((dlq::SOURCE_TOPIC, msg.topic().to_string()));
        BrokerRefusal {
            row,
            dead: DeadRow {
                reason,
                table: String::new(),
                lsn,
                committed_at,
                fields,
                key: msg.key().map(<[u8]>::to_vec),
                value: None,
                payload_bytes,
            },
        }
    }
}

const KNOWN: [&str; 5] =
    [headers::EVENT_ID, headers::EVENT_TYPE, headers::AGGREGATE_TYPE, headers::AGGREGATE_VERSION, headers::TRACEPARENT];

/// Sends dead rows to the relay's dead-letter topic and waits for the ack.
pub(crate) struct DeadLetters {
    producer: FutureProducer,
    brokers: String,
    topic: String,
    partitions: i32,
    topic_ready: tokio::sync::OnceCell<()>,
    metrics: RelayMetrics,
}

/// A dead letter carries at most this much of the row's value (a payload, or
/// an undecodable row's columns); the rest is cut, the full size is in
/// `sluice.dlq.payload_bytes`, the row itself stays in the outbox.
pub(crate) const MAX_DEAD_VALUE: usize = 256 * 1024;

impl DeadLetters {
    /// A dead letter not acknowledged within `delivery_timeout_ms` fails the
    /// session (the row stays unconfirmed and is met again after a restart).
    pub(crate) fn new(
        brokers: &str,
        prefix: &str,
        delivery_timeout_ms: u64,
        metrics: RelayMetrics,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            producer: sluice_kafka::producer_config(brokers, "sluice-outbox-relay-dlq")
                .set("message.timeout.ms", delivery_timeout_ms.to_string())
                .create()?,
            brokers: brokers.into(),
            topic: relay_dlq_topic(prefix),
            partitions: 1,
            topic_ready: tokio::sync::OnceCell::new(),
            metrics,
        })
    }

    /// Sends `dead` and waits until the broker has it. A failure here is
    /// transient (broker down): the caller stops without confirming.
    pub(crate) async fn send(&self, dead: &DeadRow, kind: &str) -> anyhow::Result<()> {
        self.topic_ready
            .get_or_try_init(|| async {
                let spec =
                    TopicSpec { name: self.topic.clone(), partitions: self.partitions, cleanup: CleanupPolicy::Delete };
                sluice_kafka::ensure_topics(&self.brokers, &[spec]).await
            })
            .await?;
        let value = dead.value.as_deref().map(|v| &v[..v.len().min(MAX_DEAD_VALUE)]);
        match self.deliver(dead, value).await {
            Ok(()) => {}
            // Even the capped value is refused (a broker with a small limit):
            // the dead letter goes without it rather than stopping the relay.
            Err(e) if value.is_some() && e.rdkafka_error_code().is_some_and(batch_too_large) => {
                self.deliver(dead, None).await.map_err(|e| self.failed(e))?
            }
            Err(e) => return Err(self.failed(e)),
        }
        self.metrics.dead_letters.with_label_values(&[kind]).inc();
        tracing::error!(
            topic = %self.topic, table = %dead.table, lsn = %dead.lsn, reason = %dead.reason,
            "outbox row cannot be published; sent to the relay's dead-letter topic and kept in the outbox (see `sluice dlq`)"
        );
        Ok(())
    }

    fn failed(&self, e: sluice_kafka::rdkafka::error::KafkaError) -> anyhow::Error {
        anyhow::anyhow!("send to the relay's dead-letter topic {}: {e}", self.topic)
    }

    /// One dead letter, acknowledged by the broker, or the error (a delivery
    /// that does not end within the delivery timeout is an error).
    async fn deliver(
        &self,
        dead: &DeadRow,
        value: Option<&[u8]>,
    ) -> Result<(), sluice_kafka::rdkafka::error::KafkaError> {
        let bytes = dead.payload_bytes.to_string();
        let mut record_headers = OwnedHeaders::new()
            .insert(Header { key: dlq::REASON, value: Some(dead.reason.as_str()) })
            .insert(Header { key: relay_headers::SOURCE_TABLE, value: Some(dead.table.as_str()) })
            .insert(Header { key: headers::SOURCE_LSN, value: Some(dead.lsn.as_str()) })
            .insert(Header { key: headers::COMMITTED_AT, value: Some(dead.committed_at.as_str()) })
            .insert(Header { key: relay_headers::PAYLOAD_BYTES, value: Some(bytes.as_str()) });
        for (name, value) in &dead.fields {
            record_headers = record_headers.insert(Header { key: name, value: Some(value.as_str()) });
        }
        if dead.value.is_some() && value.is_none() {
            record_headers = record_headers.insert(Header { key: relay_headers::VALUE_DROPPED, value: Some("true") });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topic).headers(record_headers);
        if let Some(k) = &dead.key {
            record = record.key(k.as_slice());
        }
        if let Some(v) = value {
            record = record.payload(v);
        }
        self.producer.send(record, Timeout::After(Duration::from_secs(5))).await.map(|_| ()).map_err(|(e, _)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch the broker refuses fails every record in it: none of them may
    /// be dead-lettered on that ground (a good row would be lost for good).
    #[test]
    fn broker_refusals_of_a_batch_are_not_judged_per_record() {
        for code in [
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::MessageBatchTooLarge,
            RDKafkaErrorCode::InvalidRecord,
            RDKafkaErrorCode::InvalidMessage,
            RDKafkaErrorCode::PolicyViolation,
        ] {
            assert!(!refused_by_broker_for_good(code), "{code:?}");
        }
        assert!(refused_by_broker_for_good(RDKafkaErrorCode::InvalidTopic));
        assert!(refused_locally_for_good(RDKafkaErrorCode::MessageSizeTooLarge));
    }
}
