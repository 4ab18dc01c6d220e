use sluice_core::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum AvroError {
    #[error("schema file {path}: {reason}")]
    SchemaFile { path: String, reason: String },
    #[error("not Confluent-framed Avro: {0}")]
    Framing(String),
    #[error("schema registry: {0}")]
    Registry(String),
    /// Unreachable, timed out, or answered 5xx (or anything but a schema or
    /// a 404): the same call may succeed later.
    #[error("schema registry is unavailable: {0}")]
    RegistryUnavailable(String),
    /// The registry does not know this id (yet): a follower that has not
    /// replayed the registration, or a registry restored from an older backup.
    #[error("schema registry does not know schema id {0} (yet)")]
    UnknownSchemaId(u32),
    #[error("avro: {0}")]
    Codec(String),
}

impl AvroError {
    /// Transient errors are about the registry, not about the bytes at hand:
    /// retry them. Permanent ones recur for the same input.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AvroError::RegistryUnavailable(_) | AvroError::UnknownSchemaId(_) => ErrorKind::Transient,
            _ => ErrorKind::Permanent,
        }
    }
}

impl From<schema_registry_converter::error::SRCError> for AvroError {
    fn from(e: schema_registry_converter::error::SRCError) -> Self {
        if e.retriable { AvroError::RegistryUnavailable(e.to_string()) } else { AvroError::Registry(e.to_string()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_trouble_with_the_registry_is_transient() {
        assert_eq!(AvroError::UnknownSchemaId(7).kind(), ErrorKind::Transient);
        assert_eq!(AvroError::RegistryUnavailable("HTTP 503".into()).kind(), ErrorKind::Transient);
        assert_eq!(AvroError::Framing("first byte".into()).kind(), ErrorKind::Permanent);
        assert_eq!(AvroError::Codec("cannot decode".into()).kind(), ErrorKind::Permanent);
        assert_eq!(AvroError::Registry("not Avro".into()).kind(), ErrorKind::Permanent);
        for status in [500, 502, 503, 504, 408, 429] {
            assert!(crate::http::is_retryable_status(status), "{status}");
        }
        for status in [400, 404, 409, 422] {
            assert!(!crate::http::is_retryable_status(status), "{status}");
        }
    }
}
