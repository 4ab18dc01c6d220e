//! The whole system on one machine, with a way to crash each part of it.

use serde_json::json;
use sluice_testkit::{ServiceHandle, TestBroker, TestPostgres, TestRedis, random_name};
use std::time::{Duration, Instant};

use crate::common;

/// What a fault kills (and later starts again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    Relay,
    ProjectorRedis,
    ProjectorPostgres,
    QueryApi,
    Registry,
    Broker,
    Redis,
    Postgres,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::Relay,
        Fault::ProjectorRedis,
        Fault::ProjectorPostgres,
        Fault::QueryApi,
        Fault::Registry,
        Fault::Broker,
        Fault::Redis,
        Fault::Postgres,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Relay => "kill -9 outbox-relay",
            Fault::ProjectorRedis => "kill -9 projector-redis",
            Fault::ProjectorPostgres => "kill -9 projector-postgres",
            Fault::QueryApi => "kill -9 query-api",
            Fault::Registry => "kill -9 schema-registry",
            Fault::Broker => "kill -9 broker (tansu)",
            Fault::Redis => "kill -9 redis (restarts empty)",
            Fault::Postgres => "PostgreSQL crash (immediate stop)",
        }
    }
}

/// The Redis projection's and the PostgreSQL read model's names.
pub const READ_SCHEMA: &str = "cms_read";

pub struct Stack {
    pub pg: TestPostgres,
    pub redis: TestRedis,
    pub broker: TestBroker,
    pub registry: ServiceHandle,
    pub command: ServiceHandle,
    pub relay: ServiceHandle,
    pub projector_redis: ServiceHandle,
    pub projector_pg: ServiceHandle,
    pub query: ServiceHandle,
    pub prefix: String,
    pub projection: String,
    /// The command API's database (the source of truth).
    pub source_db: String,
    /// The PostgreSQL read model's database.
    pub read_db: String,
    http: reqwest::Client,
    probes: u64,
}

impl Stack {
    /// Every part started and ready; the relay also publishes the full
    /// history to the `.events` topics, which the checks read back.
    pub async fn start() -> Stack {
        let pg = TestPostgres::start_durable();
        let redis = TestRedis::start();
        let broker = TestBroker::start();
        let source_url = pg.create_database().await;
        let source_db = source_url.rsplit('/').next().expect("database name").to_string();
        let prefix = random_name("chaos");
        let mut registry = sluice_testkit::start_registry(&broker.bootstrap()).await;
        registry.wait_ready().await;
        let registry_url = registry.base_url();
        let command = common::command_api(&source_url, &registry_url, &prefix, "http://query.invalid").await;
        let relay =
            common::relay_with(&source_url, &broker.bootstrap(), &prefix, &[("SLUICE_EVENTS_TOPICS", "true".into())])
                .await;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("HTTP client");
        // The topics exist before the projectors start.
        common::command(&http, &command.base_url(), "/authors", Some(json!({"name": "First author"}))).await;
        let projection = random_name("proj");
        // One replica of each projector, reading every partition itself:
        // tansu 0.6.0's group coordination does not survive its restarts
        // (see SLUICE_ASSIGNMENT).
        let all = [("SLUICE_ASSIGNMENT", "all".to_string())];
        let projector_redis = common::projector_with(&broker, &redis, &registry_url, &prefix, &projection, &all).await;
        let read_db = common::database_with_roles(&pg).await;
        let read_url = common::projector_pg_url(&pg, &read_db);
        let projector_pg =
            common::projector_postgres_with(&broker, &read_url, &registry_url, &prefix, "cms", READ_SCHEMA, &all).await;
        let query = common::query_api(&broker, &redis, &prefix, &projection, &command.base_url(), &[]).await;
        Stack {
            pg,
            redis,
            broker,
            registry,
            command,
            relay,
            projector_redis,
            projector_pg,
            query,
            prefix,
            projection,
            source_db,
            read_db,
            http,
            probes: 0,
        }
    }

    /// Kills what `fault` names, leaves it down for `down`, starts it again;
    /// returns when it runs again (not when the system has caught up).
    pub async fn inject(&mut self, fault: Fault, down: Duration) {
        match fault {
            Fault::Broker => self.broker.stop(),
            Fault::Redis => self.redis.stop(),
            Fault::Postgres => self.pg.crash(),
            service => self.service(service).kill_hard(),
        }
        tokio::time::sleep(down).await;
        match fault {
            Fault::Broker => self.broker.restart(),
            Fault::Redis => self.redis.start_again().await,
            Fault::Postgres => self.pg.start_again().await,
            service => self.service(service).restart().await,
        }
    }

    fn service(&mut self, fault: Fault) -> &mut ServiceHandle {
        match fault {
            Fault::Relay => &mut self.relay,
            Fault::ProjectorRedis => &mut self.projector_redis,
            Fault::ProjectorPostgres => &mut self.projector_pg,
            Fault::QueryApi => &mut self.query,
            Fault::Registry => &mut self.registry,
            Fault::Broker | Fault::Redis | Fault::Postgres => unreachable!("not a Sluice service"),
        }
    }

    /// Recovery: a command written now (retried until accepted) is in both
    /// read models and the query API serves it. How long that took.
    pub async fn recovered(&mut self) -> Duration {
        let start = Instant::now();
        self.probes += 1;
        let name = format!("Probe {}", self.probes);
        let url = format!("{}/authors", self.command.base_url());
        let id = sluice_testkit::wait_until("the command API to accept a command again", DEADLINE, || {
            let request = self.http.post(&url).bearer_auth(common::TOKEN).json(&json!({"name": name}));
            async move {
                let answer: serde_json::Value =
                    request.send().await.ok()?.error_for_status().ok()?.json().await.ok()?;
                answer["id"].as_str().map(str::to_string)
            }
        })
        .await;
        loop {
            let seen = (self.in_redis(&id).await, self.in_read_db(&id).await, self.served(&id).await);
            if seen == (true, true, true) {
                break;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "author {id} not everywhere after {DEADLINE:?} (Redis, PostgreSQL read model, query API: {seen:?});\n{}\n{}",
                self.logs(),
                self.positions().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        start.elapsed()
    }

    /// Writes every service's whole log to `target/tmp/chaos-logs/` and
    /// returns their last lines.
    pub fn logs(&self) -> String {
        let services = [
            ("outbox-relay", &self.relay),
            ("projector-redis", &self.projector_redis),
            ("projector-postgres", &self.projector_pg),
            ("query-api", &self.query),
            ("schema-registry", &self.registry),
            ("command-api", &self.command),
        ];
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("chaos-logs");
        let _ = std::fs::create_dir_all(&dir);
        for (name, s) in &services {
            let _ = std::fs::write(dir.join(format!("{name}.log")), s.log_text());
        }
        let tails: String = services.iter().map(|(name, s)| format!("--- {name}\n{}\n", s.log_tail())).collect();
        format!("{tails}(whole logs in {})", dir.display())
    }

    /// The author topic's watermarks beside the positions the Redis
    /// projection holds for it.
    async fn positions(&self) -> String {
        let topic = sluice_core::topics::state_topic(&self.prefix, "author");
        let consumer = sluice_kafka::metadata_client(&self.broker.bootstrap()).expect("client");
        let marks =
            sluice_kafka::watermarks(&consumer, &topic).map(|w| format!("{w:?}")).unwrap_or_else(|e| e.to_string());
        let key = format!("sluice:{{{}}}:positions:{topic}", self.projection);
        let mut conn = self.redis.connection().await;
        let held: Result<Vec<String>, _> = redis::cmd("HGETALL").arg(key).query_async(&mut conn).await;
        format!("{topic}: watermarks {marks}; Redis positions {held:?}")
    }

    async fn in_redis(&self, id: &str) -> bool {
        let key = format!("sluice:{{{}}}:author:{id}", self.projection);
        let Ok(client) = redis::Client::open(self.redis.url()) else { return false };
        let Ok(mut conn) = client.get_multiplexed_async_connection().await else { return false };
        redis::cmd("HGET")
            .arg(key)
            .arg("version")
            .query_async::<Option<i64>>(&mut conn)
            .await
            .is_ok_and(|v| v.is_some())
    }

    async fn in_read_db(&self, id: &str) -> bool {
        let Some(db) = connect(&self.pg.url(&self.read_db)).await else { return false };
        let query = format!("select 1 from {READ_SCHEMA}.authors where id = $1");
        db.query_opt(&query, &[&id]).await.is_ok_and(|row| row.is_some())
    }

    async fn served(&self, id: &str) -> bool {
        let url = format!("{}/authors/{id}", self.query.base_url());
        self.http.get(url).send().await.is_ok_and(|r| r.status() == 200)
    }
}

/// How long the system may take to come back from one fault, or to catch
/// up at the end, before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// A session, or None while the server is down or recovering.
pub async fn connect(url: &str) -> Option<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.ok()?;
    tokio::spawn(connection);
    Some(client)
}
