/// A decoded snapshot to store if it is newer than what the store has.
#[derive(Debug, Clone, PartialEq)]
pub struct Upsert {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub version: i64,
    pub document: serde_json::Value,
}

/// The next offset to read on one partition, and when it was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub partition: i32,
    pub next_offset: i64,
    pub applied_at_ms: i64,
}
