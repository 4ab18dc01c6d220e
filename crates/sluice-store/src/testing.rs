//! Builders for a store's contract tests, the same for every store.

use crate::{ApplyOutcome, Batch, Change, Position};
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
