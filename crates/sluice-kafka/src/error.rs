#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("kafka client: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    #[error("topic {topic}: {reason}")]
    Topic { topic: String, reason: String },
    /// The broker refused to create the topic, with its error code.
    #[error("the broker refuses to create topic {topic}: {code}")]
    TopicRefused { topic: String, code: rdkafka::types::RDKafkaErrorCode },
}

impl KafkaError {
    /// A refusal that will recur however often the topic is asked for (an
    /// invalid or colliding name, a policy, an invalid setting), as opposed
    /// to a broker that is down or busy.
    pub fn is_permanent_topic_refusal(&self) -> bool {
        use rdkafka::types::RDKafkaErrorCode as C;
        matches!(
            self,
            KafkaError::TopicRefused {
                code: C::InvalidTopic
                    | C::PolicyViolation
                    | C::InvalidConfig
                    | C::InvalidPartitions
                    | C::InvalidReplicationFactor,
                ..
            }
        )
    }
}
