//! A schema registry that speaks Confluent's REST API for Avro.
//!
//! This first cut keeps schemas in memory and covers what producers and
//! consumers need (register, look up, fetch by id, list). Compatibility checks
//! and storage in a compacted `_schemas` topic come with the registry issue.

mod api;
pub mod compat;
mod level;
mod store;

pub use api::router;
pub use level::Level;
pub use store::{RegisterError, SchemaStore};
