//! Consumer-group membership. Replicas of a projector share the partitions
//! of its topics (`cooperative-sticky`: a rebalance moves only the partitions
//! that change owner). A partition assigned to this replica starts where the
//! *store* says, read at that moment: the group's committed offsets are for
//! monitoring only. A revoked partition's records not yet stored are
//! dropped, not stored: its new owner reads them again from the position the
//! store holds, and the store's compare-and-set refuses any batch built on a
//! position another replica moved meanwhile.

use crate::ProjectionStore;
use sluice_kafka::rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use sluice_kafka::rdkafka::types::RDKafkaRespErr;
use sluice_kafka::rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Per topic and partition, the next offset the store holds (None: nothing).
pub(crate) type Expected = BTreeMap<String, BTreeMap<i32, Option<i64>>>;

/// The partitions this replica owns, as the rebalance callbacks left them.
#[derive(Debug, Default)]
pub(crate) struct Owned {
    /// Owned partitions with the position the store held when they were
    /// assigned, advanced by every stored batch.
    pub expected: Expected,
    /// End offsets of the owned partitions when they were assigned: the
    /// bootstrap is complete once every one is reached.
    pub targets: HashMap<(String, i32), i64>,
    /// Why an assignment could not be positioned (the store did not answer):
    /// the session must start again.
    pub failure: Option<String>,
    /// Whether the group assigned this replica anything yet (even nothing).
    pub joined: bool,
}

pub(crate) struct GroupContext<S> {
    pub store: Arc<S>,
    pub topics: Vec<String>,
    pub owned: Arc<Mutex<Owned>>,
    pub runtime: tokio::runtime::Handle,
    pub projection: String,
}

impl<S: ProjectionStore + 'static> ClientContext for GroupContext<S> {}

impl<S: ProjectionStore + 'static> ConsumerContext for GroupContext<S> {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.position(consumer, tpl);
                if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.release(tpl);
                if cooperative { consumer.incremental_unassign(tpl) } else { consumer.unassign() }
            }
            other => {
                tracing::error!(projection = %self.projection, error = ?other, "consumer group rebalance failed");
                self.fail(format!("rebalance failed: {other:?}"));
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            self.fail(format!("cannot apply the group's assignment: {e}"));
        }
    }
}

impl<S: ProjectionStore + 'static> GroupContext<S> {
    /// Sets each assigned partition's fetch offset to the position the store
    /// holds now (the beginning where it holds none), and records it.
    pub(crate) fn position<C: Consumer<Self>>(&self, consumer: &C, tpl: &mut TopicPartitionList) {
        let assigned: Vec<(String, i32)> =
            tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
        let store = self.store.clone();
        let topics = self.topics.clone();
        // The callback runs inside the consumer's poll, on a runtime worker:
        // block_in_place lets the runtime go on while the store answers.
        let stored = tokio::task::block_in_place(|| self.runtime.block_on(store.start_session(&topics)));
        let stored = match stored {
            Ok(stored) => stored,
            Err(e) => {
                // Fetch from the beginning: the next batch's compare-and-set
                // fails unless the store truly holds nothing, and the
                // session starts again.
                self.fail(format!("cannot read the stored positions of newly assigned partitions: {e:#}"));
                BTreeMap::new()
            }
        };
        let mut ends = Vec::with_capacity(assigned.len());
        for (topic, partition) in &assigned {
            let marks = consumer.fetch_watermarks(topic, *partition, Duration::from_secs(10)).unwrap_or((0, 0));
            ends.push(marks);
        }
        let Ok(mut owned) = self.owned.lock() else { return };
        owned.joined = true;
        for ((topic, partition), (low, end)) in assigned.into_iter().zip(ends) {
            let next = stored.get(&topic).and_then(|p| p.get(&partition)).map(|p| p.next_offset);
            if let Some(next) = next.filter(|next| *next > end) {
                // The topic was deleted and made again (or the broker lost
                // its data): resuming would skip the new records up to the
                // stored position. Only an operator can say what is right.
                let reason = format!(
                    "{topic}/{partition}: the store's position {next} is beyond the end of the partition ({end}); \
                     the topic was recreated or the broker lost data: bootstrap the projection again under a new name"
                );
                tracing::error!(projection = %self.projection, %reason, "cannot resume");
                owned.failure.get_or_insert(reason);
            }
            let offset = next.map_or(Offset::Beginning, Offset::Offset);
            if let Err(e) = tpl.set_partition_offset(&topic, partition, offset) {
                owned.failure.get_or_insert(format!("cannot position {topic}/{partition}: {e}"));
            }
            tracing::info!(projection = %self.projection, topic, partition, position = ?next, "partition assigned");
            owned.expected.entry(topic.clone()).or_default().insert(partition, next);
            owned.targets.insert((topic, partition), bootstrap_target(next, low, end));
        }
    }

    fn release(&self, tpl: &TopicPartitionList) {
        let Ok(mut owned) = self.owned.lock() else { return };
        for e in tpl.elements() {
            tracing::info!(projection = %self.projection, topic = e.topic(), partition = e.partition(), "partition revoked");
            if let Some(partitions) = owned.expected.get_mut(e.topic()) {
                partitions.remove(&e.partition());
            }
            owned.targets.remove(&(e.topic().to_string(), e.partition()));
        }
        owned.expected.retain(|_, partitions| !partitions.is_empty());
    }

    fn fail(&self, reason: String) {
        if let Ok(mut owned) = self.owned.lock() {
            owned.failure.get_or_insert(reason);
        }
    }
}

/// The position at which a partition assigned at `next` (stored; None:
/// nothing) counts as caught up, given its first and end offsets: its end,
/// unless no record is left to read there (retention deleted them all, as in
/// a retry topic), when it counts as caught up already: no record will come
/// to move the position.
fn bootstrap_target(next: Option<i64>, low: i64, end: i64) -> i64 {
    let from = next.unwrap_or(0);
    if from.max(low) >= end { from.min(end) } else { end }
}

#[cfg(test)]
mod tests {
    use super::bootstrap_target;

    #[test]
    fn a_partition_whose_records_are_all_deleted_counts_as_caught_up() {
        assert_eq!(bootstrap_target(None, 0, 10), 10, "records to read");
        assert_eq!(bootstrap_target(Some(4), 0, 10), 10);
        assert_eq!(bootstrap_target(None, 7, 10), 10, "some deleted, some left");
        assert_eq!(bootstrap_target(None, 10, 10), 0, "all deleted: reached with nothing stored");
        assert_eq!(bootstrap_target(Some(6), 10, 10), 6, "all deleted beyond the stored position");
        assert_eq!(bootstrap_target(None, 0, 0), 0, "empty");
        assert_eq!(bootstrap_target(Some(10), 10, 10), 10);
    }
}
