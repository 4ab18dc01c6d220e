/// A decoded record for the store: the aggregate's snapshot at `version`, or
/// its erasure (a tombstone). Applied only if newer than what the store holds
/// for the aggregate, including an erasure: an erased aggregate keeps a small
/// marker with the version it was erased at, so that no late, older record
/// brings it back.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub version: i64,
    /// The snapshot as JSON; `None` for an erasure.
    pub document: Option<serde_json::Value>,
}

impl Change {
    /// The erasure of an aggregate at `version` (a tombstone).
    pub fn erasure(aggregate_type: &str, aggregate_id: &str, version: i64) -> Self {
        Self { aggregate_type: aggregate_type.into(), aggregate_id: aggregate_id.into(), version, document: None }
    }

    pub fn is_erasure(&self) -> bool {
        self.document.is_none()
    }
}

/// The next offset to read on one partition, and when it was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub partition: i32,
    pub next_offset: i64,
    pub applied_at_ms: i64,
}
