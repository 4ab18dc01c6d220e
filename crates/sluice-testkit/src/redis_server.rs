use crate::START_DEADLINE;
use crate::process::{Managed, expect_ready};
use tempfile::TempDir;

/// An own redis-server without persistence.
pub struct TestRedis {
    process: Managed,
    pub port: u16,
    _dir: TempDir,
}

impl TestRedis {
    pub fn start() -> TestRedis {
        let dir = tempfile::Builder::new().prefix("sluice-redis-").tempdir().expect("temp dir");
        let log = dir.path().join("redis.log");
        let port = sluice_stack::free_port().unwrap_or_else(|e| panic!("{e}"));
        let launch = sluice_stack::redis::launch(port, dir.path(), &log).unwrap_or_else(|e| panic!("{e}"));
        let mut process = Managed::start("redis-server", &launch);
        expect_ready(sluice_stack::wait_for_tcp("redis-server", port, START_DEADLINE, || process.check_alive(&log)));
        TestRedis { process, port, _dir: dir }
    }

    pub fn url(&self) -> String {
        sluice_stack::redis::url(self.port)
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(self.url()).expect("redis url");
        client.get_multiplexed_async_connection().await.expect("connect to test redis")
    }
}
