use crate::{Change, Position};
use std::collections::{BTreeMap, HashMap};

/// One batch for [`ProjectionStore::apply`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Per topic, every partition this projector owns (not only those in the
    /// batch) with the next offset it believes the store holds for it:
    /// `None` when nothing is stored for that partition yet.
    pub expected: BTreeMap<String, BTreeMap<i32, Option<i64>>>,
    /// Per topic, in offset order, changes to store where they are newer
    /// than the stored version.
    pub changes: BTreeMap<String, Vec<Change>>,
    /// Per topic, the positions to store with the changes.
    pub positions: BTreeMap<String, Vec<Position>>,
}

/// What [`ProjectionStore::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Changes and positions are stored; per topic, how many changes were
    /// newer than what the store had.
    Applied { changed: BTreeMap<String, usize> },
    /// A stored position is not the expected one: the store rolled back (a
    /// lost AOF tail, a failover to a lagging replica, a restored backup) or
    /// someone else wrote it. Nothing was written; the projector must start
    /// again from what the store holds.
    PositionMismatch { topic: String, partition: i32, expected: Option<i64>, stored: Option<i64> },
    /// The projection's marker is gone: the store lost its data (e.g. Redis
    /// restarted without persistence). Nothing was written; the projector must
    /// start again from what the store holds (the beginning, usually).
    StoreLost,
    /// The generation this store wrote to was retired by a blue/green
    /// rebuild (sealed while its successor catches up, or dropped): nothing
    /// was written; the projector must start again on the generation that
    /// serves now.
    Retired,
}

/// A read-model store: the data and the positions it was built to, changed
/// together or not at all, and never behind the projector's back.
///
/// The contract, which every store (Redis, PostgreSQL) implements:
/// - [`start_session`](Self::start_session) reads the stored positions and
///   leaves the marker ("this projection's data is here") in one atomic step,
///   so no loss can fall between what is read and what is marked.
/// - [`apply`](Self::apply), in one atomic step, checks the marker and
///   compares every expected position with the stored one; only when all
///   match does it write the version-guarded changes and the new positions.
///   A projector that resumes only from positions it read in a session and
///   then advances them only through `apply` can therefore never skip a record
///   the store does not hold: after a rollback the first `apply` fails and the
///   projector starts a new session from what the store holds.
pub trait ProjectionStore: Send + Sync {
    /// Stored positions by topic and partition (absent: nothing stored), read
    /// in the same atomic step that sets the marker.
    fn start_session(
        &self,
        topics: &[String],
    ) -> impl Future<Output = anyhow::Result<BTreeMap<String, HashMap<i32, Position>>>> + Send;

    /// Applies `batch` if the marker is there and every expected position is
    /// the stored one; writes nothing otherwise.
    fn apply(&self, batch: &Batch) -> impl Future<Output = anyhow::Result<ApplyOutcome>> + Send;
}
