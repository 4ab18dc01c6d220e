use crate::START_DEADLINE;
use crate::process::{Managed, expect_ready};
use sluice_kafka::{CleanupPolicy, TopicSpec};
use std::path::PathBuf;
use tempfile::TempDir;

/// An own tansu broker with sqlite storage and the header index.
pub struct TestBroker {
    process: Managed,
    pub port: u16,
    db: PathBuf,
    _dir: TempDir,
}

impl TestBroker {
    pub fn start() -> TestBroker {
        let dir = tempfile::Builder::new().prefix("sluice-tansu-").tempdir().expect("temp dir");
        let db = dir.path().join("tansu.db");
        let log = dir.path().join("tansu.log");
        let port = sluice_stack::free_port().unwrap_or_else(|e| panic!("{e}"));
        let launch = sluice_stack::tansu::launch(port, &db, &log).unwrap_or_else(|e| panic!("{e}"));
        let mut process = Managed::start("tansu", &launch);
        expect_ready(sluice_stack::wait_for_tcp("tansu", port, START_DEADLINE, || process.check_alive(&log)));
        expect_ready(sluice_stack::tansu::create_header_index(&db, START_DEADLINE));
        TestBroker { process, port, db, _dir: dir }
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        sluice_stack::tansu::bootstrap(self.port)
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
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
}
