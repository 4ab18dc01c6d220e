//! The outbox relay.
//!
//! Reads outbox inserts through PostgreSQL logical replication (pgoutput, via
//! `pg_walstream`), publishes each row to `<prefix>.<aggregatetype>.state`
//! with the payload bytes untouched, and confirms a transaction's end LSN to
//! PostgreSQL only once the broker acknowledged every record of it and of all
//! transactions before it, and once every acknowledged row is deleted from
//! the outbox (or recorded for the retention) by its id. A delivery that
//! fails stops the session without confirming: a restart resends from the
//! last confirmed LSN. One relay per slot is active (a session advisory lock);
//! others stand by. Rows that can never be published go to a dead-letter topic.

mod ack;
mod config;
mod dead_letter;
mod health;
mod housekeeping;
mod lock;
mod metrics;
mod pipeline;
mod preflight;
mod publication;
mod publisher;
mod recorder;
mod relay;
mod replay;
mod row;
mod session;
mod slot;
mod snapshot;
mod state;
mod table_scan;

pub use config::RelayConfig;
pub use dead_letter::{relay_dlq_topic, relay_headers};
pub use metrics::RelayMetrics;
pub use relay::run_relay;
pub use replay::{Replayed, replay};
pub use row::OutboxRow;
