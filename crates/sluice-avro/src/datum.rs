//! One record's Avro datum, decoded strictly.
//!
//! apache-avro 0.21 is lenient where a read model must not be: where the
//! input ends at a union (or at a field with a default) it makes up a value
//! (null) instead of failing, so a record cut off before its last nullable
//! field, or an older version's bytes under a newer schema's id, decodes
//! with that field null (found by the `avro_decode` fuzz target: an author
//! cut off inside `bio` came back as `Union(1, Null)`); and bytes after the
//! datum are ignored. A Confluent-framed record holds exactly one whole
//! datum, so a record is refused (an undecodable record: a permanent error,
//! the DLQ) when decoding it reads past its end or leaves bytes unread.

use crate::AvroError;
use apache_avro::types::Value;
use apache_avro::{Schema, from_avro_datum};
use std::io::Read;

/// Decodes `body` with `writer`, then resolves it into `reader` if given.
pub fn decode_datum(writer: &Schema, reader: Option<&Schema>, body: &[u8]) -> Result<Value, AvroError> {
    crate::bound_decoding();
    let mut input = Exact { rest: body, overran: false };
    let decoded = from_avro_datum(writer, &mut input, None);
    if input.overran {
        return Err(AvroError::Codec("the record ends before its schema does (cut off, or another schema's)".into()));
    }
    let value = decoded.map_err(|e| AvroError::Codec(e.to_string()))?;
    if !input.rest.is_empty() {
        return Err(AvroError::Codec(format!("{} byte(s) after the record", input.rest.len())));
    }
    match reader {
        Some(reader) => value.resolve(reader).map_err(|e| AvroError::Codec(e.to_string())),
        None => Ok(value),
    }
}

/// The record's bytes, noting any read past their end (which apache-avro
/// may answer with a made-up value rather than an error).
struct Exact<'a> {
    rest: &'a [u8],
    overran: bool,
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !buf.is_empty() && self.rest.is_empty() {
            self.overran = true;
        }
        self.rest.read(buf)
    }
}
