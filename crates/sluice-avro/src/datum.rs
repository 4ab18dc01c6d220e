//! One record's Avro datum, decoded strictly.
//!
//! apache-avro 0.21 is lenient where a read model must not be: a union cut
//! off by the end of the input comes back as null, a truncated record can
//! come back as a value its own schema does not allow (found by the
//! `avro_decode` fuzz target: a cut-off `bio` decoded as `Union(1, Null)`,
//! the string branch holding null), and bytes after the datum are ignored. A
//! Confluent-framed record holds exactly one datum, so a record is refused
//! (an undecodable record: a permanent error, the DLQ) when bytes remain
//! after it or when what was decoded does not fit the writer's schema.

use crate::AvroError;
use apache_avro::types::Value;
use apache_avro::{Schema, from_avro_datum};

/// Decodes `body` with `writer`, then resolves it into `reader` if given.
pub fn decode_datum(writer: &Schema, reader: Option<&Schema>, body: &[u8]) -> Result<Value, AvroError> {
    crate::bound_decoding();
    let mut rest = body;
    let value = from_avro_datum(writer, &mut rest, None).map_err(|e| AvroError::Codec(e.to_string()))?;
    if !rest.is_empty() {
        return Err(AvroError::Codec(format!("{} byte(s) after the record", rest.len())));
    }
    if !value.validate(writer) {
        return Err(AvroError::Codec("the decoded record does not fit its writer schema (cut off or corrupt)".into()));
    }
    match reader {
        Some(reader) => value.resolve(reader).map_err(|e| AvroError::Codec(e.to_string())),
        None => Ok(value),
    }
}
