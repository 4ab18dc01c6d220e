//! One scan of every group: what it committed, where each partition ends,
//! the lag in messages and seconds, and its status over the last scans.

use crate::history::History;
use crate::status::{Sample, Status, Window};
use sluice_kafka::rdkafka::ClientConfig;
use sluice_kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// One partition a group committed on.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub topic: String,
    pub partition: i32,
    pub committed: i64,
    pub end: i64,
    pub lag_messages: i64,
    /// Age of the oldest record not consumed (0 when caught up); `None` when
    /// neither the history nor the broker could tell.
    pub lag_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupReport {
    pub group: String,
    pub rows: Vec<Row>,
    pub status: Status,
    /// Why its offsets could not be read (status `ERR`).
    pub error: Option<String>,
}

type PartitionKey = (String, i32);

/// Scans groups again and again, keeping between scans the end-offset
/// history, the status windows, one offset reader per group and the record
/// times already read; what a scan no longer sees is dropped.
pub struct Scanner {
    brokers: String,
    configured: Vec<String>,
    consumer: BaseConsumer,
    readers: HashMap<String, BaseConsumer>,
    histories: HashMap<PartitionKey, History>,
    windows: HashMap<(String, String, i32), Window>,
    record_times: HashMap<(String, i32, i64), i64>,
    /// The groups the broker listed last (kept when a listing fails).
    known: BTreeSet<String>,
    window: usize,
    history: usize,
    /// Whether the broker answered ListGroups at the last scan.
    pub lists_groups: Option<bool>,
}

impl Scanner {
    /// `groups`: names to scan even if the broker cannot list them.
    pub fn new(brokers: &str, groups: &[String], window: usize, history: usize) -> anyhow::Result<Self> {
        let consumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "sluice-lag")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            // A committed offset retention deleted must not be read as the
            // newest record (and its age as no lag).
            .set("auto.offset.reset", "error")
            .create()?;
        Ok(Self {
            brokers: brokers.into(),
            configured: groups.to_vec(),
            consumer,
            readers: HashMap::new(),
            histories: HashMap::new(),
            windows: HashMap::new(),
            record_times: HashMap::new(),
            known: BTreeSet::new(),
            window,
            history,
            lists_groups: None,
        })
    }

    /// One scan. Blocking (broker round trips): run it from `spawn_blocking`.
    pub fn scan(&mut self) -> anyhow::Result<Vec<GroupReport>> {
        let now = chrono::Utc::now().timestamp_millis();
        match sluice_kafka::list_groups(&self.consumer) {
            Ok(groups) => {
                self.lists_groups = Some(true);
                self.known = groups.into_iter().collect();
            }
            Err(e) => {
                if self.lists_groups != Some(false) {
                    tracing::warn!(error = %e, "the brokers did not list groups; scanning the last known and configured ones");
                }
                self.lists_groups = Some(false);
            }
        }
        let groups: BTreeSet<String> = self.configured.iter().cloned().chain(self.known.iter().cloned()).collect();
        let ends = self.end_offsets()?;
        for ((topic, partition), &end) in &ends {
            let history = self.history;
            self.histories.entry((topic.clone(), *partition)).or_insert_with(|| History::new(history)).record(end, now);
        }
        self.histories.retain(|key, _| ends.contains_key(key));
        let partitions: Vec<PartitionKey> = ends.keys().cloned().collect();
        let mut reports = Vec::new();
        for group in &groups {
            let committed = match self.reader(group) {
                Ok(reader) => sluice_kafka::committed(reader, &partitions).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let report = match committed {
                Ok(committed) => self.report(group, committed, &ends, now),
                Err(error) => {
                    GroupReport { group: group.clone(), rows: Vec::new(), status: Status::Err, error: Some(error) }
                }
            };
            reports.push(report);
        }
        self.readers.retain(|group, _| groups.contains(group));
        let seen: BTreeSet<(String, String, i32)> = reports
            .iter()
            .flat_map(|r| r.rows.iter().map(|row| (r.group.clone(), row.topic.clone(), row.partition)))
            .collect();
        self.windows.retain(|key, _| seen.contains(key));
        let lagging: BTreeSet<(String, i32, i64)> = reports
            .iter()
            .flat_map(|r| r.rows.iter().map(|row| (row.topic.clone(), row.partition, row.committed)))
            .collect();
        self.record_times.retain(|key, _| lagging.contains(key));
        Ok(reports)
    }

    fn reader(&mut self, group: &str) -> Result<&BaseConsumer, sluice_kafka::KafkaError> {
        if !self.readers.contains_key(group) {
            let reader = sluice_kafka::group_reader(&self.brokers, group)?;
            self.readers.insert(group.to_string(), reader);
        }
        Ok(&self.readers[group])
    }

    /// End offsets of every partition of every topic but the broker's own
    /// (`__`-prefixed), in one request per broker; partitions without an
    /// answer are left out of this scan.
    fn end_offsets(&self) -> anyhow::Result<BTreeMap<PartitionKey, i64>> {
        let metadata = self.consumer.fetch_metadata(None, METADATA_TIMEOUT)?;
        let partitions: Vec<PartitionKey> = metadata
            .topics()
            .iter()
            .filter(|t| !t.name().starts_with("__") && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| (t.name().to_string(), p.id())))
            .collect();
        let ends = sluice_kafka::end_offsets(&self.consumer, &partitions)?;
        Ok(ends.into_iter().map(|(topic, partition, end)| ((topic, partition), end)).collect())
    }

    fn report(
        &mut self,
        group: &str,
        committed: Vec<(String, i32, Option<i64>)>,
        ends: &BTreeMap<PartitionKey, i64>,
        now: i64,
    ) -> GroupReport {
        let mut rows = Vec::new();
        let mut status = Status::Ok;
        for (topic, partition, committed) in committed {
            let (Some(committed), Some(&end)) = (committed, ends.get(&(topic.clone(), partition))) else { continue };
            let lag_messages = (end - committed).max(0);
            let lag_seconds = if lag_messages == 0 {
                Some(0.0)
            } else {
                self.produced_at(&topic, partition, committed).map(|at| (now - at).max(0) as f64 / 1000.0)
            };
            let window = self.window;
            let w = self
                .windows
                .entry((group.to_string(), topic.clone(), partition))
                .or_insert_with(|| Window::new(window));
            w.push(Sample { committed, end });
            status = status.max(w.status());
            rows.push(Row { topic, partition, committed, end, lag_messages, lag_seconds });
        }
        // A group named in the configuration that committed nothing: most
        // likely a wrong name.
        if rows.is_empty() && self.configured.iter().any(|g| g == group) && !self.known.contains(group) {
            let error = Some("no committed offsets (is the group name right?)".to_string());
            return GroupReport { group: group.to_string(), rows, status: Status::Err, error };
        }
        GroupReport { group: group.to_string(), rows, status, error: None }
    }

    /// When the record at `offset` was produced: from the end-offset
    /// history, or (older than the history) its broker time, read once.
    fn produced_at(&mut self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let key = (topic.to_string(), partition);
        if let Some(at) = self.histories.get(&key).and_then(|h| h.produced_at(offset)) {
            return Some(at);
        }
        let cached = (topic.to_string(), partition, offset);
        if let Some(&at) = self.record_times.get(&cached) {
            return Some(at);
        }
        let at = sluice_kafka::record_time(&self.consumer, topic, partition, offset)?;
        self.record_times.insert(cached, at);
        Some(at)
    }
}
