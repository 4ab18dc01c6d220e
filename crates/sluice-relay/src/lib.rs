//! The outbox relay.
//!
//! Reads outbox inserts through PostgreSQL logical replication (pgoutput, via
//! `pg_walstream`), publishes each row to `<prefix>.<aggregatetype>.state`
//! with the payload bytes untouched, and confirms a transaction's end LSN to
//! PostgreSQL only once the broker acknowledged every record of it and of all
//! transactions before it. A delivery that fails stops the relay without
//! confirming: a restart resends from the last confirmed LSN.

mod ack;
mod config;
mod housekeeping;
mod metrics;
mod publication;
mod publisher;
mod relay;
mod replay;
mod row;
mod slot;
mod snapshot;
mod state;
mod table_scan;

pub use config::RelayConfig;
pub use metrics::RelayMetrics;
pub use relay::run_relay;
pub use replay::replay;
pub use row::OutboxRow;
