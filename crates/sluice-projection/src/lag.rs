//! How far a projection is behind its topic, per partition.

use crate::Position;
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

/// Lag on `topic` of a projection that stored `positions`: against the
/// topic's watermarks.
pub async fn projection_lag(
    consumer: std::sync::Arc<BaseConsumer>,
    positions: &HashMap<i32, Position>,
    topic: &str,
) -> anyhow::Result<Vec<PartitionLag>> {
    let t = topic.to_string();
    let marks = tokio::task::spawn_blocking(move || sluice_kafka::watermarks(consumer.as_ref(), &t)).await??;
    Ok(marks
        .into_iter()
        .map(|w| {
            let stored = positions.get(&w.partition);
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
