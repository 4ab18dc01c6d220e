//! A command API over a real PostgreSQL and a real schema registry, driven
//! through the router without a socket.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use cms_write::{AppState, CommandService, Encoders, Tokens};
use serde_json::Value;
use sluice_avro::{RegistryEncoder, SchemaSet};
use sluice_core::Secret;
use sluice_outbox::OutboxTable;
use sluice_testkit::{ServiceHandle, TestBroker, TestPostgres};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

pub const WRITE: &str = "test-write-token";
pub const READ: &str = "test-read-token";
pub const MAX_BODY: usize = 64 * 1024;

pub struct Harness {
    pub pg: TestPostgres,
    pub broker: TestBroker,
    pub registry: ServiceHandle,
    pub db_url: String,
    pub service: CommandService,
    pub app: Router,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn id(&self) -> String {
        self.body["id"].as_str().expect("id in body").to_string()
    }
}

impl Harness {
    pub async fn start() -> Harness {
        sluice_telemetry::init_logging("cms-write-test");
        let pg = TestPostgres::start();
        let db_url = pg.create_database().await;
        let broker = TestBroker::start();
        let registry = sluice_testkit::start_registry(&broker.bootstrap()).await;
        let service = service(&db_url, &sluice_testkit::registry_writer(&registry)).await;
        let tokens = Tokens::parse(&Secret::new(WRITE), &Secret::new(READ));
        let app = cms_write::router(AppState { service: service.clone() }, tokens, MAX_BODY, false);
        Harness { pg, broker, registry, db_url, service, app }
    }

    /// A second, independent command API on the same database (another replica).
    pub async fn replica(&self) -> CommandService {
        service(&self.db_url, &sluice_testkit::registry_writer(&self.registry)).await
    }

    /// A connection working in the write schema.
    /// A session like the service's own (search path `cms`, statement cache).
    pub async fn client(&self) -> deadpool_postgres::Object {
        cms_write::connect_pool(&self.db_url, 1).expect("pool").get().await.expect("connect")
    }

    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = self.app.clone().oneshot(req.body(body).expect("request")).await.expect("response");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 22).await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, headers, body }
    }

    /// POST a JSON command with the write token.
    pub async fn post(&self, uri: &str, json: Value) -> Reply {
        self.post_with(uri, json, &[]).await
    }

    pub async fn post_with(&self, uri: &str, json: Value, headers: &[(&str, &str)]) -> Reply {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.send(Method::POST, uri, Some(WRITE), &all, Body::from(json.to_string())).await
    }

    pub async fn count(&self, sql: &str) -> i64 {
        self.client().await.query_one(sql, &[]).await.expect("count query").get(0)
    }

    pub async fn outbox_rows(&self) -> i64 {
        self.count("select count(*) from outbox").await
    }
}

async fn service(db_url: &str, registry: &sluice_avro::RegistryEndpoint) -> CommandService {
    let pool = cms_write::connect_pool(db_url, 8).expect("pool");
    let outbox = OutboxTable::parse("cms.outbox").expect("outbox name");
    let mut client = pool.get().await.expect("db connection");
    cms_write::migrations::migrate(&mut client, &outbox).await.expect("migrate");
    drop(client);
    let schemas = SchemaSet::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas").as_ref()).expect("schemas");
    let encoder = |aggregate: &'static str| {
        let text = schemas.latest(aggregate).expect("schema").text.clone();
        async move {
            let subject = format!("sluice.{aggregate}.state-value");
            Arc::new(RegistryEncoder::register(registry, &subject, &text).await.expect("register"))
        }
    };
    let encoders = Encoders { article: encoder("article").await, author: encoder("author").await };
    CommandService::new(pool, outbox, encoders, "http://query.test".into(), Duration::from_secs(3600))
}

/// Command API connections of this database that wait on a lock someone holds.
const BLOCKED_COMMANDS: &str = "select count(*) from pg_stat_activity
     where application_name = 'sluice-command-api' and datname = current_database()
       and cardinality(pg_blocking_pids(pid)) > 0";

impl Harness {
    /// Waits until exactly `n` command transactions are blocked on a lock.
    /// The deadline only turns a hang into a failure with a message.
    pub async fn wait_blocked(&self, n: i64) {
        let client = self.client().await;
        let deadline = tokio::time::Instant::now() + HANG;
        loop {
            let blocked: i64 = client.query_one(BLOCKED_COMMANDS, &[]).await.expect("blocked commands").get(0);
            if blocked == n {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "expected {n} blocked commands, see {blocked}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until every command still running (`running()` counts them) is
    /// blocked on a lock: nothing moves until the test releases one.
    pub async fn wait_quiet(&self, running: impl Fn() -> i64) {
        let client = self.client().await;
        let deadline = tokio::time::Instant::now() + HANG;
        loop {
            // Counted before and after: if no command finished in between,
            // all of them were blocked at once, and stay so.
            let before = running();
            let blocked: i64 = client.query_one(BLOCKED_COMMANDS, &[]).await.expect("blocked commands").get(0);
            let running = running();
            if before == running && blocked == running {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{running} commands running, {blocked} blocked");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Not a performance limit: how long a wait may last before the test calls it a hang.
pub const HANG: Duration = Duration::from_secs(300);
