use crate::START_DEADLINE;
use crate::process::{Managed, expect_ready};
use sluice_kafka::rdkafka::consumer::Consumer;
use sluice_kafka::rdkafka::message::{Message, OwnedMessage};
use sluice_kafka::rdkafka::{Offset, TopicPartitionList};
use sluice_kafka::{CleanupPolicy, TopicSpec};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;
use tempfile::TempDir;

/// An own tansu broker with sqlite storage and the header index.
pub struct TestBroker {
    process: Option<Managed>,
    pub port: u16,
    db: PathBuf,
    log: PathBuf,
    _dir: TempDir,
}

impl TestBroker {
    pub fn start() -> TestBroker {
        let dir = tempfile::Builder::new().prefix("sluice-tansu-").tempdir().expect("temp dir");
        let db = dir.path().join("tansu.db");
        let log = dir.path().join("tansu.log");
        let mut last_error = String::new();
        // Another test may take the port between probe and bind: try others.
        for _ in 0..5 {
            let port = sluice_stack::free_port().unwrap_or_else(|e| panic!("{e}"));
            match Self::spawn(port, &db, &log) {
                Ok(process) => {
                    expect_ready(sluice_stack::tansu::create_header_index(&db, START_DEADLINE));
                    return TestBroker { process: Some(process), port, db, log, _dir: dir };
                }
                Err(e) => last_error = e,
            }
        }
        panic!("tansu did not start: {last_error}");
    }

    fn spawn(port: u16, db: &std::path::Path, log: &std::path::Path) -> Result<Managed, String> {
        let launch = sluice_stack::tansu::launch(port, db, log).unwrap_or_else(|e| panic!("{e}"));
        let mut process = Managed::start("tansu", &launch);
        sluice_stack::wait_for_tcp("tansu", port, START_DEADLINE, || process.check_alive(log))
            .map_err(|e| e.to_string())?;
        Ok(process)
    }

    /// Stops the broker (SIGKILL: an outage, not a shutdown); its data stays.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill_hard();
        }
    }

    /// Starts the broker again on the same port with the same data.
    pub fn restart(&mut self) {
        self.stop();
        let process = Self::spawn(self.port, &self.db, &self.log).unwrap_or_else(|e| panic!("tansu restart: {e}"));
        self.process = Some(process);
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        sluice_stack::tansu::bootstrap(self.port)
    }

    pub fn pid(&self) -> u32 {
        self.process.as_ref().map_or(0, Managed::pid)
    }

    pub fn db_path(&self) -> &std::path::Path {
        &self.db
    }

    pub async fn create_topic(&self, name: &str, partitions: i32, cleanup: CleanupPolicy) {
        let spec = TopicSpec { name: name.into(), partitions, cleanup };
        sluice_kafka::ensure_topics(&self.bootstrap(), &[spec])
            .await
            .unwrap_or_else(|e| panic!("create topic {name}: {e}"));
    }

    /// Every record of `topic` from the start of each partition up to its end
    /// as of now (offsets may have gaps: tansu compacts when it starts).
    /// Fails when the topic's watermarks cannot be read (an empty answer
    /// would make a check of the records pass without any).
    pub async fn read_to_end(&self, topic: &str) -> Vec<OwnedMessage> {
        let consumer = sluice_kafka::consumer(&self.bootstrap(), &crate::random_name("reader")).expect("consumer");
        let marks = sluice_kafka::watermarks(&consumer, topic).unwrap_or_else(|e| panic!("watermarks of {topic}: {e}"));
        let mut unread: HashMap<i32, i64> =
            marks.iter().filter(|w| w.high > w.low).map(|w| (w.partition, w.high)).collect();
        let mut assignment = TopicPartitionList::new();
        for w in &marks {
            assignment.add_partition_offset(topic, w.partition, Offset::Beginning).expect("assign");
        }
        consumer.assign(&assignment).expect("assign");
        let mut seen = Vec::new();
        let start = tokio::time::Instant::now();
        let deadline = START_DEADLINE * 4;
        while !unread.is_empty() {
            assert!(start.elapsed() < deadline, "{topic}: partitions {unread:?} not read to their end in {deadline:?}");
            let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await else { continue };
            let Some(&end) = unread.get(&m.partition()) else { continue };
            if m.offset() + 1 >= end {
                unread.remove(&m.partition());
            }
            if m.offset() < end {
                seen.push(m.detach());
            }
        }
        seen
    }
}
