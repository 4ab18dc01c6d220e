use crate::START_DEADLINE;
use crate::process::{Managed, expect_ready};
use sluice_stack::Launch;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// An own redis-server without automatic persistence. [`TestRedis::snapshot`]
/// and [`TestRedis::restore`] roll its data back on demand.
pub struct TestRedis {
    process: Managed,
    pub port: u16,
    launch: Launch,
    log: PathBuf,
    dir: TempDir,
}

/// A copy of the RDB file a `SAVE` wrote.
pub struct RedisSnapshot {
    path: PathBuf,
}

impl TestRedis {
    pub fn start() -> TestRedis {
        let dir = tempfile::Builder::new().prefix("sluice-redis-").tempdir().expect("temp dir");
        let log = dir.path().join("redis.log");
        let mut last_error = String::new();
        // Another test may take the port between probe and bind: try others.
        for _ in 0..5 {
            let port = sluice_stack::free_port().unwrap_or_else(|e| panic!("{e}"));
            let launch = sluice_stack::redis::launch(port, dir.path(), &log).unwrap_or_else(|e| panic!("{e}"));
            let mut process = Managed::start("redis-server", &launch);
            match sluice_stack::wait_for_tcp("redis-server", port, START_DEADLINE, || process.check_alive(&log)) {
                Ok(()) => return TestRedis { process, port, launch, log, dir },
                Err(e) => last_error = e.to_string(),
            }
        }
        panic!("redis-server did not start: {last_error}");
    }

    fn wait_listening(process: &mut Managed, port: u16, log: &Path) {
        expect_ready(sluice_stack::wait_for_tcp("redis-server", port, START_DEADLINE, || process.check_alive(log)));
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

    /// `SAVE`s the dataset and keeps a copy of the file: a backup, or the
    /// state of a replica that stops receiving writes now.
    pub async fn snapshot(&self) -> RedisSnapshot {
        let mut conn = self.connection().await;
        let _: () = redis::cmd("SAVE").query_async(&mut conn).await.expect("SAVE");
        let path = self.dir.path().join(format!("{}.rdb", crate::random_name("snapshot")));
        std::fs::copy(self.dir.path().join("dump.rdb"), &path).expect("copy dump.rdb");
        RedisSnapshot { path }
    }

    /// Kills the server: Redis down, until the test ends or
    /// [`TestRedis::start_again`].
    pub fn stop(&mut self) {
        self.process.kill_hard();
    }

    /// Starts the server again on the same port after [`TestRedis::stop`]:
    /// empty, since nothing was saved (a cache node that crashed).
    pub async fn start_again(&mut self) {
        self.process.kill_hard();
        // (A file an earlier snapshot saved would be loaded.)
        let _ = std::fs::remove_file(self.dir.path().join("dump.rdb"));
        self.process.respawn(&self.launch);
        self.wait_loaded().await;
    }

    /// Kills the server (nothing is saved), puts `snapshot` in place of its
    /// data file and starts it again on the same port: a restored backup, a
    /// lost AOF tail, or a failover to a replica that was that far behind.
    /// Clients see their connections drop, then the older data.
    pub async fn restore(&mut self, snapshot: &RedisSnapshot) {
        self.process.kill_hard();
        std::fs::copy(&snapshot.path, self.dir.path().join("dump.rdb")).expect("restore dump.rdb");
        self.process.respawn(&self.launch);
        self.wait_loaded().await;
    }

    async fn wait_loaded(&mut self) {
        Self::wait_listening(&mut self.process, self.port, &self.log);
        // It listens before it has loaded the file, answering LOADING meanwhile.
        let client = redis::Client::open(self.url()).expect("redis url");
        crate::wait_until("redis-server to load its data", START_DEADLINE, || {
            let client = client.clone();
            async move {
                let mut conn = client.get_multiplexed_async_connection().await.ok()?;
                redis::cmd("PING").query_async::<String>(&mut conn).await.ok()
            }
        })
        .await;
    }
}
