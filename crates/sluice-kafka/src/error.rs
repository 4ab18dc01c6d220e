#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("kafka client: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    #[error("topic {topic}: {reason}")]
    Topic { topic: String, reason: String },
    /// No broker answered ListGroups.
    #[error("consumer groups: {0}")]
    Groups(String),
    /// The broker refused to create the topic, with its error code.
    #[error("the broker refuses to create topic {topic}: {code}")]
    TopicRefused { topic: String, code: rdkafka::types::RDKafkaErrorCode },
}

impl KafkaError {
    /// A refusal caused by the topic's name (invalid, or colliding with an
    /// existing topic's), which recurs however often it is asked for; any
    /// other refusal may pass (brokers restarting) or is a setting to fix.
    pub fn is_permanent_topic_refusal(&self) -> bool {
        matches!(self, KafkaError::TopicRefused { code: rdkafka::types::RDKafkaErrorCode::InvalidTopic, .. })
    }
}
