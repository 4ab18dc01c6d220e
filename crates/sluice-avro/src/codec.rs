//! Registry-backed encoding and decoding.

use crate::{AvroError, frame, unframe};
use apache_avro::types::Value;
use apache_avro::{Schema, from_avro_datum, to_avro_datum};
use schema_registry_converter::async_impl::schema_registry::{SrSettings, get_schema_by_id, post_schema};
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Encodes values with one writer schema registered under one subject.
/// The schema id is obtained once (register, or look up) and reused.
pub struct RegistryEncoder {
    schema: Schema,
    schema_id: u32,
}

impl RegistryEncoder {
    /// Registers `schema_text` under `subject` (the registry returns the
    /// existing id when the schema is already there).
    pub async fn register(registry_url: &str, subject: &str, schema_text: &str) -> Result<Self, AvroError> {
        let schema = Schema::parse_str(schema_text).map_err(|e| AvroError::Codec(e.to_string()))?;
        let settings = SrSettings::new(registry_url.to_string());
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

/// Decodes Confluent-framed Avro written with any registered schema, resolved
/// into the reader's schema when one is given. Writer schemas are cached by id.
#[derive(Clone)]
pub struct RegistryDecoder {
    settings: SrSettings,
    reader: Option<Arc<Schema>>,
    writers: Arc<Mutex<HashMap<u32, Arc<Schema>>>>,
}

impl RegistryDecoder {
    pub fn new(registry_url: &str, reader: Option<Schema>) -> Self {
        Self {
            settings: SrSettings::new(registry_url.to_string()),
            reader: reader.map(Arc::new),
            writers: Arc::default(),
        }
    }

    pub async fn decode(&self, bytes: &[u8]) -> Result<Decoded, AvroError> {
        let (id, mut body) = unframe(bytes)?;
        let writer = self.writer_schema(id).await?;
        let value = from_avro_datum(&writer, &mut body, self.reader.as_deref())
            .map_err(|e| AvroError::Codec(format!("cannot decode with writer schema {id}: {e}")))?;
        Ok(Decoded { writer_schema_id: id, value })
    }

    async fn writer_schema(&self, id: u32) -> Result<Arc<Schema>, AvroError> {
        if let Some(schema) = self.cached(id) {
            return Ok(schema);
        }
        let registered = get_schema_by_id(id, &self.settings).await?;
        let schema = Schema::parse_str(&registered.schema)
            .map_err(|e| AvroError::Registry(format!("schema {id} from the registry does not parse: {e}")))?;
        let schema = Arc::new(schema);
        if let Ok(mut cache) = self.writers.lock() {
            cache.insert(id, schema.clone());
        }
        Ok(schema)
    }

    fn cached(&self, id: u32) -> Option<Arc<Schema>> {
        self.writers.lock().ok().and_then(|c| c.get(&id).cloned())
    }
}
