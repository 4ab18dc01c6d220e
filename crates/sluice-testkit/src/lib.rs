//! Real infrastructure for tests, started on free ports in temporary folders:
//! PostgreSQL (logical WAL), redis-server, the tansu broker and Sluice's own
//! service binaries. Every process dies with the test process (even on
//! SIGKILL) and is stopped on drop. A missing binary fails the test with a
//! message that names it and `make setup`; nothing is skipped.

mod broker;
mod dice;
mod names;
mod pg;
mod process;
mod prometheus;
mod redis_server;
mod registry;
mod service;

pub use broker::TestBroker;
pub use dice::Dice;
pub use names::random_name;
pub use pg::TestPostgres;
pub use prometheus::TestPrometheus;
pub use redis_server::{RedisSnapshot, TestRedis};
pub use registry::{REGISTRY_TOKEN, registry_writer, start_registry, start_registry_with};
pub use service::{ServiceHandle, service_binary};

use std::time::Duration;

/// How long a piece of infrastructure may take to answer before the test fails.
pub const START_DEADLINE: Duration = Duration::from_secs(60);

/// Polls `check` until it returns `Some`, failing after `deadline` with `what`.
pub async fn wait_until<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
