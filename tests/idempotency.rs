//! Idempotency proven, not assumed: one CMS history (authors renamed,
//! articles drafted, tagged, published, archived, moved between authors,
//! erased) projected twice, each time into Redis and into PostgreSQL side by
//! side. A clean run reads each record once; a rough run reads every record
//! twice, in the other order of topics, then every partition replayed from
//! offset 0 after the end, then each key's first version again after its
//! newest (or its erasure), and finally the projectors restarted from older
//! stored positions. The two read models of each store must be equal, byte
//! for byte: a sorted dump of every key and value (Redis), the sorted rows
//! of every data table (PostgreSQL).

mod common;

use serde_json::{Value, json};
use sluice_avro::RegistryEncoder;
use sluice_kafka::rdkafka::message::{Header, OwnedHeaders};
use sluice_kafka::rdkafka::producer::{FutureProducer, FutureRecord};
use sluice_kafka::{CleanupPolicy, TopicSpec};
use sluice_projection::Position;
use sluice_store_postgres::SchemaName;
use sluice_testkit::{Dice, ServiceHandle, TestBroker, TestPostgres, TestRedis, random_name};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

const PARTITIONS: i32 = 3;
const WAIT: Duration = Duration::from_secs(180);
/// The rough run's projectors read small batches: most of a key's versions
/// arrive in different batches, where only the stores' version guards keep
/// an older one from winning (within a batch the newest wins before the
/// guard is asked). The clean run reads batches of the default size.
const ROUGH_BATCH: Option<usize> = Some(5);

/// One record of the history: a snapshot, or an erasure (None).
#[derive(Clone)]
struct Record {
    aggregate: &'static str,
    key: String,
    version: i64,
    doc: Option<Value>,
}

/// Authors first in time, then articles; per key, versions ascend.
fn history() -> Vec<Record> {
    let mut dice = Dice::new(7);
    let mut records = Vec::new();
    for a in 0..6 {
        let id = format!("author-{a}");
        for version in 1..=1 + dice.roll(4) as i64 {
            let doc = json!({"id": id, "name": format!("Author {a} v{version}"), "version": version,
                             "created_at": 1, "updated_at": version, "bio": null});
            records.push(Record { aggregate: "author", key: id.clone(), version, doc: Some(doc) });
        }
    }
    let statuses = ["DRAFT", "SCHEDULED", "PUBLISHED", "ARCHIVED"];
    let tags = ["rust", "cqrs", "kafka", "pg"];
    for n in 0..60 {
        let id = format!("article-{n}");
        let versions = 1 + dice.roll(8) as i64;
        let mut author = dice.roll(7); // 6: no author
        for version in 1..=versions {
            if dice.roll(5) == 0 {
                author = dice.roll(7);
            }
            let status = statuses[dice.roll(4) as usize];
            let chosen: Vec<&str> = tags.iter().copied().filter(|_| dice.roll(2) == 0).collect();
            let published_at =
                if status == "PUBLISHED" { json!(1_764_000_000_000_000 + n * 1_000 + version) } else { Value::Null };
            let author_id = if author < 6 { json!(format!("author-{author}")) } else { Value::Null };
            let doc = json!({"id": id, "slug": format!("slug-{}", n % 50), "title": format!("Title {n}.{version}"),
                             "body": "Body", "author_id": author_id, "status": status, "version": version,
                             "created_at": 1, "updated_at": version, "published_at": published_at,
                             "tags": chosen, "scheduled_at": null});
            records.push(Record { aggregate: "article", key: id.clone(), version, doc: Some(doc) });
        }
        if dice.roll(5) == 0 {
            records.push(Record { aggregate: "article", key: id, version: versions + 1, doc: None });
        }
    }
    records
}

struct Topics {
    prefix: String,
    encoders: BTreeMap<&'static str, RegistryEncoder>,
}

/// The stores a projection is read into.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Store {
    Redis,
    /// Into the schema `read_<projection>` of [`Setup::pg`].
    Postgres,
}

/// A running projector and the store it writes to.
struct Projector {
    store: Store,
    service: ServiceHandle,
}

/// A database prepared by `deploy/sql/roles.sql`, for PostgreSQL read models.
struct Pg {
    server: TestPostgres,
    database: String,
    admin: tokio_postgres::Client,
}

struct Setup {
    broker: TestBroker,
    redis: TestRedis,
    /// Only for the tests that project into PostgreSQL too.
    pg: Option<Pg>,
    registry: ServiceHandle,
    producer: FutureProducer,
}

/// The PostgreSQL schema of `projection`.
fn schema(projection: &str) -> String {
    format!("read_{projection}")
}

impl Setup {
    /// Redis only.
    async fn start() -> Setup {
        Setup::start_with(None).await
    }

    /// Redis and PostgreSQL.
    async fn with_postgres() -> Setup {
        let server = TestPostgres::start();
        let database = common::database_with_roles(&server).await;
        let admin = server.connect(&database).await;
        Setup::start_with(Some(Pg { server, database, admin })).await
    }

    async fn start_with(pg: Option<Pg>) -> Setup {
        let broker = TestBroker::start();
        let redis = TestRedis::start();
        let mut registry = sluice_testkit::start_registry(&broker.bootstrap()).await;
        registry.wait_ready().await;
        let producer = sluice_kafka::producer(&broker.bootstrap(), "idempotency-test").expect("producer");
        Setup { broker, redis, pg, registry, producer }
    }

    fn stores(&self) -> Vec<Store> {
        let mut stores = vec![Store::Redis];
        stores.extend(self.pg.as_ref().map(|_| Store::Postgres));
        stores
    }

    fn pg(&self) -> &Pg {
        self.pg.as_ref().expect("this setup has no PostgreSQL")
    }

    async fn topics(&self) -> Topics {
        let prefix = random_name("idem");
        let mut encoders = BTreeMap::new();
        for (aggregate, schema) in [("article", "article/v3.avsc"), ("author", "author/v2.avsc")] {
            let topic = format!("{prefix}.{aggregate}.state");
            let text = std::fs::read_to_string(format!("{}/{schema}", common::schemas_dir())).expect("schema");
            let encoder = RegistryEncoder::register(
                &sluice_testkit::registry_writer(&self.registry),
                &format!("{topic}-value"),
                &text,
            )
            .await
            .expect("register");
            let spec = TopicSpec { name: topic, partitions: PARTITIONS, cleanup: CleanupPolicy::Compact };
            sluice_kafka::ensure_topics(&self.broker.bootstrap(), &[spec]).await.expect("topic");
            encoders.insert(aggregate, encoder);
        }
        Topics { prefix, encoders }
    }

    /// Sends `records` in this order and waits for the broker's acks.
    async fn produce(&self, topics: &Topics, records: &[Record]) {
        let mut acks = Vec::new();
        for r in records {
            let topic = format!("{}.{}.state", topics.prefix, r.aggregate);
            let version = r.version.to_string();
            let headers = OwnedHeaders::new()
                .insert(Header { key: "sluice.aggregate_version", value: Some(version.as_str()) })
                .insert(Header { key: "sluice.aggregate_type", value: Some(r.aggregate) });
            let bytes = r.doc.as_ref().map(|doc| {
                topics.encoders[r.aggregate].encode_value(sluice_avro::Value::from(doc.clone())).expect("encode")
            });
            let mut record = FutureRecord::<str, [u8]>::to(&topic).key(&r.key).headers(headers);
            if let Some(bytes) = &bytes {
                record = record.payload(bytes);
            }
            acks.push(self.producer.send_result(record).map_err(|(e, _)| e).expect("queue"));
        }
        for ack in acks {
            ack.await.expect("delivery").map_err(|(e, _)| e).expect("produce");
        }
    }

    /// A ready projector of both topics into `store`, under `projection`,
    /// reading batches of `batch_size` records at most (None: the default).
    async fn projector(&self, store: Store, topics: &Topics, projection: &str, batch_size: Option<usize>) -> Projector {
        let more: Vec<(&str, String)> = batch_size.map(|n| ("SLUICE_BATCH_SIZE", n.to_string())).into_iter().collect();
        let service = match store {
            Store::Redis => {
                let mut env = vec![
                    ("SLUICE_REDIS_URL", self.redis.url()),
                    ("SLUICE_BROKERS", self.broker.bootstrap()),
                    ("SLUICE_REGISTRY_URL", self.registry.base_url()),
                    ("SLUICE_TOPIC_PREFIX", topics.prefix.clone()),
                    ("SLUICE_AGGREGATES", "article,author".into()),
                    ("SLUICE_PROJECTION", projection.to_string()),
                    ("SLUICE_SCHEMAS_DIR", common::schemas_dir()),
                ];
                env.extend(more);
                let mut p = ServiceHandle::start("projector-redis", &env).await;
                p.wait_ready().await;
                p
            }
            Store::Postgres => {
                let pg = self.pg();
                let url = common::projector_pg_url(&pg.server, &pg.database);
                let (registry, schema) = (self.registry.base_url(), schema(projection));
                common::projector_postgres_with(
                    &self.broker,
                    &url,
                    &registry,
                    &topics.prefix,
                    projection,
                    &schema,
                    &more,
                )
                .await
            }
        };
        Projector { store, service }
    }

    /// One projector per store of the setup, under `projection` (its
    /// PostgreSQL schema created first, if need be).
    async fn projectors(&self, topics: &Topics, projection: &str, batch_size: Option<usize>) -> Vec<Projector> {
        let mut projectors = Vec::new();
        for store in self.stores() {
            if store == Store::Postgres {
                common::create_read_schema(&self.pg().admin, &schema(projection)).await;
            }
            projectors.push(self.projector(store, topics, projection, batch_size).await);
        }
        projectors
    }

    async fn stored_positions(
        &self,
        store: Store,
        projection: &str,
        topic: &str,
    ) -> anyhow::Result<HashMap<i32, Position>> {
        match store {
            Store::Redis => {
                let mut conn = self.redis.connection().await;
                sluice_store_redis::stored_positions(&mut conn, projection, topic).await
            }
            Store::Postgres => {
                let schema = SchemaName::parse(&schema(projection)).expect("schema name");
                sluice_store_postgres::stored_positions(&self.pg().admin, &schema, projection, topic).await
            }
        }
    }

    /// Waits until the stored positions of every projector reach the end of
    /// every partition of both topics; on time-out, fails with the log of a
    /// projector behind.
    async fn wait_caught_up(&self, topics: &Topics, projection: &str, projectors: &[Projector]) {
        let metadata = Arc::new(sluice_kafka::metadata_client(&self.broker.bootstrap()).expect("metadata"));
        let start = tokio::time::Instant::now();
        for projector in projectors {
            let mut lags = Vec::new();
            loop {
                lags.clear();
                for aggregate in ["article", "author"] {
                    let topic = format!("{}.{aggregate}.state", topics.prefix);
                    let lag = match self.stored_positions(projector.store, projection, &topic).await {
                        Ok(p) => sluice_projection::lag::projection_lag(metadata.clone(), &p, &topic).await,
                        Err(e) => Err(e),
                    };
                    lags.push(format!("{lag:?}"));
                    if lag.is_ok_and(|l| l.iter().all(|p| p.messages == 0)) {
                        lags.pop();
                    }
                }
                if lags.is_empty() {
                    break;
                }
                if start.elapsed() > WAIT {
                    panic!(
                        "{projection} in {:?} did not reach the end of its topics: {lags:?}\n{}",
                        projector.store,
                        projector.service.log_tail()
                    );
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// Sets every stored position of `projection` back to `offset`, in
    /// every store (its projectors stopped).
    async fn set_positions_back(&self, topics: &Topics, projection: &str, offset: i64) {
        for store in self.stores() {
            for aggregate in ["article", "author"] {
                let topic = format!("{}.{aggregate}.state", topics.prefix);
                match store {
                    Store::Redis => {
                        let mut conn = self.redis.connection().await;
                        let key = sluice_store_redis::keys::positions(projection, &topic);
                        for partition in 0..PARTITIONS {
                            let _: () = redis::cmd("HSET")
                                .arg(&key)
                                .arg(partition)
                                .arg(format!("{offset}:0"))
                                .query_async(&mut conn)
                                .await
                                .expect("HSET");
                        }
                    }
                    Store::Postgres => {
                        let positions = SchemaName::parse(&schema(projection)).expect("schema").table("positions");
                        let update =
                            format!("update {positions} set next_offset = $1 where projection = $2 and topic = $3");
                        let n =
                            self.pg().admin.execute(&update, &[&offset, &projection, &topic]).await.expect("update");
                        assert_eq!(n, PARTITIONS as u64, "a position per partition of {topic}");
                    }
                }
            }
        }
    }

    /// The read model of `projection` in `store`, sorted.
    async fn read_model(&self, store: Store, projection: &str) -> Vec<String> {
        match store {
            Store::Redis => self.dump(projection).await,
            Store::Postgres => common::read_tables(&self.pg().admin, &schema(projection)).await,
        }
    }

    /// Every key of the projection (but its positions and marker) with its
    /// type and value, sorted, with the projection's name taken out.
    async fn dump(&self, projection: &str) -> Vec<String> {
        let mut conn = self.redis.connection().await;
        let prefix = format!("sluice:{{{projection}}}:");
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.expect("KEYS");
        let mut lines = Vec::new();
        for key in keys {
            let name = key.trim_start_matches(&prefix).to_string();
            if name.starts_with("positions:") || name == "initialized" {
                continue;
            }
            let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut conn).await.expect("TYPE");
            let value = match kind.as_str() {
                "hash" => {
                    let h: BTreeMap<String, String> =
                        redis::cmd("HGETALL").arg(&key).query_async(&mut conn).await.expect("HGETALL");
                    format!("{h:?}")
                }
                "set" => {
                    let mut m: Vec<String> =
                        redis::cmd("SMEMBERS").arg(&key).query_async(&mut conn).await.expect("SMEMBERS");
                    m.sort();
                    format!("{m:?}")
                }
                "zset" => {
                    let z: Vec<(String, String)> = redis::cmd("ZRANGE")
                        .arg(&key)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES")
                        .query_async(&mut conn)
                        .await
                        .expect("ZRANGE");
                    format!("{z:?}")
                }
                "string" => {
                    let s: String = redis::cmd("GET").arg(&key).query_async(&mut conn).await.expect("GET");
                    s
                }
                other => panic!("unexpected type {other} of {key}"),
            };
            lines.push(format!("{name} {kind} {value}"));
        }
        lines.sort();
        lines
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_replays_and_older_positions_leave_the_same_read_model_as_a_clean_run() {
    let s = Setup::with_postgres().await;
    let history = history();
    let erased = history.iter().filter(|r| r.doc.is_none()).count();
    assert!(erased > 3 && history.len() > 200, "the history exercises erasures ({erased}) at size {}", history.len());

    // Clean: every record once, authors before articles.
    let clean = s.topics().await;
    s.produce(&clean, &history).await;
    let clean_projectors = s.projectors(&clean, "clean", None).await;
    s.wait_caught_up(&clean, "clean", &clean_projectors).await;

    // Rough: articles before authors, every record twice in a row...
    let rough = s.topics().await;
    let (articles, authors): (Vec<Record>, Vec<Record>) =
        history.iter().cloned().partition(|r| r.aggregate == "article");
    let twice = |records: &[Record]| records.iter().flat_map(|r| [r.clone(), r.clone()]).collect::<Vec<_>>();
    s.produce(&rough, &twice(&articles)).await;
    s.produce(&rough, &twice(&authors)).await;
    let rough_projectors = s.projectors(&rough, "rough", ROUGH_BATCH).await;
    s.wait_caught_up(&rough, "rough", &rough_projectors).await;
    // ...then every partition replayed from offset 0 after its end...
    s.produce(&rough, &history).await;
    s.wait_caught_up(&rough, "rough", &rough_projectors).await;
    // ...and each key's first version once more, after its newest (or its
    // erasure): a late retry of another producer, read in other batches than
    // the newest (within a batch, the newest change of a key wins anyway)...
    let mut seen = std::collections::BTreeSet::new();
    let firsts: Vec<Record> =
        history.iter().filter(|r| r.doc.is_some() && seen.insert(r.key.clone())).cloned().collect();
    s.produce(&rough, &firsts).await;
    s.wait_caught_up(&rough, "rough", &rough_projectors).await;
    // ...then the projectors restarted from older stored positions (stopped
    // cleanly: they leave their groups, so the next ones are given the
    // partitions).
    for mut p in rough_projectors {
        assert!(p.service.terminate().success(), "{:?} projector stopped: {}", p.store, p.service.log_tail());
    }
    s.set_positions_back(&rough, "rough", 3).await;
    let rough_projectors = s.projectors(&rough, "rough", ROUGH_BATCH).await;
    s.wait_caught_up(&rough, "rough", &rough_projectors).await;

    for store in s.stores() {
        let (clean_model, rough_model) = (s.read_model(store, "clean").await, s.read_model(store, "rough").await);
        match store {
            Store::Redis => {
                assert!(clean_model.len() > 100, "the clean read model has {} keys", clean_model.len());
                assert!(clean_model.iter().any(|l| l.contains("view:articles:published:tag:")), "views were built");
                assert!(clean_model.iter().any(|l| l.contains("\"erased\"")), "erasures were applied");
            }
            Store::Postgres => {
                let rows = |table: &str| clean_model.iter().filter(|l| l.starts_with(&format!("{table} "))).count();
                assert!(rows("articles") > 40 && rows("authors") == 6, "the clean read tables: {clean_model:?}");
                assert!(rows("erased") > 3, "erasures were applied");
                let named = clean_model.iter().any(|l| l.starts_with("articles ") && l.contains(",\"Author "));
                assert!(named, "articles carry their author's name");
            }
        }
        let differ: Vec<(&String, &String)> =
            clean_model.iter().zip(&rough_model).filter(|(a, b)| a != b).take(5).collect();
        assert_eq!(clean_model.len(), rough_model.len(), "{store:?}: different sizes; first differences: {differ:?}");
        assert!(differ.is_empty(), "the read models in {store:?} differ: {differ:?}");
    }
}

/// `sluice projection bootstrap` builds a new projection from the same
/// topics, in its own process, to the same read model as the projector; a
/// projector service started afterwards under that name goes on from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_bootstrapped_by_the_cli_equals_the_projectors_and_a_service_goes_on_from_it() {
    let s = Setup::start().await;
    let history = history();
    let topics = s.topics().await;
    s.produce(&topics, &history).await;
    let projector = s.projectors(&topics, "served", None).await;
    s.wait_caught_up(&topics, "served", &projector).await;

    let out = std::process::Command::new(sluice_testkit::service_binary("sluice"))
        .args(["projection", "bootstrap", "--name", "boot", "--store", "redis"])
        .args(["--brokers", &s.broker.bootstrap(), "--registry-url", &s.registry.base_url()])
        .args([
            "--topic-prefix",
            &topics.prefix,
            "--schemas-dir",
            &common::schemas_dir(),
            "--redis-url",
            &s.redis.url(),
        ])
        .output()
        .expect("run sluice projection bootstrap");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("projection boot is ready"), "{stdout}");
    assert!(stderr.contains("\"message\":\"bootstrap complete"), "progress is logged as JSON: {stderr}");
    assert_eq!(s.dump("boot").await, s.dump("served").await);

    // A service under the new name goes on from where the bootstrap stopped.
    let service = s.projectors(&topics, "boot", None).await;
    let later = Record {
        aggregate: "author",
        key: "author-0".into(),
        version: 100,
        doc: Some(json!({"id": "author-0", "name": "Renamed later", "version": 100, "created_at": 1,
                         "updated_at": 100, "bio": null})),
    };
    s.produce(&topics, &[later]).await;
    s.wait_caught_up(&topics, "boot", &service).await;
    let hash: BTreeMap<String, String> = {
        let mut conn = s.redis.connection().await;
        redis::cmd("HGETALL")
            .arg(sluice_store_redis::keys::document("boot", "author", "author-0"))
            .query_async(&mut conn)
            .await
            .expect("HGETALL")
    };
    assert_eq!(hash["name"], "Renamed later");
}
