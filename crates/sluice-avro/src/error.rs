use sluice_core::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum AvroError {
    #[error("schema file {path}: {reason}")]
    SchemaFile { path: String, reason: String },
    #[error("not Confluent-framed Avro: {0}")]
    Framing(String),
    #[error("schema registry: {0}")]
    Registry(String),
    #[error("schema registry is unreachable: {0}")]
    RegistryUnavailable(String),
    #[error("avro: {0}")]
    Codec(String),
}

impl AvroError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            AvroError::RegistryUnavailable(_) => ErrorKind::Transient,
            _ => ErrorKind::Permanent,
        }
    }
}

impl From<schema_registry_converter::error::SRCError> for AvroError {
    fn from(e: schema_registry_converter::error::SRCError) -> Self {
        if e.retriable { AvroError::RegistryUnavailable(e.to_string()) } else { AvroError::Registry(e.to_string()) }
    }
}
