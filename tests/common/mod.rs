//! Starting Sluice's services the way the end-to-end tests need them.
#![allow(dead_code)]

use serde_json::Value;
use sluice_testkit::{ServiceHandle, TestBroker, TestPostgres, TestRedis, random_name};

pub const TOKEN: &str = "test-write-token";
/// A read token of the command API (what query-api fetches snapshots with).
pub const READ_TOKEN: &str = "test-read-token";

pub fn schemas_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas").to_string()
}

/// A ready command API writing to `db`, registering its schemas itself.
pub async fn command_api(db: &str, registry_url: &str, prefix: &str, query_base_url: &str) -> ServiceHandle {
    command_api_with(db, registry_url, prefix, query_base_url, &[]).await
}

/// [`command_api`] with more variables.
pub async fn command_api_with(
    db: &str,
    registry_url: &str,
    prefix: &str,
    query_base_url: &str,
    more: &[(&str, String)],
) -> ServiceHandle {
    let mut env = vec![
        ("SLUICE_DATABASE_URL", db.to_string()),
        ("SLUICE_REGISTRY_URL", registry_url.to_string()),
        ("SLUICE_QUERY_BASE_URL", query_base_url.to_string()),
        ("SLUICE_TOPIC_PREFIX", prefix.to_string()),
        ("SLUICE_AUTO_REGISTER", "true".to_string()),
        ("SLUICE_REGISTRY_TOKEN", sluice_testkit::REGISTRY_TOKEN.to_string()),
        ("SLUICE_SCHEMAS_DIR", schemas_dir()),
        ("SLUICE_WRITE_TOKENS", TOKEN.to_string()),
        ("SLUICE_READ_TOKENS", READ_TOKEN.to_string()),
    ];
    env.extend(more.iter().cloned());
    let mut command = ServiceHandle::start("command-api", &env).await;
    command.wait_ready().await;
    command
}

/// A relay on its own slot and publication.
pub async fn relay(db: &str, brokers: &str, prefix: &str) -> ServiceHandle {
    relay_with(db, brokers, prefix, &[]).await
}

/// [`relay`] with more variables.
pub async fn relay_with(db: &str, brokers: &str, prefix: &str, more: &[(&str, String)]) -> ServiceHandle {
    let mut env = vec![
        ("SLUICE_DATABASE_URL", db.to_string()),
        ("SLUICE_BROKERS", brokers.to_string()),
        ("SLUICE_TOPIC_PREFIX", prefix.to_string()),
        ("SLUICE_SLOT", random_name("slot")),
        ("SLUICE_PUBLICATION", random_name("pub")),
    ];
    env.extend(more.iter().cloned());
    ServiceHandle::start("outbox-relay", &env).await
}

/// A ready Redis projector reading the article and author state topics of `prefix`.
pub async fn projector(
    broker: &TestBroker,
    redis: &TestRedis,
    registry: &str,
    prefix: &str,
    projection: &str,
    reader: &str,
) -> ServiceHandle {
    projector_with(broker, redis, registry, prefix, projection, &[("SLUICE_READER_VERSIONS", reader.to_string())]).await
}

/// [`projector`] with more variables.
pub async fn projector_with(
    broker: &TestBroker,
    redis: &TestRedis,
    registry: &str,
    prefix: &str,
    projection: &str,
    more: &[(&str, String)],
) -> ServiceHandle {
    let mut env = vec![
        ("SLUICE_REDIS_URL", redis.url()),
        ("SLUICE_BROKERS", broker.bootstrap()),
        ("SLUICE_REGISTRY_URL", registry.to_string()),
        ("SLUICE_TOPIC_PREFIX", prefix.to_string()),
        ("SLUICE_PROJECTION", projection.to_string()),
        ("SLUICE_AGGREGATES", "article,author".to_string()),
        ("SLUICE_SCHEMAS_DIR", schemas_dir()),
    ];
    env.extend(more.iter().cloned());
    let mut p = ServiceHandle::start("projector-redis", &env).await;
    // Ready means: reached the end offsets captured at start.
    p.wait_ready().await;
    p
}

pub async fn doc(redis: &TestRedis, projection: &str, id: &str) -> Value {
    try_doc(redis, projection, id).await.unwrap_or_else(|| panic!("{id} missing from {projection}"))
}

/// The article's document in the Redis projection, if it is there.
pub async fn try_doc(redis: &TestRedis, projection: &str, id: &str) -> Option<Value> {
    let mut conn = redis.connection().await;
    let raw: Option<String> = redis::cmd("HGET")
        .arg(format!("sluice:{{{projection}}}:article:{id}"))
        .arg("doc")
        .query_async(&mut conn)
        .await
        .expect("HGET");
    raw.map(|raw| serde_json::from_str(&raw).expect("json doc"))
}

/// Sum of a metric's samples on a service's /metrics (0 when it does not answer).
pub async fn metric(service: &ServiceHandle, name: &str) -> f64 {
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build().expect("client");
    let Ok(response) = client.get(format!("{}/metrics", service.base_url())).send().await else { return 0.0 };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Runs `deploy/sql/roles.sql` in `database` as the administrator.
pub async fn apply_roles(pg: &TestPostgres, database: &str) {
    let roles = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/sql/roles.sql"))
        .expect("deploy/sql/roles.sql");
    pg.connect(database).await.batch_execute(&roles).await.expect("roles.sql");
}

/// A new database of `pg` with `deploy/sql/roles.sql` applied; its name.
pub async fn database_with_roles(pg: &TestPostgres) -> String {
    let url = pg.create_database().await;
    let name = url.rsplit('/').next().expect("database name").to_string();
    apply_roles(pg, &name).await;
    name
}

/// Creates `schema` for a PostgreSQL read model, if missing, as the
/// administrator does (`roles.sql` for `cms_read`): owned by the projector's
/// role, which cannot create schemas itself.
pub async fn create_read_schema(admin: &tokio_postgres::Client, schema: &str) {
    admin
        .batch_execute(&format!("create schema if not exists \"{schema}\" authorization sluice_projector_pg"))
        .await
        .unwrap_or_else(|e| panic!("create schema {schema}: {e}"));
}

/// The data tables of a PostgreSQL read model (not `positions` nor `projections`).
const READ_TABLES: [&str; 4] = ["articles", "authors", "documents", "erased"];

/// Columns that differ between two projections of the same records: when
/// the row was written, not what it says. (`erased.erased_at` is `now()`.)
const WRITE_TIME_COLUMNS: [&str; 1] = ["erased.erased_at"];

/// Every row of every data table of the read model in `schema`, as
/// `<table> <row as text>`, sorted by bytes within each table; columns of
/// [`WRITE_TIME_COLUMNS`] left out. Fails when the schema has a table this
/// does not know of, so that a new one is not left out of comparisons.
pub async fn read_tables(admin: &tokio_postgres::Client, schema: &str) -> Vec<String> {
    let tables: Vec<String> = admin
        .query("select table_name::text from information_schema.tables where table_schema = $1 order by 1", &[&schema])
        .await
        .expect("list the read tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut known: Vec<&str> = READ_TABLES.iter().copied().chain(["positions", "projections"]).collect();
    known.sort();
    assert_eq!(tables, known, "the tables of {schema}");
    let mut lines = Vec::new();
    for table in READ_TABLES {
        let columns: String = admin
            .query_one(
                "select string_agg(format('t.%I', column_name), ', ' order by ordinal_position)
                   from information_schema.columns
                  where table_schema = $1 and table_name = $2 and not (table_name || '.' || column_name = any($3))",
                &[&schema, &table, &WRITE_TIME_COLUMNS.as_slice()],
            )
            .await
            .expect("the columns of a read table")
            .get(0);
        let query = format!("select row({columns})::text from \"{schema}\".{table} t");
        let rows = admin.query(&query, &[]).await.unwrap_or_else(|e| panic!("{query}: {e:?}"));
        let mut table_lines: Vec<String> = rows.iter().map(|r| format!("{table} {}", r.get::<_, String>(0))).collect();
        // In Rust: by bytes, whatever the database's collation.
        table_lines.sort();
        lines.extend(table_lines);
    }
    lines
}

/// The URL of `database` for the PostgreSQL projector's role of `roles.sql`.
pub fn projector_pg_url(pg: &TestPostgres, database: &str) -> String {
    format!("postgres://sluice_projector_pg@127.0.0.1:{}/{database}", pg.port)
}

/// A ready PostgreSQL projector of the article and author state topics of
/// `prefix`, writing to `schema` of `database_url`.
pub async fn projector_postgres(
    broker: &TestBroker,
    database_url: &str,
    registry: &str,
    prefix: &str,
    projection: &str,
    schema: &str,
) -> ServiceHandle {
    projector_postgres_with(broker, database_url, registry, prefix, projection, schema, &[]).await
}

/// [`projector_postgres`] with more variables (`SLUICE_BATCH_SIZE`, ...).
pub async fn projector_postgres_with(
    broker: &TestBroker,
    database_url: &str,
    registry: &str,
    prefix: &str,
    projection: &str,
    schema: &str,
    more: &[(&str, String)],
) -> ServiceHandle {
    let mut env = vec![
        ("SLUICE_DATABASE_URL", database_url.to_string()),
        ("SLUICE_PG_SCHEMA", schema.to_string()),
        ("SLUICE_BROKERS", broker.bootstrap()),
        ("SLUICE_REGISTRY_URL", registry.to_string()),
        ("SLUICE_TOPIC_PREFIX", prefix.to_string()),
        ("SLUICE_PROJECTION", projection.to_string()),
        ("SLUICE_SCHEMAS_DIR", schemas_dir()),
    ];
    env.extend(more.iter().cloned());
    let mut p = ServiceHandle::start("projector-postgres", &env).await;
    p.wait_ready().await;
    p
}

/// Sends a command to the command API (POST `path` with `body`, or DELETE
/// when `body` is None) and returns its accepted answer.
pub async fn command(http: &reqwest::Client, command_api: &str, path: &str, body: Option<Value>) -> Value {
    let url = format!("{command_api}{path}");
    let request = match body {
        Some(body) => http.post(&url).json(&body),
        None => http.delete(&url),
    };
    let response = request.bearer_auth(TOKEN).send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or_else(|e| panic!("{path}: answer: {e}"));
    assert_eq!(status, 202, "{path}: {answer}");
    answer
}

/// A query API over the Redis projection `projection` (and the PostgreSQL
/// read model at `postgres_url`, when given) of `prefix`'s topics, fetching
/// on-demand refreshes from `source` (a command API); ready (it knows the
/// topics' watermarks) when `ready`.
pub async fn query_api(
    broker: &TestBroker,
    redis: &TestRedis,
    prefix: &str,
    projection: &str,
    source: &str,
    extra: &[(&str, String)],
) -> ServiceHandle {
    let mut env = vec![
        ("SLUICE_REDIS_URL", redis.url()),
        ("SLUICE_PROJECTION", projection.to_string()),
        ("SLUICE_BROKERS", broker.bootstrap()),
        ("SLUICE_TOPIC_PREFIX", prefix.to_string()),
        ("SLUICE_SOURCE_URL", source.to_string()),
        ("SLUICE_SOURCE_TOKEN", READ_TOKEN.to_string()),
    ];
    env.extend(extra.iter().cloned());
    let mut q = ServiceHandle::start("query-api", &env).await;
    q.wait_ready().await;
    q
}

/// One answer of the query API with the headers that say how fresh it is.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub version: Option<i64>,
    pub lag_messages: Option<i64>,
    pub lag_ms: Option<i64>,
    pub freshness: String,
    pub read_model: String,
    pub body: Value,
}

/// GET `url` with `Sluice-Consistency: consistency` (when given).
pub async fn read(http: &reqwest::Client, url: &str, consistency: Option<&str>) -> Answer {
    let mut request = http.get(url);
    if let Some(c) = consistency {
        request = request.header("sluice-consistency", c);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let number = |name: &str| header(name).and_then(|v| v.parse::<i64>().ok());
    let (version, lag_messages, lag_ms) =
        (number("sluice-version"), number("sluice-lag-messages"), number("sluice-lag-ms"));
    let freshness = header("sluice-freshness").unwrap_or_default();
    let read_model = header("sluice-read-model").unwrap_or_default();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    Answer { status, version, lag_messages, lag_ms, freshness, read_model, body }
}

/// What every read-side test starts with: PostgreSQL, Redis, a broker, the
/// registry, command-api (its query base URL a placeholder) and a relay,
/// with a topic prefix and a Redis projection name of their own.
pub struct WriteSide {
    pub pg: TestPostgres,
    pub redis: TestRedis,
    pub broker: TestBroker,
    pub registry: ServiceHandle,
    pub command: ServiceHandle,
    pub relay: ServiceHandle,
    /// The command API's database (the administrator's URL).
    pub db: String,
    pub prefix: String,
    pub projection: String,
    pub http: reqwest::Client,
}

impl WriteSide {
    pub async fn start(name: &str) -> WriteSide {
        let pg = TestPostgres::start();
        let redis = TestRedis::start();
        let broker = TestBroker::start();
        let db = pg.create_database().await;
        let prefix = random_name(name);
        let registry = sluice_testkit::start_registry(&broker.bootstrap()).await;
        let command = command_api(&db, &registry.base_url(), &prefix, "http://query.invalid").await;
        let relay = relay(&db, &broker.bootstrap(), &prefix).await;
        let projection = random_name("proj");
        WriteSide { pg, redis, broker, registry, command, relay, db, prefix, projection, http: reqwest::Client::new() }
    }

    /// A command (see [`command`]).
    pub async fn send(&self, path: &str, body: Option<Value>) -> Value {
        command(&self.http, &self.command.base_url(), path, body).await
    }

    /// Creates an article; its id.
    pub async fn create_article(&self, body: Value) -> String {
        self.send("/articles", Some(body)).await["id"].as_str().expect("id").to_string()
    }

    /// The source of truth's snapshot of an article.
    pub async fn snapshot(&self, id: &str) -> Value {
        let url = format!("{}/articles/{id}", self.command.base_url());
        let r = self.http.get(url).bearer_auth(READ_TOKEN).send().await.expect("GET snapshot");
        r.json().await.expect("snapshot JSON")
    }

    /// A ready Redis projector of the stack's topics and projection.
    pub async fn projector(&self) -> ServiceHandle {
        projector(&self.broker, &self.redis, &self.registry.base_url(), &self.prefix, &self.projection, "").await
    }

    /// A ready PostgreSQL projector (projection `cms`, schema `cms_read`) in a
    /// new database with `roles.sql`; it, the database's URL for its role
    /// and the database's name.
    pub async fn projector_postgres(&self) -> (ServiceHandle, String, String) {
        let read_db = database_with_roles(&self.pg).await;
        let url = projector_pg_url(&self.pg, &read_db);
        let registry = self.registry.base_url();
        let projector = projector_postgres(&self.broker, &url, &registry, &self.prefix, "cms", "cms_read").await;
        (projector, url, read_db)
    }

    /// A ready query API over the stack's Redis projection (see [`query_api`]).
    pub async fn query(&self, extra: &[(&str, String)]) -> ServiceHandle {
        let source = self.command.base_url();
        query_api(&self.broker, &self.redis, &self.prefix, &self.projection, &source, extra).await
    }
}
