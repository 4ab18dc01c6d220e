//! Registry-backed encoding and decoding.

use crate::{AvroError, RegistryEndpoint, frame, unframe};
use apache_avro::types::Value;
use apache_avro::{Schema, to_avro_datum};
use schema_registry_converter::async_impl::schema_registry::{SrSettings, post_schema};
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Encodes values with one writer schema registered under one subject.
/// The schema id is obtained once (register, or look up) and reused.
pub struct RegistryEncoder {
    schema: Schema,
    schema_id: u32,
}

impl RegistryEncoder {
    /// Registers `schema_text` under `subject` (the registry returns the
    /// existing id when the schema is already there).
    pub async fn register(registry: &RegistryEndpoint, subject: &str, schema_text: &str) -> Result<Self, AvroError> {
        let schema = Schema::parse_str(schema_text).map_err(|e| AvroError::Codec(e.to_string()))?;
        // `SrSettings::new` builds a client without any time-out.
        let mut settings = SrSettings::new_builder(registry.url.clone());
        settings.set_timeout(crate::REQUEST_TIMEOUT);
        if !registry.token.is_empty() {
            settings.set_token_authorization(registry.token.expose());
        }
        let settings = settings.build()?;
        let supplied = SuppliedSchema {
            name: None,
            schema_type: SchemaType::Avro,
            schema: schema_text.to_string(),
            references: vec![],
            properties: None,
            tags: None,
        };
        let registered = post_schema(&settings, subject.to_string(), supplied).await?;
        Ok(Self { schema, schema_id: registered.id })
    }

    /// Looks the schema up without registering it (production: schemas are
    /// registered by `sluice schema register`, never by the services).
    pub async fn lookup(registry_url: &str, subject: &str, schema_text: &str) -> Result<Self, AvroError> {
        let schema = Schema::parse_str(schema_text).map_err(|e| AvroError::Codec(e.to_string()))?;
        let id = crate::admin::lookup(registry_url, subject, schema_text).await?.ok_or_else(|| {
            AvroError::Registry(format!(
                "the writer schema is not registered under {subject}; run `sluice schema register` (or set SLUICE_AUTO_REGISTER=true)"
            ))
        })?;
        Ok(Self { schema, schema_id: id })
    }

    pub fn schema_id(&self) -> u32 {
        self.schema_id
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Serializes `item` with the writer schema and frames it.
    pub fn encode<T: serde::Serialize>(&self, item: &T) -> Result<Vec<u8>, AvroError> {
        let value = apache_avro::to_value(item).map_err(|e| AvroError::Codec(e.to_string()))?;
        self.encode_value(value)
    }

    pub fn encode_value(&self, value: Value) -> Result<Vec<u8>, AvroError> {
        let resolved = value
            .resolve(&self.schema)
            .map_err(|e| AvroError::Codec(format!("value does not fit the writer schema: {e}")))?;
        let body = to_avro_datum(&self.schema, resolved).map_err(|e| AvroError::Codec(e.to_string()))?;
        Ok(frame(self.schema_id, &body))
    }
}

/// A decoded record and the id of the schema it was written with.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub writer_schema_id: u32,
    pub value: Value,
}

/// How long a decoder waits for the registry to answer one schema look-up
/// before it reports the registry unavailable (a transient error).
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Decodes Confluent-framed Avro written with any registered schema, resolved
/// into the reader's schema when one is given. Writer schemas are cached by id.
///
/// Errors say whether they can recur for the same bytes: framing, a writer
/// schema that is not Avro or does not parse, and bytes that do not decode
/// with their writer schema (or do not resolve into the reader) are
/// permanent; an unknown id (a follower behind its leader), an unreachable
/// or slow registry and any other answer from it are transient.
#[derive(Clone)]
pub struct RegistryDecoder {
    registry_url: String,
    timeout: Duration,
    reader: Option<Arc<Schema>>,
    writers: Arc<Mutex<HashMap<u32, Arc<Schema>>>>,
}

impl RegistryDecoder {
    pub fn new(registry_url: &str, reader: Option<Schema>) -> Self {
        crate::bound_decoding();
        Self {
            registry_url: registry_url.trim_end_matches('/').to_string(),
            timeout: LOOKUP_TIMEOUT,
            reader: reader.map(Arc::new),
            writers: Arc::default(),
        }
    }

    /// Deadline of one schema look-up.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub async fn decode(&self, bytes: &[u8]) -> Result<Decoded, AvroError> {
        let (id, body) = unframe(bytes)?;
        let writer = self.writer_schema(id).await?;
        let value = crate::decode_datum(&writer, self.reader.as_deref(), body).map_err(|e| match e {
            AvroError::Codec(why) => AvroError::Codec(format!("cannot decode with writer schema {id}: {why}")),
            other => other,
        })?;
        Ok(Decoded { writer_schema_id: id, value })
    }

    async fn writer_schema(&self, id: u32) -> Result<Arc<Schema>, AvroError> {
        if let Some(schema) = self.cached(id) {
            return Ok(schema);
        }
        let schema = Arc::new(self.fetch(id).await?);
        if let Ok(mut cache) = self.writers.lock() {
            cache.insert(id, schema.clone());
        }
        Ok(schema)
    }

    /// `GET /schemas/ids/{id}`, by hand rather than through
    /// `schema_registry_converter`, whose errors do not carry the status and
    /// call 404, 500 and 504 alike "not retriable".
    async fn fetch(&self, id: u32) -> Result<Schema, AvroError> {
        let url = format!("{}/schemas/ids/{id}", self.registry_url);
        let unavailable = |e: String| AvroError::RegistryUnavailable(format!("GET {url}: {e}"));
        let response = crate::http::client()?
            .get(&url)
            .timeout(self.timeout)
            .header(reqwest::header::ACCEPT, crate::admin::CONTENT_TYPE)
            .send()
            .await
            .map_err(|e| unavailable(describe(&e, self.timeout)))?;
        match response.status().as_u16() {
            200 => {}
            404 => return Err(AvroError::UnknownSchemaId(id)),
            // Nothing else it can answer is about this record: 5xx, a proxy's
            // 408/429, or 401/403 until someone fixes the credentials.
            status => {
                let body = response.text().await.unwrap_or_default();
                return Err(unavailable(format!("HTTP {status}: {body}")));
            }
        }
        let body: serde_json::Value =
            response.json().await.map_err(|e| unavailable(format!("unreadable answer: {e}")))?;
        if let Some(kind) = body["schemaType"].as_str()
            && kind != "AVRO"
        {
            return Err(AvroError::Registry(format!("schema {id} is a {kind} schema, not Avro")));
        }
        let text = body["schema"].as_str().ok_or_else(|| unavailable("answer without a schema".into()))?;
        Schema::parse_str(text)
            .map_err(|e| AvroError::Registry(format!("schema {id} from the registry does not parse: {e}")))
    }

    fn cached(&self, id: u32) -> Option<Arc<Schema>> {
        self.writers.lock().ok().and_then(|c| c.get(&id).cloned())
    }
}

/// reqwest's message without its causes says little ("error sending request").
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {timeout:?}");
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
