//! `sluice projection rebuild`: blue/green, every process real. While the
//! CMS keeps changing and the projector service keeps the serving generation
//! current, a reader reads every article over and over, before, during and
//! after the rebuild: never an empty, missing or older answer. Afterwards the
//! service writes to the new generation and the old one is gone.

mod common;

use serde_json::{Value, json};
use sluice_testkit::{ServiceHandle, TestBroker, TestPostgres, TestRedis, random_name, wait_until};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(120);
const ARTICLES: usize = 60;

/// The write side, and the articles with the newest version it accepted.
struct Cms {
    http: reqwest::Client,
    command: ServiceHandle,
    prefix: String,
    registry: ServiceHandle,
    broker: TestBroker,
    _relay: ServiceHandle,
}

impl Cms {
    async fn start(db_url: &str, query_url: &str) -> Self {
        let broker = TestBroker::start();
        let prefix = random_name("rb");
        let registry = sluice_testkit::start_registry(&broker.bootstrap()).await;
        let command = common::command_api(db_url, &registry.base_url(), &prefix, query_url).await;
        let relay = common::relay(db_url, &broker.bootstrap(), &prefix).await;
        Self { http: reqwest::Client::new(), command, prefix, registry, broker, _relay: relay }
    }

    async fn send(&self, path: &str, body: Value) -> (String, i64) {
        let answer = common::command(&self.http, &self.command.base_url(), path, Some(body)).await;
        (answer["id"].as_str().expect("id").to_string(), answer["version"].as_i64().expect("version"))
    }

    async fn create_articles(&self) -> HashMap<String, i64> {
        let mut articles = HashMap::new();
        for i in 0..ARTICLES {
            let (id, v) = self.send("/articles", json!({"title": format!("Article {i}"), "body": "b"})).await;
            articles.insert(id, v);
        }
        articles
    }

    /// Edits the articles round-robin until `stop`; returns the newest
    /// version of each.
    fn keep_editing(
        self: &Arc<Self>,
        mut newest: HashMap<String, i64>,
        stop: Arc<AtomicBool>,
    ) -> tokio::task::JoinHandle<HashMap<String, i64>> {
        let cms = self.clone();
        tokio::spawn(async move {
            let ids: Vec<String> = newest.keys().cloned().collect();
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let id = &ids[n % ids.len()];
                let (_, v) = cms.send(&format!("/articles/{id}/edit"), json!({"title": format!("Edit {n}")})).await;
                newest.insert(id.clone(), v);
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            newest
        })
    }

    /// Runs `sluice projection rebuild cms` with `args`; its stdout.
    async fn rebuild(&self, args: Vec<String>) -> String {
        let mut command = tokio::process::Command::new(sluice_testkit::service_binary("sluice"));
        command
            .args(["projection", "rebuild", "cms"])
            .args(["--brokers", &self.broker.bootstrap(), "--registry-url", &self.registry.base_url()])
            .args(["--topic-prefix", &self.prefix, "--schemas-dir", &common::schemas_dir()])
            .args(args);
        let out = command.output().await.expect("run sluice projection rebuild");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "rebuild failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        stdout
    }
}

/// What a continuous reader saw.
#[derive(Default)]
struct Seen {
    /// Reads made (of every article, over and over).
    reads: AtomicUsize,
    /// Every answer that was not the article at a version at least as new
    /// as one seen before.
    wrong: std::sync::Mutex<Vec<String>>,
}

impl Seen {
    fn check(&self, newest: &mut HashMap<String, i64>, id: &str, answer: Result<i64, String>) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let problem = match answer {
            Ok(version) if version >= newest.get(id).copied().unwrap_or(0) => {
                newest.insert(id.to_string(), version);
                return;
            }
            Ok(version) => format!("{id} at version {version} after {}", newest[id]),
            Err(e) => format!("{id}: {e}"),
        };
        self.wrong.lock().expect("lock").push(problem);
    }

    fn assert_clean(&self, during: usize) {
        let wrong = self.wrong.lock().expect("lock");
        assert!(
            wrong.is_empty(),
            "{} wrong answers of {}, first: {:?}",
            wrong.len(),
            self.reads(),
            &wrong[..wrong.len().min(5)]
        );
        assert!(during > ARTICLES, "the reader read only {during} times during the rebuild");
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::Relaxed)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_rebuild_swaps_generations_under_continuous_reads() {
    let pg = TestPostgres::start();
    let redis = TestRedis::start();
    let db = pg.create_database().await;
    let query =
        ServiceHandle::start("query-api", &[("SLUICE_REDIS_URL", redis.url()), ("SLUICE_PROJECTION", "cms".into())])
            .await;
    let cms = Arc::new(Cms::start(&db, &query.base_url()).await);
    let projector = common::projector(&cms.broker, &redis, &cms.registry.base_url(), &cms.prefix, "cms", "").await;
    let articles = cms.create_articles().await;
    let (http, base) = (reqwest::Client::new(), query.base_url());
    let read = move |id: String| {
        let (http, url) = (http.clone(), format!("{base}/articles/{id}"));
        async move {
            let response = http.get(url).send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            let version = response.headers().get("sluice-version").and_then(|v| v.to_str().ok()?.parse().ok());
            match (status.as_u16(), version) {
                (200, Some(v)) => Ok(v),
                _ => Err(format!("{status}: {}", response.text().await.unwrap_or_default())),
            }
        }
    };
    for (id, version) in &articles {
        wait_until(&format!("article {id} served"), DEADLINE, || async {
            read(id.clone()).await.ok().filter(|v| v >= version).map(|_| ())
        })
        .await;
    }

    let (stop_reading, stop_editing) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let seen = Arc::new(Seen::default());
    let reader = {
        let (seen, stop, ids) = (seen.clone(), stop_reading.clone(), articles.keys().cloned().collect::<Vec<_>>());
        let read = read.clone();
        tokio::spawn(async move {
            let mut newest = HashMap::new();
            while !stop.load(Ordering::Relaxed) {
                for id in &ids {
                    seen.check(&mut newest, id, read(id.clone()).await);
                }
            }
        })
    };
    let editor = cms.keep_editing(articles.clone(), stop_editing.clone());

    let before = seen.reads();
    let out = cms.rebuild(vec!["--store".into(), "redis".into(), "--redis-url".into(), redis.url()]).await;
    let during = seen.reads() - before;
    assert!(out.contains("now served by cms.g2"), "{out}");

    stop_editing.store(true, Ordering::Relaxed);
    let mut newest = editor.await.expect("editor");
    // The service follows the pointer: what is written after the swap is
    // projected into the new generation.
    let last = newest.keys().next().expect("an article").clone();
    let (_, v) = cms.send(&format!("/articles/{last}/edit"), json!({"title": "After the swap"})).await;
    newest.insert(last, v);
    for (id, version) in &newest {
        wait_until(&format!("article {id} at {version}"), DEADLINE, || async {
            read(id.clone()).await.ok().filter(|v| v == version).map(|_| ())
        })
        .await;
    }
    stop_reading.store(true, Ordering::Relaxed);
    reader.await.expect("reader");
    seen.assert_clean(during);

    let mut conn = redis.connection().await;
    let pointer: String = redis::cmd("GET").arg("sluice:serving:cms").query_async(&mut conn).await.expect("GET");
    assert_eq!(pointer, "cms.g2");
    let old: Vec<String> = redis::cmd("KEYS").arg("sluice:{cms}:*").query_async(&mut conn).await.expect("KEYS");
    assert_eq!(old, ["sluice:{cms}:initialized"], "only the old generation's dropped marker is left");
    let marker: String = redis::cmd("GET").arg("sluice:{cms}:initialized").query_async(&mut conn).await.expect("GET");
    assert_eq!(marker, "dropped");
    let restarts = common::metric(&projector, "sluice_projection_session_restarts_total").await;
    assert!(restarts >= 1.0, "the service started a session on the new generation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_rebuild_swaps_generations_under_continuous_reads() {
    let pg = TestPostgres::start();
    let database = common::database_with_roles(&pg).await;
    let admin = pg.connect(&database).await;
    let db_url = format!("postgres://postgres@127.0.0.1:{}/{database}", pg.port);
    let role_url = common::projector_pg_url(&pg, &database);
    let cms = Arc::new(Cms::start(&db_url, "http://127.0.0.1:1").await);
    let _projector =
        common::projector_postgres(&cms.broker, &role_url, &cms.registry.base_url(), &cms.prefix, "cms", "cms_read")
            .await;
    let articles = cms.create_articles().await;
    // A reader with its own role: its grants must survive the swap.
    admin
        .batch_execute(
            "create role cms_reader login; grant usage on schema cms_read to cms_reader;
             grant select on cms_read.articles to cms_reader",
        )
        .await
        .expect("reader role");
    let reader_db = pg.connect(&database).await;
    reader_db.batch_execute("set role cms_reader").await.expect("set role");
    let read_all = async |db: &tokio_postgres::Client| -> Result<HashMap<String, i64>, String> {
        let rows = db
            .query("select id, version from cms_read.articles", &[])
            .await
            .map_err(|e| e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string()))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    };
    wait_until("every article projected", DEADLINE, || async {
        let read = read_all(&reader_db).await.ok()?;
        articles.iter().all(|(id, v)| read.get(id).is_some_and(|r| r >= v)).then_some(())
    })
    .await;

    let (stop_reading, stop_editing) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let seen = Arc::new(Seen::default());
    let reader = {
        let (seen, stop, ids) = (seen.clone(), stop_reading.clone(), articles.keys().cloned().collect::<Vec<_>>());
        tokio::spawn(async move {
            let mut newest = HashMap::new();
            while !stop.load(Ordering::Relaxed) {
                let read = read_all(&reader_db).await;
                for id in &ids {
                    let answer =
                        read.as_ref().map_err(Clone::clone).and_then(|r| r.get(id).copied().ok_or("missing".into()));
                    seen.check(&mut newest, id, answer);
                }
            }
        })
    };
    let editor = cms.keep_editing(articles.clone(), stop_editing.clone());

    let before = seen.reads();
    let args = ["--store", "postgres", "--database-url", &role_url, "--pg-schema", "cms_read"];
    let out = cms.rebuild(args.iter().map(|a| a.to_string()).collect()).await;
    let during = seen.reads() - before;
    assert!(out.contains("now served by its new generation in schema cms_read"), "{out}");
    assert!(out.contains("1 grants copied"), "{out}");

    stop_editing.store(true, Ordering::Relaxed);
    let mut newest = editor.await.expect("editor");
    let last = newest.keys().next().expect("an article").clone();
    let (_, v) = cms.send(&format!("/articles/{last}/edit"), json!({"title": "After the swap"})).await;
    newest.insert(last, v);
    let check = pg.connect(&database).await;
    wait_until("the service projects into the new generation", DEADLINE, || async {
        let read = read_all(&check).await.ok()?;
        newest.iter().all(|(id, v)| read.get(id) == Some(v)).then_some(())
    })
    .await;
    stop_reading.store(true, Ordering::Relaxed);
    reader.await.expect("reader");
    seen.assert_clean(during);

    for schema in ["cms_read_next", "cms_read_old"] {
        let tables: i64 = admin
            .query_one("select count(*) from pg_tables where schemaname = $1", &[&schema])
            .await
            .expect("count")
            .get(0);
        assert_eq!(tables, 0, "{schema} is left empty");
    }
    // The new generation holds exactly the read model's tables.
    assert!(common::read_tables(&admin, "cms_read").await.len() >= ARTICLES);
}
