//! Consumer-group lag for every group the broker knows (or the groups you
//! name, where it cannot list them): per group, topic and partition the
//! committed offset, the end offset, the lag in messages and in seconds, and
//! a Burrow-like status per group. The `lag-exporter` service exports it to
//! Prometheus; `sluice lag --groups` prints it.

pub mod history;
pub mod metrics;
pub mod scan;
pub mod status;
