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
//!
//! When it cannot say, it says so (`None`: the `unknown` header, and a
//! `bounded` read is refreshed): the topic not known yet, a cache older than
//! its maximum age (the broker unreachable), or a read model behind records
//! whose time the cache does not know. It never guesses low.

use sluice_kafka::rdkafka::ClientConfig;
use sluice_kafka::rdkafka::consumer::BaseConsumer;
use sluice_store::Position;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

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

#[derive(Debug, Clone)]
struct TopicMarks {
    fetched_at: Instant,
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
    /// A cache older than this is not used.
    max_age: Duration,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl LagMonitor {
    /// A monitor whose cache is used while it is younger than `max_age`.
    pub fn new(brokers: &str, max_age: Duration) -> Self {
        Self { brokers: brokers.into(), marks: Arc::default(), consumer: Arc::default(), max_age }
    }

    /// The partition of `topic` that holds `key` (the producer's murmur2
    /// partitioner), once the partition count is known.
    pub fn partition_of(&self, topic: &str, key: &str) -> Option<i32> {
        let marks = self.marks.read().ok()?;
        let count = i32::try_from(marks.get(topic)?.high.len()).ok().filter(|n| *n > 0)?;
        Some(sluice_core::partitioner::partition_of(key.as_bytes(), count))
    }

    /// The lag of `partition` of `topic` for a read model at `applied`;
    /// `None` when the cache cannot say (see the module's comment).
    pub fn lag(&self, topic: &str, partition: i32, applied: Option<&Position>) -> Option<Lag> {
        let marks = self.marks.read().ok()?;
        let marks = marks.get(topic).filter(|m| m.fetched_at.elapsed() <= self.max_age)?;
        let high = *usize::try_from(partition).ok().and_then(|p| marks.high.get(p))?;
        let next = applied.map_or(0, |p| p.next_offset);
        if next >= high {
            return Some(Lag::default());
        }
        // The cached oldest record is at or before `next`: it is at least as
        // old as the oldest one not applied now (an over-estimate, never
        // under). Past `next`, or not known: the cache cannot say.
        let &(offset, at) = marks.oldest.get(&partition)?;
        (offset <= next).then(|| Lag { messages: high - next, millis: (now_ms() - at).max(0) })
    }

    /// The worst lag over every partition of `topic`, for a read model at
    /// `positions`; `None` when the lag of any partition is unknown.
    pub fn topic_lag(&self, topic: &str, positions: &HashMap<i32, Position>) -> Option<Lag> {
        let partitions = self.marks.read().ok().and_then(|m| m.get(topic).map(|t| t.high.len()))?;
        if partitions == 0 {
            return None;
        }
        (0..partitions).try_fold(Lag::default(), |worst, p| {
            let p = i32::try_from(p).ok()?;
            Some(worst.max(self.lag(topic, p, positions.get(&p))?))
        })
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
            if let Some(known) =
                known.or_else(|| sluice_kafka::record_time(consumer, topic, partition, next).map(|at| (next, at)))
            {
                oldest.insert(partition, known);
            }
        }
        if let Ok(mut marks) = self.marks.write() {
            marks.insert(topic.to_string(), TopicMarks { fetched_at: Instant::now(), high, oldest });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(high: Vec<i64>, oldest: HashMap<i32, (i64, i64)>) -> LagMonitor {
        let m = LagMonitor::new("127.0.0.1:1", Duration::from_secs(60));
        m.marks.write().expect("marks").insert("t".into(), TopicMarks { fetched_at: Instant::now(), high, oldest });
        m
    }

    #[test]
    fn caught_up_is_no_lag_and_behind_counts_from_the_oldest_unapplied_record() {
        let now = now_ms();
        let m = monitor(vec![10, 20], HashMap::from([(1, (15, now - 5_000))]));
        // A projector applying continuously: its last apply is recent.
        let at = |next| Position { partition: 1, next_offset: next, applied_at_ms: now - 10 };
        let caught_up = Position { partition: 0, next_offset: 10, applied_at_ms: 0 };
        assert_eq!(m.lag("t", 0, Some(&caught_up)), Some(Lag::default()));
        let lag = m.lag("t", 1, Some(&at(15))).expect("known");
        assert_eq!(lag.messages, 5);
        assert!((5_000..6_000).contains(&lag.millis), "{lag:?}");
        // Applied further since the cache was filled: still counted from the
        // older record (an over-estimate, never an under-estimate).
        assert!(m.lag("t", 1, Some(&at(18))).expect("known").millis >= 5_000);
        // Behind the record the cache knows the time of: unknown, not the
        // (recent) time of the last apply.
        assert_eq!(m.lag("t", 1, Some(&at(12))), None);
        let positions = HashMap::from([(0, caught_up), (1, at(15))]);
        assert_eq!(m.topic_lag("t", &positions).map(|l| l.messages), Some(5));
        // A partition behind with no known time makes the topic's lag unknown.
        assert_eq!(m.topic_lag("t", &HashMap::from([(1, at(15))])), None);
    }

    #[test]
    fn an_old_cache_is_not_used() {
        let m = LagMonitor::new("127.0.0.1:1", Duration::from_millis(1));
        let old = Instant::now().checked_sub(Duration::from_secs(1)).expect("instant");
        m.marks
            .write()
            .expect("marks")
            .insert("t".into(), TopicMarks { fetched_at: old, high: vec![10], oldest: HashMap::new() });
        let caught_up = Position { partition: 0, next_offset: 10, applied_at_ms: 0 };
        assert_eq!(m.lag("t", 0, Some(&caught_up)), None);
    }

    #[test]
    fn keys_go_to_the_producers_partition() {
        let m = monitor(vec![0; 6], HashMap::new());
        assert_eq!(m.partition_of("t", "k"), Some(sluice_core::partitioner::partition_of(b"k", 6)));
        assert_eq!(m.partition_of("other", "k"), None);
    }
}
