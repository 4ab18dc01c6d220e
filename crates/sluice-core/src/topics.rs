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

/// `<topic>.retry`: dead letters re-driven once their cause is fixed
/// (`sluice dlq replay`), `cleanup.policy=delete`. Projectors read it beside
/// `<topic>` through the same version guard, so an old record re-driven
/// there never rolls anything back, and the compacted `<topic>` keeps each
/// key's newest record last.
pub fn retry_topic(topic: &str) -> String {
    format!("{topic}.retry")
}

/// The topic whose retry topic `topic` is, if it is one.
pub fn retried_topic(topic: &str) -> Option<&str> {
    topic.strip_suffix(".retry")
}

/// Kafka's rule for topic names: 1 to 249 characters of `[a-zA-Z0-9._-]`,
/// not `.` or `..`.
pub fn check_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 249 {
        return Err(format!("topic names have 1 to 249 characters, `{name}` has {}", name.len()));
    }
    if name == "." || name == ".." {
        return Err(format!("`{name}` is not a topic name"));
    }
    match name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        Some(c) => Err(format!("topic `{name}` contains {c:?}; only a-z, A-Z, 0-9, '.', '_' and '-' are allowed")),
        None => Ok(()),
    }
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

    #[test]
    fn topic_names_follow_kafkas_rule() {
        assert!(check_topic_name("sluice.article.state").is_ok());
        assert!(check_topic_name("a-b_c.D9").is_ok());
        assert!(check_topic_name("sluice.bad type.state").is_err());
        assert!(check_topic_name("sluice.x/y.state").is_err());
        assert!(check_topic_name("").is_err());
        assert!(check_topic_name("..").is_err());
        assert!(check_topic_name(&"a".repeat(250)).is_err());
    }
}
