//! What every Sluice service shares for operations: JSON logs, a Prometheus
//! registry, the `/metrics`, `/healthz` and `/readyz` endpoints, and a
//! cancellation token fired by SIGTERM or SIGINT.
//!
//! Metric names follow `sluice_<component>_<what>_<unit>`, counters end in
//! `_total`, and values are in base units (seconds, bytes).

pub mod auth;
mod health;
pub mod http_metrics;
mod logging;
mod ops;
pub mod rate_limit;
mod shutdown;

pub use health::{Readiness, ops_router};
pub use logging::init_logging;
pub use ops::OpsServer;
pub use prometheus;
pub use shutdown::shutdown_token;

mod serve;
pub use serve::serve;

mod service;
pub use service::run_service;

mod retry;
pub use retry::retry_until_shutdown;
