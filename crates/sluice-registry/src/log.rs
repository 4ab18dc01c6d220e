//! The `_schemas` topic: the registry's only storage. One partition,
//! compacted; every instance replays it at start and then tails it.

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
use tokio_util::sync::CancellationToken;

pub struct SchemaLog {
    topic: String,
    producer: FutureProducer,
}

impl SchemaLog {
    /// Creates the topic when missing and replays it into `store` up to the
    /// end captured now. Returns the log and a consumer positioned after it.
    pub async fn open(
        brokers: &str,
        topic: &str,
        store: &RwLock<SchemaStore>,
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
            if let Err(e) = apply(store, &msg) {
                tracing::error!(error = %e, offset = msg.offset(), "skipping an unreadable record of the schemas topic");
            }
            position = msg.offset() + 1;
        }
        tracing::info!(topic, records = end, "schemas replayed");
        Ok((Self { topic: topic.into(), producer }, consumer))
    }

    /// Appends a record and waits for the broker's acknowledgement.
    pub async fn append(&self, key: &LogKey, value: Option<&serde_json::Value>) -> anyhow::Result<()> {
        let key = serde_json::to_string(key)?;
        let value = value.map(serde_json::Value::to_string);
        let mut record: FutureRecord<'_, str, str> = FutureRecord::to(&self.topic).key(key.as_str()).partition(0);
        if let Some(v) = &value {
            record = record.payload(v.as_str());
        }
        self.producer
            .send(record, Timeout::After(std::time::Duration::from_secs(30)))
            .await
            .map_err(|(e, _)| anyhow::anyhow!("write to {}: {e}", self.topic))?;
        Ok(())
    }
}

/// Applies what others (and this instance) write, until shutdown.
pub async fn tail(consumer: StreamConsumer, store: Arc<RwLock<SchemaStore>>, shutdown: CancellationToken) {
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => return,
            m = consumer.recv() => m,
        };
        match msg {
            Ok(m) => {
                if let Err(e) = apply(&store, &m) {
                    tracing::error!(error = %e, offset = m.offset(), "skipping an unreadable record of the schemas topic");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the schemas topic failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
}

fn apply<M: Message>(store: &RwLock<SchemaStore>, msg: &M) -> anyhow::Result<()> {
    let key: LogKey = serde_json::from_slice(msg.key().context("record without a key")?).context("record key")?;
    let value: Option<serde_json::Value> =
        msg.payload().map(serde_json::from_slice).transpose().context("record value")?;
    store.write().map_err(|_| anyhow::anyhow!("store lock poisoned"))?.apply(&key, value.as_ref());
    Ok(())
}
