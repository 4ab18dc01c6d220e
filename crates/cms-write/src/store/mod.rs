//! SQL for each table of the write side; every function takes the caller's
//! transaction so a command's writes commit together.

pub mod articles;
pub mod authors;
pub mod changes;
pub mod idempotency;

use chrono::{DateTime, Utc};

pub(crate) fn to_time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

pub(crate) fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}
