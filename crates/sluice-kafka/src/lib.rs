//! Kafka client setup shared by every Sluice service.
//!
//! Producers are idempotent (`acks=all`) and partition with librdkafka's
//! `murmur2_random`, the Java client's partitioner, so every service computes a
//! key's partition the same way. Consumers ask for small fetch waits because
//! the local broker (tansu) sleeps out `fetch.wait.max.ms` on every fetch.

mod admin;
mod client;
mod error;
mod groups;
mod watermarks;

pub use admin::{CleanupPolicy, TOMBSTONE_RETENTION_MS, TopicSpec, ensure_topics};
pub use client::{consumer, consumer_config, metadata_client, producer, producer_config};
pub use error::KafkaError;
pub use groups::{committed, end_offsets, group_reader, list_groups, record_time};
pub use rdkafka;
pub use watermarks::{PartitionWatermark, partition_count, watermarks};
