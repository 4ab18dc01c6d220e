//! The `_schemas` topic: the registry's only storage. One partition,
//! compacted; every instance replays it at start and then tails it. State
//! changes only by applying records in log order, an instance's own writes
//! included (see `store` for why ids depend on that order).

use crate::SchemaStore;
use crate::record::LogKey;
use anyhow::Context;
use sluice_kafka::rdkafka::consumer::{Consumer, StreamConsumer};
use sluice_kafka::rdkafka::message::Message;
use sluice_kafka::rdkafka::producer::{FutureProducer, FutureRecord};
use sluice_kafka::rdkafka::util::Timeout;
use sluice_kafka::rdkafka::{Offset, TopicPartitionList};
use sluice_kafka::{CleanupPolicy, TopicSpec};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long a write may take to be acknowledged and read back.
const WRITE_DEADLINE: Duration = Duration::from_secs(30);

pub struct SchemaLog {
    topic: String,
    producer: FutureProducer,
}

impl SchemaLog {
    /// Creates the topic when missing and replays it into `store` up to the
    /// end captured now (`applied` follows). Returns the log and a consumer
    /// positioned after it.
    pub async fn open(
        brokers: &str,
        topic: &str,
        store: &RwLock<SchemaStore>,
        applied: &watch::Sender<i64>,
    ) -> anyhow::Result<(Self, StreamConsumer)> {
        sluice_kafka::ensure_topics(
            brokers,
            &[TopicSpec { name: topic.into(), partitions: 1, cleanup: CleanupPolicy::Compact }],
        )
        .await
        .with_context(|| format!("create {topic}"))?;
        let producer = sluice_kafka::producer(brokers, "sluice-schema-registry")?;
        let group = format!("sluice-schema-registry-{}", std::process::id());
        let consumer = sluice_kafka::consumer(brokers, &group)?;
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(topic, 0, Offset::Beginning)?;
        consumer.assign(&assignment)?;
        let metadata = sluice_kafka::metadata_client(brokers)?;
        let t = topic.to_string();
        let (_, end) =
            tokio::task::spawn_blocking(move || metadata.fetch_watermarks(&t, 0, std::time::Duration::from_secs(10)))
                .await??;
        let mut position = 0;
        while position < end {
            let msg = consumer.recv().await.context("read the schemas topic")?;
            apply(store, &msg);
            position = msg.offset() + 1;
            applied.send_replace(position);
        }
        tracing::info!(topic, records = end, "schemas replayed");
        Ok((Self { topic: topic.into(), producer }, consumer))
    }

    /// Appends a record, waits for the broker's acknowledgement and returns
    /// its offset.
    pub async fn append(&self, key: &LogKey, value: Option<&serde_json::Value>) -> anyhow::Result<i64> {
        let key = serde_json::to_string(key)?;
        let value = value.map(serde_json::Value::to_string);
        let mut record: FutureRecord<'_, str, str> = FutureRecord::to(&self.topic).key(key.as_str()).partition(0);
        if let Some(v) = &value {
            record = record.payload(v.as_str());
        }
        let delivery = self.producer.send(record, Timeout::After(WRITE_DEADLINE));
        let delivered = tokio::time::timeout(WRITE_DEADLINE, delivery)
            .await
            .map_err(|_| anyhow::anyhow!("write to {}: no acknowledgement in {WRITE_DEADLINE:?}", self.topic))?
            .map_err(|(e, _)| anyhow::anyhow!("write to {}: {e}", self.topic))?;
        Ok(delivered.offset)
    }
}

/// Waits until this instance has applied the log up to `offset`.
pub async fn read_back(applied: &mut watch::Receiver<i64>, offset: i64) -> anyhow::Result<()> {
    tokio::time::timeout(WRITE_DEADLINE, applied.wait_for(|position| *position > offset))
        .await
        .map_err(|_| anyhow::anyhow!("the schemas topic did not show offset {offset} in {WRITE_DEADLINE:?}"))?
        .map_err(|_| anyhow::anyhow!("the schemas topic reader stopped"))?;
    Ok(())
}

/// Applies what others (and this instance) write, until shutdown.
pub async fn tail(
    consumer: StreamConsumer,
    store: Arc<RwLock<SchemaStore>>,
    applied: watch::Sender<i64>,
    shutdown: CancellationToken,
) {
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => return,
            m = consumer.recv() => m,
        };
        match msg {
            Ok(m) => {
                apply(&store, &m);
                applied.send_replace(m.offset() + 1);
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the schemas topic failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
}

fn apply<M: Message>(store: &RwLock<SchemaStore>, msg: &M) {
    if let Err(e) = try_apply(store, msg) {
        tracing::warn!(error = %e, offset = msg.offset(), "a record of the schemas topic is void or unreadable; skipped");
    }
}

fn try_apply<M: Message>(store: &RwLock<SchemaStore>, msg: &M) -> anyhow::Result<()> {
    let key: LogKey = serde_json::from_slice(msg.key().context("record without a key")?).context("record key")?;
    let value: Option<serde_json::Value> =
        msg.payload().map(serde_json::from_slice).transpose().context("record value")?;
    store
        .write()
        .map_err(|_| anyhow::anyhow!("store lock poisoned"))?
        .apply(&key, value.as_ref())
        .map_err(anyhow::Error::msg)
}
