//! Which changes of a batch win, decided before anything is written.

use sluice_store::{Batch, Change};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// An aggregate: (type, id).
pub type Key<'a> = (&'a str, &'a str);

/// Every aggregate the batch touches, once.
pub fn keys(batch: &Batch) -> BTreeSet<Key<'_>> {
    batch.changes.values().flatten().map(|c| (c.aggregate_type.as_str(), c.aggregate_id.as_str())).collect()
}

#[derive(Debug, PartialEq)]
pub struct Plan<'a> {
    /// Per aggregate, the newest change of the batch, if it is newer than
    /// what the store holds (its row or its erasure marker): what to write.
    pub winners: Vec<&'a Change>,
    /// Per topic, how many changes were newer than the store's version at
    /// the time they came (in offset order), as if applied one by one: a
    /// batch with versions 1 and 2 of a new key changed it twice.
    pub changed: BTreeMap<String, usize>,
}

/// `stored`: per aggregate the store's version before the batch, the
/// higher of its row's and its erasure marker's (absent: neither).
pub fn plan<'a>(batch: &'a Batch, stored: &HashMap<Key<'_>, i64>) -> Plan<'a> {
    let mut changed: BTreeMap<String, usize> = batch
        .expected
        .keys()
        .chain(batch.positions.keys())
        .chain(batch.changes.keys())
        .map(|t| (t.clone(), 0))
        .collect();
    let mut newest: BTreeMap<Key<'a>, &'a Change> = BTreeMap::new();
    for (topic, changes) in &batch.changes {
        for change in changes {
            let key = (change.aggregate_type.as_str(), change.aggregate_id.as_str());
            let current = newest.get(&key).map(|c| c.version).or_else(|| stored.get(&key).copied());
            if current.is_none_or(|v| change.version > v) {
                newest.insert(key, change);
                *changed.entry(topic.clone()).or_default() += 1;
            }
        }
    }
    Plan { winners: newest.into_values().collect(), changed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_store::Position;

    fn change(id: &str, version: i64) -> Change {
        Change { aggregate_type: "article".into(), aggregate_id: id.into(), version, document: None }
    }

    fn batch(changes: Vec<Change>) -> Batch {
        Batch {
            expected: BTreeMap::from([("quiet".to_string(), BTreeMap::from([(0, None)]))]),
            changes: BTreeMap::from([("t".to_string(), changes)]),
            positions: BTreeMap::from([(
                "t".to_string(),
                vec![Position { partition: 0, next_offset: 1, applied_at_ms: 0 }],
            )]),
        }
    }

    #[test]
    fn the_newest_version_of_a_key_wins_and_each_newer_one_counts() {
        let b = batch(vec![change("a", 2), change("a", 1), change("a", 3), change("a", 3), change("b", 1)]);
        let p = plan(&b, &HashMap::new());
        assert_eq!(
            p.winners.iter().map(|c| (c.aggregate_id.as_str(), c.version)).collect::<Vec<_>>(),
            [("a", 3), ("b", 1)]
        );
        // a2, a3 and b1 were newer than what came before them; a1 and the duplicate a3 were not.
        assert_eq!(p.changed, BTreeMap::from([("quiet".into(), 0), ("t".into(), 3)]));
    }

    #[test]
    fn nothing_at_or_below_the_stored_version_or_erasure_wins() {
        let b = batch(vec![change("a", 5), change("b", 4), change("c", 9)]);
        let stored = HashMap::from([(("article", "a"), 5), (("article", "b"), 3), (("article", "c"), i64::MAX)]);
        let p = plan(&b, &stored);
        assert_eq!(p.winners.iter().map(|c| (c.aggregate_id.as_str(), c.version)).collect::<Vec<_>>(), [("b", 4)]);
        assert_eq!(p.changed["t"], 1);
    }
}
