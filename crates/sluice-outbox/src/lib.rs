//! The transactional outbox, shaped like Debezium's outbox event router
//! (`id`, `aggregatetype`, `aggregateid`, `type`, `payload`) plus
//! `aggregate_version`, `created_at` and `headers`.
//!
//! Call [`append`] with the same transaction that changes the aggregate: the
//! event exists exactly when the change does.

mod table;

pub use table::{OutboxTable, ensure_schema, ensure_table};

use tokio_postgres::GenericClient;
use uuid::Uuid;

/// One event to publish: the full snapshot of the aggregate after it.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Past tense: `ArticleDrafted`, `AuthorRenamed`.
    pub event_type: String,
    /// Confluent-framed Avro of the snapshot; the relay forwards it untouched.
    /// `None` for an erasure: the relay sends a tombstone (null value, same
    /// key), so compaction drops the aggregate from its topic.
    pub payload: Option<Vec<u8>>,
    pub aggregate_version: i64,
    /// Trace context and the like (`traceparent`).
    pub headers: serde_json::Map<String, serde_json::Value>,
}

impl OutboxEvent {
    pub fn new(
        aggregate_type: impl Into<String>,
        aggregate_id: impl Into<String>,
        event_type: impl Into<String>,
        aggregate_version: i64,
        payload: Vec<u8>,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
            event_type: event_type.into(),
            payload: Some(payload),
            aggregate_version,
            headers: serde_json::Map::new(),
        }
    }

    /// The aggregate was erased (a hard delete): its last event, with no
    /// payload.
    pub fn erasure(
        aggregate_type: impl Into<String>,
        aggregate_id: impl Into<String>,
        event_type: impl Into<String>,
        aggregate_version: i64,
    ) -> Self {
        Self { payload: None, ..Self::new(aggregate_type, aggregate_id, event_type, aggregate_version, Vec::new()) }
    }

    pub fn with_traceparent(mut self, traceparent: Option<&str>) -> Self {
        if let Some(tp) = traceparent {
            self.headers.insert("traceparent".into(), tp.into());
        }
        self
    }
}

#[derive(Debug, thiserror::Error)]
#[error("outbox append to {table}: {source}")]
pub struct OutboxError {
    table: String,
    #[source]
    source: tokio_postgres::Error,
}

/// The INSERT of one outbox row into `table` ($1..$7 as [`append_with`]
/// binds them): prepare it once per connection (e.g. deadpool's
/// `prepare_cached`) and pass the statement to [`append_with`].
pub fn insert_sql(table: &OutboxTable) -> String {
    format!(
        "insert into {} (id, aggregatetype, aggregateid, type, payload, aggregate_version, headers) \
         values ($1, $2, $3, $4, $5, $6, $7)",
        table.qualified()
    )
}

/// Inserts `event` through `client`, which should be the caller's open
/// transaction.
pub async fn append<C: GenericClient>(client: &C, table: &OutboxTable, event: &OutboxEvent) -> Result<(), OutboxError> {
    append_with(client, insert_sql(table).as_str(), table, event).await
}

/// [`append`] with `statement`: [`insert_sql`], prepared by the caller (one
/// round trip per row instead of two) or as text.
pub async fn append_with<C, S>(
    client: &C,
    statement: &S,
    table: &OutboxTable,
    event: &OutboxEvent,
) -> Result<(), OutboxError>
where
    C: GenericClient,
    S: tokio_postgres::ToStatement + ?Sized + Sync + Send,
{
    let headers = serde_json::Value::Object(event.headers.clone());
    client
        .execute(
            statement,
            &[
                &event.id,
                &event.aggregate_type,
                &event.aggregate_id,
                &event.event_type,
                &event.payload,
                &event.aggregate_version,
                &headers,
            ],
        )
        .await
        .map_err(|source| OutboxError { table: table.qualified(), source })?;
    Ok(())
}
