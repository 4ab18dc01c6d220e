use crate::KafkaError;
use rdkafka::consumer::Consumer;
use std::time::Duration;

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionWatermark {
    pub partition: i32,
    pub low: i64,
    /// The offset the next record will get: the end of the partition.
    pub high: i64,
}

/// Number of partitions of `topic`, from the broker's metadata.
pub fn partition_count<X: rdkafka::consumer::ConsumerContext, C: Consumer<X>>(
    consumer: &C,
    topic: &str,
) -> Result<i32, KafkaError> {
    let metadata = consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
    let found = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| KafkaError::Topic { topic: topic.into(), reason: "not in metadata".into() })?;
    if let Some(err) = found.error() {
        return Err(KafkaError::Topic { topic: topic.into(), reason: format!("{err:?}") });
    }
    i32::try_from(found.partitions().len())
        .map_err(|_| KafkaError::Topic { topic: topic.into(), reason: "too many partitions".into() })
}

/// Low and high watermarks of every partition of `topic`. Blocking: call from
/// `spawn_blocking` in async code.
pub fn watermarks<C: Consumer>(consumer: &C, topic: &str) -> Result<Vec<PartitionWatermark>, KafkaError> {
    let partitions = partition_count(consumer, topic)?;
    (0..partitions)
        .map(|partition| {
            let (low, high) = consumer.fetch_watermarks(topic, partition, METADATA_TIMEOUT)?;
            Ok(PartitionWatermark { partition, low, high })
        })
        .collect()
}
