//! The projector runtime.
//!
//! A projection reads compacted state topics from the positions it stored
//! itself, decodes each snapshot, and hands a batch of version-guarded upserts
//! together with the new positions to its store, which applies both in one
//! atomic step. Replays, duplicates and reordering change nothing; records
//! that cannot be decoded go to the dead-letter topic and the projection goes on.

mod dlq;
pub mod lag;
mod metrics;
mod record;
pub mod redis_store;
mod runtime;
mod store;

pub use metrics::ProjectionMetrics;
pub use record::{Position, Upsert};
pub use runtime::{ProjectorConfig, run_projector};
pub use store::{ApplyOutcome, Batch, ProjectionStore};
