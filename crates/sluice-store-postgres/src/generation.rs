//! Blue/green generations of a read schema. Readers and projectors name the
//! serving schema (e.g. `cms_read`); a rebuild builds the next generation in
//! `<schema>_next` and swaps it in by moving tables between schemas in one
//! transaction, taken while the serving schema's write lock is held:
//! 1. lock the serving schema's ledger (its projectors wait; readers go on);
//! 2. wait until the next generation's positions reach the serving ones (no
//!    reader goes back in time), then stop the next generation's writer;
//! 3. copy the grants others hold on the serving tables to the next ones;
//! 4. move the serving tables to `<schema>_old` and the next generation's to
//!    `<schema>`, commit (readers wait only for the moves and the commit);
//! 5. empty `<schema>_old`.
//!
//! A reader's query sees one generation or the other, never both (a
//! REPEATABLE READ or SERIALIZABLE transaction that began before the swap
//! may see the new generation's tables as of its snapshot: read the read
//! model in READ COMMITTED, PostgreSQL's default). Projectors
//! waiting on the lock go on in the new generation: PostgreSQL looks their
//! tables up again by name once it grants the lock and re-plans their
//! prepared statements, and the position compare-and-set makes any of them
//! whose positions differ start a new session from the new generation's.
//!
//! Moving tables takes only ownership of them and of the three schemas, which
//! an administrator creates for the projector's role (`deploy/sql/roles.sql`):
//! the rebuild runs as that role. A rebuild swaps whole schemas, so the
//! serving schema must hold no other projection.

use crate::SchemaName;
use anyhow::Context;
use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls};

/// How long the swap waits, holding the serving schema's write lock, for the
/// next generation to reach the serving one's positions.
pub const CATCH_UP_LIMIT: Duration = Duration::from_secs(120);
const CATCH_UP_POLL: Duration = Duration::from_millis(50);

/// Advisory lock class of a running rebuild; the object id is the hash of
/// the serving schema's name.
const REBUILD_LOCK_CLASS: i32 = 758_424;
/// The swap's connection gives up waiting for a lock after this (a reader
/// holding the tables, say), and the server ends it when it hangs in its
/// transaction longer than the catch-up may take.
const SWAP_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// `<serving>_next` and `<serving>_old`.
pub fn next_and_old(serving: &SchemaName) -> anyhow::Result<(SchemaName, SchemaName)> {
    let name = |suffix: &str| {
        SchemaName::parse(&format!("{}_{suffix}", serving.as_str()))
            .map_err(|e| anyhow::anyhow!("{e} (the serving schema's name is too long for its generations)"))
    };
    Ok((name("next")?, name("old")?))
}

/// A connection of the rebuild's own (no time-outs: it holds a lock on
/// purpose while the next generation catches up).
pub async fn connect(database_url: &str) -> anyhow::Result<Client> {
    // The URL is a secret: neither it nor the parser's message goes into errors.
    let mut config = tokio_postgres::Config::from_str(database_url)
        .map_err(|_| anyhow::anyhow!("the database URL is not a valid PostgreSQL URL"))?;
    config.application_name("sluice-rebuild").keepalives(true).keepalives_idle(Duration::from_secs(10));
    config.options(format!(
        "-c lock_timeout={} -c idle_in_transaction_session_timeout={}",
        SWAP_LOCK_TIMEOUT.as_millis(),
        (CATCH_UP_LIMIT + SWAP_LOCK_TIMEOUT).as_millis()
    ));
    let (client, connection) = config.connect(NoTls).await.map_err(|e| {
        anyhow::anyhow!("connect to PostgreSQL: {}", e.as_db_error().map_or(e.to_string(), |d| d.to_string()))
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "rebuild connection closed");
        }
    });
    Ok(client)
}

/// Refuses a rebuild by a role that does not own the three schemas (the
/// projectors could not write to a generation it builds), and a second
/// rebuild of the same schema while one runs (the lock is held as long as
/// `client`'s session).
pub async fn check(client: &Client, schemas: [&SchemaName; 3]) -> anyhow::Result<()> {
    let only: bool = client
        .query_one("select pg_try_advisory_lock($1, hashtext($2))", &[&REBUILD_LOCK_CLASS, &schemas[0].as_str()])
        .await?
        .get(0);
    anyhow::ensure!(only, "another rebuild of schema {} is running", schemas[0].as_str());
    let me: String = client.query_one("select current_user::text", &[]).await?.get(0);
    for schema in schemas {
        let owner = client
            .query_opt(
                "select pg_get_userbyid(nspowner)::text from pg_namespace where nspname = $1",
                &[&schema.as_str()],
            )
            .await?
            .map(|r| r.get::<_, String>(0));
        match owner {
            Some(owner) if owner == me => {}
            Some(owner) => anyhow::bail!(
                "schema {} is owned by {owner}, and this rebuild connects as {me}: run it as the projector's role, \
                 which must own {}",
                schema.as_str(),
                schemas.map(SchemaName::as_str).join(", ")
            ),
            None => anyhow::bail!(
                "schema {0} does not exist: an administrator creates it for the projector's role (create schema {0} \
                 authorization {me}; deploy/sql/roles.sql)",
                schema.as_str()
            ),
        }
    }
    Ok(())
}

/// Drops every table of `schema` (not the schema, which the role cannot
/// create again).
pub async fn empty(client: &Client, schema: &SchemaName) -> anyhow::Result<()> {
    let tables = tables(client, schema).await?;
    if tables.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = tables.iter().map(|t| schema.table(t)).collect();
    client
        .batch_execute(&format!("set client_min_messages = warning; drop table if exists {} cascade", list.join(", ")))
        .await
        .with_context(|| format!("empty schema {}", schema.as_str()))
}

/// The tables of `schema`.
async fn tables(client: &impl tokio_postgres::GenericClient, schema: &SchemaName) -> anyhow::Result<Vec<String>> {
    let rows = client
        .query(
            "select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
              where n.nspname = $1 and c.relkind in ('r', 'p') and not c.relispartition order by 1",
            &[&schema.as_str()],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// What [`Swap::run`] did.
#[derive(Debug)]
pub struct Swapped {
    /// How long the serving schema's writers waited on the swap.
    pub locked_for: Duration,
    /// Grants copied to the new generation.
    pub grants: usize,
}

/// A swap of `next` in for `serving` (steps 1 to 4 above).
pub struct Swap<'a> {
    pub serving: &'a SchemaName,
    pub next: &'a SchemaName,
    pub old: &'a SchemaName,
    pub projection: &'a str,
    /// The topics the next generation is built from: the serving one must
    /// hold positions of no other.
    pub topics: &'a [String],
    /// The first offset still in the log of each partition: a partition the
    /// next generation holds no position for has reached it.
    pub floors: &'a HashMap<(String, i32), i64>,
}

impl Swap<'_> {
    /// Swaps once the positions `projection` stored in `next` reach those in
    /// `serving`; `stop_writer` stops the next generation's projector (it
    /// finishes its batch in hand) just before the tables move. Nothing
    /// changes when it fails.
    pub async fn run(
        &self,
        client: &mut Client,
        watcher: &Client,
        stop_writer: impl AsyncFnOnce() -> anyhow::Result<()>,
    ) -> anyhow::Result<Swapped> {
        let (serving, next) = (self.serving, self.next);
        let tx = client.transaction().await?;
        let locked = Instant::now();
        let has_ledger: bool =
            tx.query_one("select to_regclass($1) is not null", &[&serving.table("projections")]).await?.get(0);
        let target = if has_ledger {
            tx.batch_execute(&format!("lock table {} in share row exclusive mode", serving.table("projections")))
                .await
                .context("lock the serving generation")?;
            positions(&tx, serving, self.projection).await?
        } else {
            HashMap::new()
        };
        // Under the lock: nothing else can be marked in the schema meanwhile.
        self.check_serving(&tx, &target).await?;
        loop {
            let reached = positions(watcher, next, self.projection).await?;
            let at = |key: &(String, i32)| reached.get(key).or(self.floors.get(key)).copied();
            let behind = target.iter().find(|(key, offset)| at(key).is_none_or(|r| r < **offset));
            match behind {
                None => break,
                Some((key, offset)) if locked.elapsed() > CATCH_UP_LIMIT => anyhow::bail!(
                    "the next generation did not reach the serving one within {CATCH_UP_LIMIT:?} ({}/{} at {:?}, \
                     serving at {offset}); nothing was swapped",
                    key.0,
                    key.1,
                    at(key)
                ),
                Some(_) => tokio::time::sleep(CATCH_UP_POLL).await,
            }
        }
        stop_writer().await?;
        let grants = copy_grants(&tx, serving, next).await?;
        let mut moves = String::new();
        for (from, to) in [(serving, self.old), (next, serving)] {
            for table in tables(&tx, from).await? {
                moves.push_str(&format!("alter table {} set schema \"{}\";\n", from.table(&table), to.as_str()));
            }
        }
        tx.batch_execute(&moves).await.context("swap the generations (readers held the tables too long?)")?;
        tx.commit().await.context("commit the swap")?;
        Ok(Swapped { locked_for: locked.elapsed(), grants })
    }

    /// Refuses to swap a serving schema that holds more than this
    /// projection: other projections, tables the next generation does not
    /// have, positions of topics it is not built from.
    async fn check_serving(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        target: &HashMap<(String, i32), i64>,
    ) -> anyhow::Result<()> {
        let serving = self.serving.as_str();
        let foreign: Vec<&String> = target.keys().map(|(t, _)| t).filter(|t| !self.topics.contains(t)).collect();
        anyhow::ensure!(
            foreign.is_empty(),
            "{serving} holds positions of {foreign:?}, which this rebuild does not read: give it the same aggregates \
             as the projector service"
        );
        if !target.is_empty() {
            let projections = self.serving.table("projections");
            let others: Vec<String> = tx
                .query(&format!("select projection from {projections} where projection <> $1"), &[&self.projection])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            anyhow::ensure!(
                others.is_empty(),
                "schema {serving} also holds projection(s) {}: a rebuild swaps whole schemas; give each projection \
                 a schema",
                others.join(", ")
            );
        }
        let theirs = tables(tx, self.next).await?;
        let extra: Vec<String> = tables(tx, self.serving).await?.into_iter().filter(|t| !theirs.contains(t)).collect();
        anyhow::ensure!(
            extra.is_empty(),
            "schema {serving} holds tables the read model does not ({}): move them to another schema first",
            extra.join(", ")
        );
        Ok(())
    }
}

/// `projection`'s next offsets in `schema`, by topic and partition (none
/// when the schema has no positions table yet).
async fn positions(
    client: &impl tokio_postgres::GenericClient,
    schema: &SchemaName,
    projection: &str,
) -> anyhow::Result<HashMap<(String, i32), i64>> {
    let table = schema.table("positions");
    let exists: bool = client.query_one("select to_regclass($1) is not null", &[&table]).await?.get(0);
    if !exists {
        return Ok(HashMap::new());
    }
    let sql = format!("select topic, partition, next_offset from {table} where projection = $1");
    let rows = client.query(&sql, &[&projection]).await.context("read positions")?;
    Ok(rows.iter().map(|r| ((r.get(0), r.get(1)), r.get(2))).collect())
}

/// Grants others hold on the serving tables, given again on the next
/// generation's tables of the same names; how many. (Grants on the schema
/// stay: the schema does not change.)
async fn copy_grants(
    tx: &tokio_postgres::Transaction<'_>,
    serving: &SchemaName,
    next: &SchemaName,
) -> anyhow::Result<usize> {
    let rows = tx
        .query(
            "select format('grant %s on %I.%I to %s', a.privilege_type, $2::text, c.relname,
                           case when a.grantee = 0 then 'public' else quote_ident(r.rolname) end)
               from pg_class c join pg_namespace n on n.oid = c.relnamespace
               cross join lateral aclexplode(c.relacl) a
               left join pg_roles r on r.oid = a.grantee
              where n.nspname = $1 and a.grantee <> c.relowner and c.relkind in ('r', 'v', 'm', 'p')
                and exists (select 1 from pg_class c2 join pg_namespace n2 on n2.oid = c2.relnamespace
                             where n2.nspname = $2 and c2.relname = c.relname)",
            &[&serving.as_str(), &next.as_str()],
        )
        .await
        .context("read the serving generation's grants")?;
    for row in &rows {
        let grant: String = row.get(0);
        tx.batch_execute(&grant).await.with_context(|| format!("copy a grant: {grant}"))?;
    }
    Ok(rows.len())
}
