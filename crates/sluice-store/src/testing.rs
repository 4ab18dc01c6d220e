//! Builders for a store's contract tests, the same for every store.

use crate::{ApplyOutcome, Batch, Change, Position, ProjectionStore};
use std::collections::BTreeMap;

/// A batch on `topic`'s partitions 0 and 1: the `expected` next offsets,
/// `changes`, and the new next offset `next` of partition 0, applied at
/// `applied_at_ms`.
pub fn two_partition_batch(
    topic: &str,
    expected: [Option<i64>; 2],
    changes: Vec<Change>,
    next: i64,
    applied_at_ms: i64,
) -> Batch {
    Batch {
        expected: BTreeMap::from([(topic.to_string(), BTreeMap::from([(0, expected[0]), (1, expected[1])]))]),
        changes: BTreeMap::from([(topic.to_string(), changes)]),
        positions: BTreeMap::from([(
            topic.to_string(),
            vec![Position { partition: 0, next_offset: next, applied_at_ms }],
        )]),
    }
}

/// What `apply` answers when `n` changes of `topic` were newer than the store's.
pub fn applied(topic: &str, n: usize) -> ApplyOutcome {
    ApplyOutcome::Applied { changed: BTreeMap::from([(topic.to_string(), n)]) }
}

/// The compare-and-set part of the contract, the same for every store, on a
/// store whose session on `topic` has started and that holds nothing yet:
/// a batch is applied only when every expected position (also of
/// partitions it does not touch) is the stored one, a refused batch writes
/// nothing, and an older snapshot changes nothing while the position moves
/// on. `change(v)` is version `v` of one aggregate; `version()` reads the
/// version the store holds for it.
pub async fn check_positions_compare_and_set<S, V, F>(
    store: &S,
    topic: &str,
    change: impl Fn(i64) -> Change,
    version: V,
) where
    S: ProjectionStore,
    V: Fn() -> F,
    F: Future<Output = Option<i64>>,
{
    let batch = |expected, version, next| two_partition_batch(topic, expected, vec![change(version)], next, 1);
    let apply = async |b: Batch| store.apply(&b).await.expect("apply");
    let mismatch = |partition, expected, stored| ApplyOutcome::PositionMismatch {
        topic: topic.to_string(),
        partition,
        expected,
        stored,
    };
    assert_eq!(apply(batch([None, None], 1, 5)).await, applied(topic, 1));
    // Partition 1 is not in the batch, but it is checked too.
    assert_eq!(apply(batch([Some(5), Some(3)], 2, 6)).await, mismatch(1, Some(3), None));
    // A stale expectation (the answer to an applied batch was lost, and it is sent again).
    assert_eq!(apply(batch([Some(4), None], 2, 6)).await, mismatch(0, Some(4), Some(5)));
    // The very first batch of a partition expects nothing stored there.
    assert_eq!(apply(batch([None, None], 2, 6)).await, mismatch(0, None, Some(5)));
    assert_eq!(version().await, Some(1), "refused batches wrote nothing");

    // The version guard: an older snapshot changes nothing, the position moves on.
    assert_eq!(apply(batch([Some(5), None], 3, 6)).await, applied(topic, 1));
    assert_eq!(apply(batch([Some(6), None], 2, 7)).await, applied(topic, 0));
    assert_eq!(version().await, Some(3));
    let stored = store.start_session(&[topic.to_string()]).await.expect("session");
    assert_eq!(stored[topic][&0].next_offset, 7);
    assert!(!stored[topic].contains_key(&1));
}
