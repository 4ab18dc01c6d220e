//! The contract between the projector runtime and a read-model store.
//!
//! A store (Redis, PostgreSQL, a user's own) holds the data of a projection
//! and the positions it was built to, and changes both in one atomic step:
//! [`ProjectionStore`]. This crate links neither Kafka nor Avro, so that the
//! store crates, and the query API that applies on-demand updates through the
//! same version-guarded upsert, depend on it alone.

mod contract;
mod record;
pub mod testing;

pub use contract::{ApplyOutcome, Batch, ProjectionStore};
pub use record::{Change, Position};
