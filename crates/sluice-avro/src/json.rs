use crate::AvroError;
use apache_avro::types::Value;

/// A decoded Avro value as JSON: unions unwrapped, enums as their symbol,
/// timestamps as their integer value.
pub fn avro_to_json(value: Value) -> Result<serde_json::Value, AvroError> {
    serde_json::Value::try_from(value).map_err(|e| AvroError::Codec(e.to_string()))
}
