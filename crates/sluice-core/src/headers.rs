//! Names of the Kafka record headers every Sluice record carries (DESIGN.md, Kafka).

pub const EVENT_ID: &str = "sluice.event_id";
pub const EVENT_TYPE: &str = "sluice.event_type";
pub const AGGREGATE_TYPE: &str = "sluice.aggregate_type";
pub const AGGREGATE_VERSION: &str = "sluice.aggregate_version";
pub const SOURCE_LSN: &str = "sluice.source_lsn";
pub const COMMITTED_AT: &str = "sluice.committed_at";
pub const TRACEPARENT: &str = "traceparent";

/// Headers added to a record sent to a dead-letter topic.
pub mod dlq {
    pub const REASON: &str = "sluice.dlq.reason";
    pub const SOURCE_TOPIC: &str = "sluice.dlq.source_topic";
    pub const SOURCE_PARTITION: &str = "sluice.dlq.source_partition";
    pub const SOURCE_OFFSET: &str = "sluice.dlq.source_offset";
    pub const PROJECTION: &str = "sluice.dlq.projection";
}
