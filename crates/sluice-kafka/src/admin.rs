use crate::KafkaError;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupPolicy {
    Compact,
    Delete,
}

impl CleanupPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub cleanup: CleanupPolicy,
}

/// How long compaction keeps a tombstone (an erasure) once it is the last
/// record of its key: 30 days, not Kafka's 1 day. A read model restored
/// from a backup, or a projector that lagged, older than this can miss an
/// erasure whose tombstone is gone (and keep the erased entity).
pub const TOMBSTONE_RETENTION_MS: &str = "2592000000";

/// Creates the topics that do not exist yet; existing ones are left as they are.
pub async fn ensure_topics(brokers: &str, topics: &[TopicSpec]) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", brokers).create()?;
    let new_topics: Vec<NewTopic> = topics
        .iter()
        .map(|t| {
            let topic = NewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(1))
                .set("cleanup.policy", t.cleanup.as_str());
            match t.cleanup {
                CleanupPolicy::Compact => topic.set("delete.retention.ms", TOMBSTONE_RETENTION_MS),
                CleanupPolicy::Delete => topic,
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(name) => tracing::info!(topic = %name, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(KafkaError::TopicRefused { topic: name, code });
            }
        }
    }
    Ok(())
}
