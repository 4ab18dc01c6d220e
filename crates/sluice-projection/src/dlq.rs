use sluice_core::headers::dlq;
use sluice_kafka::rdkafka::message::{Header, Headers, OwnedHeaders};
use sluice_kafka::rdkafka::producer::{FutureProducer, FutureRecord};
use sluice_kafka::rdkafka::util::Timeout;

/// Where a record that could not be projected came from, and why.
#[derive(Clone)]
pub(crate) struct DeadLetter<'a> {
    pub projection: &'a str,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    pub headers: Option<&'a sluice_kafka::rdkafka::message::BorrowedHeaders>,
    pub reason: String,
}

/// Sends the original key, value and headers to `<topic>.dlq` with headers
/// that say why and where from. Waits for the broker's acknowledgement so the
/// position can move past the record.
pub(crate) async fn send(producer: &FutureProducer, letter: DeadLetter<'_>) -> anyhow::Result<()> {
    let mut headers = OwnedHeaders::new();
    if let Some(original) = letter.headers {
        for h in original.iter() {
            headers = headers.insert(Header { key: h.key, value: h.value });
        }
    }
    let partition = letter.partition.to_string();
    let offset = letter.offset.to_string();
    headers = headers
        .insert(Header { key: dlq::REASON, value: Some(letter.reason.as_str()) })
        .insert(Header { key: dlq::SOURCE_TOPIC, value: Some(letter.topic) })
        .insert(Header { key: dlq::SOURCE_PARTITION, value: Some(partition.as_str()) })
        .insert(Header { key: dlq::SOURCE_OFFSET, value: Some(offset.as_str()) })
        .insert(Header { key: dlq::PROJECTION, value: Some(letter.projection) });
    // A re-driven record that fails again goes back to its topic's DLQ.
    let base = sluice_core::topics::retried_topic(letter.topic).unwrap_or(letter.topic);
    let topic = sluice_core::topics::dlq_topic(base);
    let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&topic).headers(headers);
    if let Some(k) = letter.key {
        record = record.key(k);
    }
    if let Some(p) = letter.payload {
        record = record.payload(p);
    }
    producer.send(record, Timeout::Never).await.map_err(|(e, _)| anyhow::anyhow!("send to {topic}: {e}"))?;
    Ok(())
}
