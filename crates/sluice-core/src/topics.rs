//! Topic and subject naming (DESIGN.md, Kafka and Schemas).

/// `<prefix>.<aggregate>.state`: compacted, one record per aggregate version.
pub fn state_topic(prefix: &str, aggregate_type: &str) -> String {
    format!("{prefix}.{}.state", aggregate_type.to_ascii_lowercase())
}

/// `<prefix>.<aggregate>.events`: the full history, `cleanup.policy=delete`.
pub fn events_topic(prefix: &str, aggregate_type: &str) -> String {
    format!("{prefix}.{}.events", aggregate_type.to_ascii_lowercase())
}

/// `<topic>.dlq`: records a projection could not decode or apply.
pub fn dlq_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// TopicNameStrategy subject for record values.
pub fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_design() {
        assert_eq!(state_topic("sluice", "Article"), "sluice.article.state");
        assert_eq!(events_topic("cms", "author"), "cms.author.events");
        assert_eq!(dlq_topic("sluice.article.state"), "sluice.article.state.dlq");
        assert_eq!(value_subject("sluice.article.state"), "sluice.article.state-value");
    }
}
