//! How far a Redis projection is behind its topic, per partition.

use crate::redis_store::{decode_position, keys};
use anyhow::Context;
use sluice_kafka::rdkafka::consumer::BaseConsumer;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// End of the partition (high watermark).
    pub end_offset: i64,
    /// Next offset the projection will apply (0 when it has applied nothing).
    pub position: i64,
    /// `end_offset - position`: records written but not yet applied.
    pub messages: i64,
    /// When the projection last applied a batch on this partition.
    pub applied_at_ms: Option<i64>,
}

/// Lag of `projection` on `topic`: stored positions against watermarks.
pub async fn redis_projection_lag(
    redis: &mut redis::aio::MultiplexedConnection,
    consumer: std::sync::Arc<BaseConsumer>,
    projection: &str,
    topic: &str,
) -> anyhow::Result<Vec<PartitionLag>> {
    let raw: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(keys::positions(projection, topic))
        .query_async(redis)
        .await
        .context("read stored positions")?;
    let t = topic.to_string();
    let marks = tokio::task::spawn_blocking(move || sluice_kafka::watermarks(consumer.as_ref(), &t)).await??;
    Ok(marks
        .into_iter()
        .map(|w| {
            let stored = raw.get(&w.partition.to_string()).and_then(|v| decode_position(w.partition, v));
            let position = stored.map_or(0, |p| p.next_offset);
            PartitionLag {
                topic: topic.to_string(),
                partition: w.partition,
                end_offset: w.high,
                position,
                messages: (w.high - position).max(0),
                applied_at_ms: stored.map(|p| p.applied_at_ms),
            }
        })
        .collect())
}
