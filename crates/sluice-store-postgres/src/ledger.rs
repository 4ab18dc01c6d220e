//! What every projection in PostgreSQL keeps beside its data, whatever its
//! tables are (the CMS read model's, or a user's through the kit): the
//! marker ("this projection's data is here") and the positions, their
//! compare-and-set, and the connections a projection writes through.

use crate::schema::SchemaName;
use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Transaction};
use sluice_store::{ApplyOutcome, Batch, Position};
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::error::SqlState;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline of one session start or one batch, connecting included. Far above
/// what a batch takes; it is there for a server that stopped answering
/// without closing the connection (frozen, or a network that drops packets):
/// the connection is then thrown away and the batch retried.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// A projector that hangs inside a transaction holds the schema's write
/// lock; the server ends such a session after this.
const IDLE_IN_TRANSACTION_TIMEOUT_MS: u32 = 30_000;

/// The marker and positions tables, `{s}` the schema. Idempotent.
pub const LEDGER_TABLES: &str = r#"
-- This projection's data is here (a projection name -> when its first
-- session started). Gone = the store lost the projection: rebuild.
create table if not exists {s}.projections (
    projection text primary key,
    created_at timestamptz not null default now()
);

-- Where each projection is, stored in the same transaction as its data.
create table if not exists {s}.positions (
    projection text not null,
    topic text not null,
    partition integer not null,
    next_offset bigint not null,
    applied_at timestamptz not null,
    primary key (projection, topic, partition)
);
"#;

/// One projection's marker and positions in one schema, and its pool.
pub struct Ledger {
    pool: Pool,
    schema: SchemaName,
    projection: String,
    sql: Statements,
}

struct Statements {
    /// Serializes every writer of the schema (projectors, on-demand
    /// refreshes) for the rest of its transaction; readers are not blocked.
    /// Besides making the position compare-and-set exact (also for
    /// partitions with no stored position yet, where there is no row to
    /// lock), it keeps derived data (author names, counts) exact.
    lock: String,
    mark: String,
    marker: String,
    positions_for_update: String,
    session_positions: String,
    write_positions: String,
}

impl Statements {
    fn new(schema: &SchemaName) -> Self {
        let projections = schema.table("projections");
        let positions = schema.table("positions");
        Self {
            lock: format!("lock table {projections} in share row exclusive mode"),
            mark: format!("insert into {projections} (projection) values ($1) on conflict (projection) do nothing"),
            marker: format!("select 1 from {projections} where projection = $1 for update"),
            positions_for_update: format!(
                "select topic, partition, next_offset from {positions} where projection = $1 for update"
            ),
            session_positions: format!(
                "select topic, partition, next_offset, applied_at from {positions} \
                 where projection = $1 and topic = any($2)"
            ),
            write_positions: format!(
                "insert into {positions} (projection, topic, partition, next_offset, applied_at)
                 select $1, i.topic, i.partition, i.next_offset, i.applied_at
                   from unnest($2::text[], $3::integer[], $4::bigint[], $5::timestamptz[])
                        as i(topic, partition, next_offset, applied_at)
                 on conflict (projection, topic, partition) do update
                    set next_offset = excluded.next_offset, applied_at = excluded.applied_at"
            ),
        }
    }
}

impl Ledger {
    /// `projection` in `schema`, which is also the connections' `search_path`
    /// (unqualified names in a user's SQL are its tables). Connects lazily:
    /// a database that is not up yet is waited for by the projector's retries.
    pub fn connect(database_url: &str, schema: &str, projection: &str, application_name: &str) -> anyhow::Result<Self> {
        let schema = SchemaName::parse(schema).map_err(|e| anyhow::anyhow!(e))?;
        // The URL is a secret: neither it nor the parser's message (which may quote it) goes into errors.
        let mut config = tokio_postgres::Config::from_str(database_url)
            .map_err(|_| anyhow::anyhow!("the database URL is not a valid PostgreSQL URL"))?;
        config.application_name(application_name);
        config.connect_timeout(CONNECT_TIMEOUT);
        config.keepalives(true).keepalives_idle(Duration::from_secs(30));
        config.options(format!(
            "-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS} -c search_path={}",
            schema.as_str()
        ));
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager).max_size(2).build().context("database pool")?;
        let sql = Statements::new(&schema);
        Ok(Self { pool, schema, projection: projection.to_string(), sql })
    }

    pub fn schema(&self) -> &SchemaName {
        &self.schema
    }

    /// Runs `work` on a pooled connection within [`CALL_TIMEOUT`]. A
    /// connection whose work failed or timed out is closed, never reused:
    /// after a cut it may look open for a moment, and after a time-out its
    /// state is unknown.
    async fn with_client<T>(
        &self,
        what: &str,
        work: impl AsyncFnOnce(&mut Object) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut client = tokio::time::timeout(CALL_TIMEOUT, self.pool.get())
            .await
            .map_err(|_| anyhow::anyhow!("{what}: no database connection within {CALL_TIMEOUT:?}"))?
            .with_context(|| format!("{what}: connect to PostgreSQL"))?;
        match tokio::time::timeout(CALL_TIMEOUT, work(&mut client)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                drop(Object::take(client));
                Err(e.context(what.to_string()))
            }
            Err(_) => {
                drop(Object::take(client));
                anyhow::bail!("{what}: PostgreSQL did not answer within {CALL_TIMEOUT:?}; connection closed")
            }
        }
    }

    /// [`ProjectionStore::start_session`](sluice_store::ProjectionStore::start_session):
    /// in one transaction, `ensure` (the tables), then the marker and the
    /// stored positions under the schema's write lock.
    pub async fn start_session(
        &self,
        topics: &[String],
        ensure: impl AsyncFnOnce(&tokio_postgres::Transaction<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<BTreeMap<String, HashMap<i32, Position>>> {
        let rows = self
            .with_client("start a session on PostgreSQL", async |client| {
                let tx = client.transaction().await?;
                ensure(&tx).await?;
                tx.batch_execute(&self.sql.lock).await?;
                tx.execute(&self.sql.mark, &[&self.projection]).await?;
                let rows = tx.query(&self.sql.session_positions, &[&self.projection, &topics]).await?;
                tx.commit().await?;
                // The tables may have been made again: no statement prepared for the old ones stays.
                client.statement_cache.clear();
                Ok(rows)
            })
            .await?;
        let mut positions: BTreeMap<String, HashMap<i32, Position>> =
            topics.iter().map(|t| (t.clone(), HashMap::new())).collect();
        for row in rows {
            let partition: i32 = row.get(1);
            let applied_at: DateTime<Utc> = row.get(3);
            let position =
                Position { partition, next_offset: row.get(2), applied_at_ms: applied_at.timestamp_millis() };
            positions.entry(row.get(0)).or_default().insert(partition, position);
        }
        Ok(positions)
    }

    /// [`ProjectionStore::apply`](sluice_store::ProjectionStore::apply) around
    /// `work`, which applies one batch in one transaction (see
    /// [`Ledger::check`] and [`Ledger::write_positions`]). Tables that are
    /// gone mean the store lost the projection.
    pub async fn apply(
        &self,
        work: impl AsyncFnOnce(&mut Object) -> anyhow::Result<ApplyOutcome>,
    ) -> anyhow::Result<ApplyOutcome> {
        self.with_client("apply a batch to PostgreSQL", async |client| match work(client).await {
            Err(e) if tables_gone(&e) => {
                client.statement_cache.clear();
                Ok(ApplyOutcome::StoreLost)
            }
            other => other,
        })
        .await
    }

    /// Takes the schema's write lock for the rest of `tx`. Before
    /// [`Ledger::check`] and before reading anything a batch depends on.
    pub async fn lock(&self, tx: &Transaction<'_>) -> anyhow::Result<()> {
        tx.batch_execute(&self.sql.lock).await?;
        Ok(())
    }

    /// The marker and every expected position of `batch` against the stored
    /// ones, under the lock: `Some(refusal)` when the batch must not be
    /// written (the caller then writes nothing).
    pub async fn check(&self, tx: &Transaction<'_>, batch: &Batch) -> anyhow::Result<Option<ApplyOutcome>> {
        let (marker, positions) =
            futures::try_join!(tx.prepare_cached(&self.sql.marker), tx.prepare_cached(&self.sql.positions_for_update))?;
        let projection: &[&(dyn tokio_postgres::types::ToSql + Sync)] = &[&self.projection];
        let (marked, stored) = futures::try_join!(tx.query_opt(&marker, projection), tx.query(&positions, projection))?;
        if marked.is_none() {
            return Ok(Some(ApplyOutcome::StoreLost));
        }
        let stored: HashMap<(String, i32), i64> =
            stored.iter().map(|r| ((r.get::<_, String>(0), r.get::<_, i32>(1)), r.get::<_, i64>(2))).collect();
        for (topic, partitions) in &batch.expected {
            for (&partition, &expected) in partitions {
                let have = stored.get(&(topic.clone(), partition)).copied();
                if have != expected {
                    return Ok(Some(ApplyOutcome::PositionMismatch {
                        topic: topic.clone(),
                        partition,
                        expected,
                        stored: have,
                    }));
                }
            }
        }
        Ok(None)
    }

    /// The batch's new positions, in `tx` with its data.
    pub async fn write_positions(&self, tx: &Transaction<'_>, batch: &Batch) -> anyhow::Result<()> {
        let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (topic, positions) in &batch.positions {
            for p in positions {
                let at = DateTime::<Utc>::from_timestamp_millis(p.applied_at_ms).context("applied_at out of range")?;
                columns.0.push(topic.as_str());
                columns.1.push(p.partition);
                columns.2.push(p.next_offset);
                columns.3.push(at);
            }
        }
        if !columns.0.is_empty() {
            let statement = tx.prepare_cached(&self.sql.write_positions).await?;
            tx.execute(&statement, &[&self.projection, &columns.0, &columns.1, &columns.2, &columns.3]).await?;
        }
        Ok(())
    }
}

/// Whether `error` says the read model's schema or tables are gone (dropped
/// by someone): the store lost this projection's data.
fn tables_gone(error: &anyhow::Error) -> bool {
    error.chain().filter_map(|e| e.downcast_ref::<tokio_postgres::Error>()).any(|e| {
        matches!(e.code(), Some(code) if *code == SqlState::UNDEFINED_TABLE || *code == SqlState::INVALID_SCHEMA_NAME)
    })
}

/// The positions `projection` stored in `schema` for `topic`, by partition
/// (for lag: what the projection applied, next to the topic's end offsets).
pub async fn stored_positions(
    client: &impl tokio_postgres::GenericClient,
    schema: &SchemaName,
    projection: &str,
    topic: &str,
) -> anyhow::Result<HashMap<i32, Position>> {
    let sql = format!(
        "select partition, next_offset, applied_at from {} where projection = $1 and topic = $2",
        schema.table("positions")
    );
    let rows = client.query(&sql, &[&projection, &topic]).await.context("read stored positions")?;
    Ok(rows
        .iter()
        .map(|r| {
            let applied_at: DateTime<Utc> = r.get(2);
            let partition: i32 = r.get(0);
            (partition, Position { partition, next_offset: r.get(1), applied_at_ms: applied_at.timestamp_millis() })
        })
        .collect())
}
