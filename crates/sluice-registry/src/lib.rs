//! A schema registry that speaks Confluent's REST API for Avro.
//!
//! Its only storage is a compacted `_schemas` topic: every instance replays it
//! at start and tails it, so instances are stateless. One instance (the
//! leader) writes; followers forward writes to it.

mod api;
pub mod compat;
mod error;
mod identity;
mod level;
mod log;
mod record;
mod registry;
mod store;

pub use api::{CONTENT_TYPE, Leader, OPENAPI, router};
pub use error::RegistryError;
pub use level::Level;
pub use registry::{Registry, SubjectVersion, VersionSpec};
pub use store::SchemaStore;

/// The form by which two registered texts count as the same schema (the same
/// id, no compatibility check).
pub fn identity(text: &str) -> Result<String, String> {
    store::parse(text).map(|(_, identity)| identity)
}
