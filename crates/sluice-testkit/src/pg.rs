use crate::process::Managed;
use crate::{START_DEADLINE, random_name};
use sluice_stack::postgres;
use tempfile::TempDir;
use tokio_postgres::error::SqlState;

/// An own PostgreSQL cluster with `wal_level=logical`.
pub struct TestPostgres {
    process: Managed,
    pub port: u16,
    _dir: TempDir,
}

impl TestPostgres {
    pub fn start() -> TestPostgres {
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
            let mut launch = postgres::launch(&bindir, &data, dir.path(), port, true, &log);
            launch.user = user;
            let mut process = Managed::start("postgres", &launch).with_stop_signal(sluice_stack::SIGINT);
            let ready = sluice_stack::wait_for_tcp("postgres", port, START_DEADLINE, || process.check_alive(&log));
            match ready {
                Ok(()) => {
                    return TestPostgres { process, port, _dir: dir };
                }
                // Another test may have taken the port between probe and bind.
                Err(e) => last_error = e.to_string(),
            }
        }
        panic!("postgres did not start: {last_error}");
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
