#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("kafka client: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    #[error("topic {topic}: {reason}")]
    Topic { topic: String, reason: String },
}
