//! The projector runtime.
//!
//! A projection reads compacted state topics from the positions it stored
//! itself, decodes each snapshot (a tombstone is an erasure), and hands a
//! batch of version-guarded changes together with the new positions to its
//! store ([`ProjectionStore`], from `sluice-store`; this crate knows no
//! store), which applies both in one atomic step. Replays, duplicates and reordering change nothing; records
//! that cannot be decoded go to the dead-letter topic and the projection goes on.

mod dlq;
mod group;
pub mod lag;
mod metrics;
mod runtime;
pub mod service;

pub use metrics::ProjectionMetrics;
pub use runtime::{ProjectorConfig, run_projector};
pub use sluice_store::{ApplyOutcome, Batch, Change, Position, ProjectionStore};
