//! Avro for Sluice: load the versioned schemas in `schemas/`, frame and unframe
//! the Confluent wire format, and encode/decode through the schema registry
//! (a wrapper around `schema_registry_converter`, with caching).

pub mod admin;
mod codec;
mod datum;
mod endpoint;
mod error;
mod framing;
mod http;
mod json;
mod limits;
mod schemas;

pub use apache_avro::{Schema, types::Value};
pub use codec::{Decoded, LOOKUP_TIMEOUT, RegistryDecoder, RegistryEncoder};
pub use datum::decode_datum;
pub use endpoint::RegistryEndpoint;
pub use error::AvroError;
pub use framing::{MAGIC_BYTE, frame, unframe};
pub use http::{CONNECT_TIMEOUT, REQUEST_TIMEOUT};
pub use json::avro_to_json;
pub use limits::{MAX_DECODED_LEN, bound_decoding};
pub use schemas::{SchemaFile, SchemaSet};
