use crate::process::Managed;
use crate::{START_DEADLINE, random_name};
use sluice_stack::postgres;
use tempfile::TempDir;
use tokio_postgres::error::SqlState;

/// An own PostgreSQL cluster with `wal_level=logical`.
pub struct TestPostgres {
    process: Managed,
    pub port: u16,
    launch: sluice_stack::Launch,
    log: std::path::PathBuf,
    _dir: TempDir,
}

impl TestPostgres {
    /// A throw-away cluster: without fsync nor synchronous commit (fast;
    /// what a crash loses does not matter to the test).
    pub fn start() -> TestPostgres {
        Self::start_with(true)
    }

    /// A cluster that keeps every commit it acknowledged through a crash of
    /// its processes ([`TestPostgres::crash`]): synchronous commit on.
    pub fn start_durable() -> TestPostgres {
        Self::start_with(false)
    }

    fn start_with(fast_unsafe: bool) -> TestPostgres {
        let bindir = postgres::bindir().unwrap_or_else(|e| panic!("{e}"));
        let user = postgres::server_user().unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::Builder::new().prefix("sluice-pg-").tempdir().expect("temp dir");
        postgres::chown_to(dir.path(), user).unwrap_or_else(|e| panic!("{e}"));
        let data = dir.path().join("data");
        let log = dir.path().join("postgres.log");
        postgres::init(&bindir, &data, user, &dir.path().join("initdb.log")).unwrap_or_else(|e| panic!("{e}"));
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = sluice_stack::free_port().unwrap_or_else(|e| panic!("{e}"));
            let mut launch = postgres::launch(&bindir, &data, dir.path(), port, fast_unsafe, &log);
            launch.user = user;
            let mut process = Managed::start("postgres", &launch).with_stop_signal(sluice_stack::SIGINT);
            let ready = sluice_stack::wait_for_tcp("postgres", port, START_DEADLINE, || process.check_alive(&log));
            match ready {
                Ok(()) => {
                    return TestPostgres { process, port, launch, log, _dir: dir };
                }
                // Another test may have taken the port between probe and bind.
                Err(e) => last_error = e.to_string(),
            }
        }
        panic!("postgres did not start: {last_error}");
    }

    /// An immediate shutdown (SIGQUIT): every backend is killed without a
    /// checkpoint, as in a crash; the next start replays the WAL. Clients
    /// see their connections drop; nothing listens until
    /// [`TestPostgres::start_again`].
    pub fn crash(&mut self) {
        self.process.signal_and_wait(sluice_stack::SIGQUIT);
    }

    /// Starts the cluster again on the same port with the same data, after
    /// [`TestPostgres::crash`]; returns once it accepts sessions.
    pub async fn start_again(&mut self) {
        self.process.respawn(&self.launch);
        let (process, log) = (&mut self.process, &self.log);
        crate::process::expect_ready(sluice_stack::wait_for_tcp("postgres", self.port, START_DEADLINE, || {
            process.check_alive(log)
        }));
        // Recovery: the port opens before sessions are accepted.
        drop(self.connect("postgres").await);
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn url(&self, database: &str) -> String {
        postgres::url(self.port, database)
    }

    /// Creates a database with a random name and returns its URL.
    pub async fn create_database(&self) -> String {
        let name = random_name("db");
        let client = self.connect("postgres").await;
        client
            .batch_execute(&format!("create database {name}"))
            .await
            .unwrap_or_else(|e| panic!("create database {name}: {e}"));
        self.url(&name)
    }

    /// Connects, waiting out "the database system is starting up": the port
    /// opens before the server accepts sessions.
    pub async fn connect(&self, database: &str) -> tokio_postgres::Client {
        let start = tokio::time::Instant::now();
        loop {
            match tokio_postgres::connect(&self.url(database), tokio_postgres::NoTls).await {
                Ok((client, conn)) => {
                    tokio::spawn(conn);
                    return client;
                }
                Err(e) if e.code() == Some(&SqlState::CANNOT_CONNECT_NOW) && start.elapsed() < START_DEADLINE => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => {
                    let detail = e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string());
                    panic!("connect to test postgres: {detail}");
                }
            }
        }
    }
}
