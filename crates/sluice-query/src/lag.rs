//! The lag of one key: how far the read model's partition that holds the
//! key is behind the topic, in messages and in milliseconds.
//!
//! A background task ([`LagMonitor::refresh`], every
//! `SLUICE_WATERMARK_CACHE_MS`) caches each partition's high watermark and,
//! where the read model is behind, the broker timestamp of the oldest record
//! it has not applied (the relay's produce time). A read then costs no
//! broker round trip: it reads the applied position with the document and
//! computes the lag against the cache.
//!
//! What the figure covers: from the moment a record is on the topic until
//! the read model applied it. Not the relay's own delay (commit → topic): a
//! committed command that is not on the topic yet is invisible here (an
//! `at-least` token covers it). A record produced after the last refresh of
//! the cache is also not counted yet.

use sluice_kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use sluice_kafka::rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use sluice_store::Position;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// The lag of one key (or, for a list, of the worst partition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lag {
    pub messages: i64,
    pub millis: i64,
}

impl Lag {
    pub fn max(self, other: Lag) -> Lag {
        Lag { messages: self.messages.max(other.messages), millis: self.millis.max(other.millis) }
    }
}

#[derive(Debug, Clone, Default)]
struct TopicMarks {
    /// High watermark by partition (index = partition).
    high: Vec<i64>,
    /// Per lagging partition: the applied offset the monitor saw and the
    /// broker time (ms) of the oldest record at or after it.
    oldest: HashMap<i32, (i64, i64)>,
}

/// Cached watermarks and oldest-unapplied times, per topic.
#[derive(Clone)]
pub struct LagMonitor {
    brokers: String,
    marks: Arc<RwLock<HashMap<String, TopicMarks>>>,
    /// Created on first use (the broker may be down at start).
    consumer: Arc<Mutex<Option<BaseConsumer>>>,
    started_ms: i64,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl LagMonitor {
    pub fn new(brokers: &str) -> Self {
        Self { brokers: brokers.into(), marks: Arc::default(), consumer: Arc::default(), started_ms: now_ms() }
    }

    /// Whether the cache holds `topic` (its partitions are known).
    pub fn knows(&self, topic: &str) -> bool {
        self.marks.read().is_ok_and(|m| m.get(topic).is_some_and(|t| !t.high.is_empty()))
    }

    /// The partition of `topic` that holds `key` (the producer's murmur2
    /// partitioner), once the partition count is known.
    pub fn partition_of(&self, topic: &str, key: &str) -> Option<i32> {
        let marks = self.marks.read().ok()?;
        let count = i32::try_from(marks.get(topic)?.high.len()).ok().filter(|n| *n > 0)?;
        Some(sluice_core::partitioner::partition_of(key.as_bytes(), count))
    }

    /// The lag of `partition` of `topic` for a read model at `applied`.
    pub fn lag(&self, topic: &str, partition: i32, applied: Option<&Position>) -> Lag {
        let Ok(marks) = self.marks.read() else { return Lag::default() };
        let Some(marks) = marks.get(topic) else { return Lag::default() };
        let Some(&high) = usize::try_from(partition).ok().and_then(|p| marks.high.get(p)) else {
            return Lag::default();
        };
        let next = applied.map_or(0, |p| p.next_offset);
        if next >= high {
            return Lag::default();
        }
        let now = now_ms();
        let since = match marks.oldest.get(&partition) {
            // Seen at or before `next`: that record is at least as old as the
            // oldest one not applied now (an over-estimate, never under).
            Some(&(offset, at)) if offset <= next => at,
            _ => applied.map_or(self.started_ms, |p| p.applied_at_ms),
        };
        Lag { messages: high - next, millis: (now - since).max(0) }
    }

    /// The worst lag over every partition of `topic`, for a read model at
    /// `positions`.
    pub fn topic_lag(&self, topic: &str, positions: &HashMap<i32, Position>) -> Lag {
        let partitions = self.marks.read().ok().and_then(|m| m.get(topic).map(|t| t.high.len())).unwrap_or(0);
        (0..partitions)
            .filter_map(|p| i32::try_from(p).ok())
            .map(|p| self.lag(topic, p, positions.get(&p)))
            .fold(Lag::default(), Lag::max)
    }

    /// Fetches the watermarks of `topic` and the time of the oldest record
    /// the read model at `positions` has not applied. Blocking (broker round
    /// trips): run it from `spawn_blocking`.
    pub fn refresh_blocking(&self, topic: &str, positions: &HashMap<i32, Position>) -> anyhow::Result<()> {
        let mut guard = self.consumer.lock().map_err(|_| anyhow::anyhow!("lag consumer poisoned"))?;
        if guard.is_none() {
            *guard = Some(
                ClientConfig::new()
                    .set("bootstrap.servers", &self.brokers)
                    .set("group.id", "sluice-query-lag")
                    .set("enable.auto.commit", "false")
                    .set("enable.partition.eof", "false")
                    .set("fetch.wait.max.ms", "10")
                    .create()?,
            );
        }
        let consumer = guard.as_ref().expect("created above");
        let high: Vec<i64> = sluice_kafka::watermarks(consumer, topic)?.iter().map(|w| w.high).collect();
        let previous = self.marks.read().ok().and_then(|m| m.get(topic).map(|t| t.oldest.clone())).unwrap_or_default();
        let mut oldest = HashMap::new();
        for (partition, &end) in high.iter().enumerate() {
            let partition = i32::try_from(partition)?;
            let next = positions.get(&partition).map_or(0, |p| p.next_offset);
            if next >= end {
                continue;
            }
            let known = previous.get(&partition).filter(|(offset, _)| *offset == next).copied();
            if let Some(known) = known.or_else(|| record_time(consumer, topic, partition, next).map(|at| (next, at))) {
                oldest.insert(partition, known);
            }
        }
        if let Ok(mut marks) = self.marks.write() {
            marks.insert(topic.to_string(), TopicMarks { high, oldest });
        }
        Ok(())
    }
}

/// The broker time of the first record of `partition` at or after `offset`.
fn record_time(consumer: &BaseConsumer, topic: &str, partition: i32, offset: i64) -> Option<i64> {
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, partition, Offset::Offset(offset)).ok()?;
    consumer.assign(&assignment).ok()?;
    let started = Instant::now();
    let mut found = None;
    while found.is_none() && started.elapsed() < FETCH_TIMEOUT {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100))
            && message.partition() == partition
            && message.offset() >= offset
        {
            found = message.timestamp().to_millis();
        }
    }
    let _ = consumer.unassign();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(high: Vec<i64>, oldest: HashMap<i32, (i64, i64)>) -> LagMonitor {
        let m = LagMonitor::new("127.0.0.1:1");
        m.marks.write().expect("marks").insert("t".into(), TopicMarks { high, oldest });
        m
    }

    #[test]
    fn caught_up_is_no_lag_and_behind_counts_from_the_oldest_unapplied_record() {
        let now = now_ms();
        let m = monitor(vec![10, 20], HashMap::from([(1, (15, now - 5_000))]));
        let at = |next| Position { partition: 1, next_offset: next, applied_at_ms: now - 1_000 };
        assert_eq!(m.lag("t", 0, Some(&Position { partition: 0, next_offset: 10, applied_at_ms: 0 })), Lag::default());
        let lag = m.lag("t", 1, Some(&at(15)));
        assert_eq!(lag.messages, 5);
        assert!((5_000..6_000).contains(&lag.millis), "{lag:?}");
        // Applied further since the cache was filled: still counted from the
        // older record (an over-estimate, never an under-estimate).
        assert!(m.lag("t", 1, Some(&at(18))).millis >= 5_000);
        // Behind the record the cache knows: counted from the last apply.
        let lag = m.lag("t", 1, Some(&at(12)));
        assert_eq!(lag.messages, 8);
        assert!((1_000..2_000).contains(&lag.millis), "{lag:?}");
        let positions = HashMap::from([(1, at(15))]);
        assert_eq!(m.topic_lag("t", &positions).messages, 10);
    }

    #[test]
    fn keys_go_to_the_producers_partition() {
        let m = monitor(vec![0; 6], HashMap::new());
        assert_eq!(m.partition_of("t", "k"), Some(sluice_core::partitioner::partition_of(b"k", 6)));
        assert_eq!(m.partition_of("other", "k"), None);
    }
}
