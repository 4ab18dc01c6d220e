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

/// Scans groups again and again, keeping the end-offset history and the
/// status windows between scans.
pub struct Scanner {
    brokers: String,
    configured: Vec<String>,
    consumer: BaseConsumer,
    histories: HashMap<(String, i32), History>,
    windows: HashMap<(String, String, i32), Window>,
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
            .create()?;
        Ok(Self {
            brokers: brokers.into(),
            configured: groups.to_vec(),
            consumer,
            histories: HashMap::new(),
            windows: HashMap::new(),
            window,
            history,
            lists_groups: None,
        })
    }

    /// One scan. Blocking (broker round trips): run it from `spawn_blocking`.
    pub fn scan(&mut self) -> anyhow::Result<Vec<GroupReport>> {
        let now = chrono::Utc::now().timestamp_millis();
        let listed = match sluice_kafka::list_groups(&self.consumer) {
            Ok(groups) => {
                self.lists_groups = Some(true);
                groups
            }
            Err(e) => {
                if self.lists_groups != Some(false) {
                    tracing::warn!(error = %e, "the broker does not list groups; scanning the configured ones");
                }
                self.lists_groups = Some(false);
                Vec::new()
            }
        };
        let groups: BTreeSet<String> = self.configured.iter().cloned().chain(listed).collect();
        let ends = self.end_offsets()?;
        for ((topic, partition), &end) in &ends {
            let history = self.history;
            self.histories.entry((topic.clone(), *partition)).or_insert_with(|| History::new(history)).record(end, now);
        }
        let partitions: Vec<(String, i32)> = ends.keys().cloned().collect();
        let mut reports = Vec::new();
        for group in groups {
            let report = match sluice_kafka::committed(&self.brokers, &group, &partitions) {
                Ok(committed) => self.report(&group, committed, &ends, now),
                Err(e) => GroupReport { group, rows: Vec::new(), status: Status::Err, error: Some(e.to_string()) },
            };
            reports.push(report);
        }
        Ok(reports)
    }

    /// End offsets of every partition of every topic but the broker's own
    /// (`__`-prefixed).
    fn end_offsets(&self) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
        let metadata = self.consumer.fetch_metadata(None, METADATA_TIMEOUT)?;
        let mut ends = BTreeMap::new();
        for topic in metadata.topics().iter().filter(|t| !t.name().starts_with("__") && t.error().is_none()) {
            for p in topic.partitions() {
                let (_, high) = self.consumer.fetch_watermarks(topic.name(), p.id(), METADATA_TIMEOUT)?;
                ends.insert((topic.name().to_string(), p.id()), high);
            }
        }
        Ok(ends)
    }

    fn report(
        &mut self,
        group: &str,
        committed: Vec<(String, i32, Option<i64>)>,
        ends: &BTreeMap<(String, i32), i64>,
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
                let produced = self
                    .histories
                    .get(&(topic.clone(), partition))
                    .and_then(|h| h.produced_at(committed))
                    .or_else(|| sluice_kafka::record_time(&self.consumer, &topic, partition, committed));
                produced.map(|at| (now - at).max(0) as f64 / 1000.0)
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
        GroupReport { group: group.to_string(), rows, status, error: None }
    }
}
