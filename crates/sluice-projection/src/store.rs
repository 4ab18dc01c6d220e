use crate::{Position, Upsert};
use std::collections::HashMap;

/// A read-model store. `apply` must write the upserts that are newer than the
/// stored versions **and** the positions in one atomic step.
pub trait ProjectionStore: Send + Sync {
    /// Stored positions of `topic` by partition; empty for a new projection.
    fn load_positions(&self, topic: &str) -> impl Future<Output = anyhow::Result<HashMap<i32, Position>>> + Send;

    /// Leaves a marker in the store meaning "this projection's data is here".
    fn mark_initialized(&self) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Applies the batch; returns how many upserts changed the store, or
    /// `None` without applying anything when the marker is gone: the store
    /// lost its data (a Redis restarted without persistence) and the
    /// projection must be rebuilt from the start.
    fn apply(
        &self,
        topic: &str,
        upserts: &[Upsert],
        positions: &[Position],
    ) -> impl Future<Output = anyhow::Result<Option<usize>>> + Send;
}
