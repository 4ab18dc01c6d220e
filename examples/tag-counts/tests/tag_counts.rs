//! The tag-counts example, run as a service against a real broker, registry
//! and PostgreSQL: CMS article snapshots on a compacted topic, then every
//! record again and each article's first version after its newest, then
//! erasures and a late older record of an erased article. After each step
//! `tag_counts` equals what the newest record of each article implies.

use serde_json::{Value, json};
use sluice_kafka::rdkafka::producer::{FutureProducer, FutureRecord};
use sluice_kafka::{CleanupPolicy, TopicSpec};
use sluice_store_postgres::SchemaName;
use sluice_testkit::{Dice, ServiceHandle, TestBroker, TestPostgres, random_name};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(120);
const PROJECTION: &str = "tags";
const SCHEMA: &str = "tag_counts";

/// One record: an article's snapshot, or its erasure (None).
#[derive(Clone)]
struct Record {
    id: String,
    version: i64,
    doc: Option<Value>,
}

/// Articles drafted, tagged, published, unpublished, archived; per article,
/// versions ascend.
fn history() -> Vec<Record> {
    let mut dice = Dice::new(11);
    let statuses = ["DRAFT", "SCHEDULED", "PUBLISHED", "PUBLISHED", "ARCHIVED"];
    let tags = ["rust", "cqrs", "kafka", "pg", "avro"];
    let mut records = Vec::new();
    for n in 0..40 {
        let id = format!("article-{n}");
        for version in 1..=1 + dice.roll(6) as i64 {
            let status = statuses[dice.roll(5) as usize];
            let chosen: Vec<&str> = tags.iter().copied().filter(|_| dice.roll(2) == 0).collect();
            let published_at = if status == "PUBLISHED" { json!(1_764_000_000_000_000i64 + n) } else { Value::Null };
            let doc = json!({"id": id, "slug": format!("slug-{n}"), "title": format!("Title {n}.{version}"),
                             "body": "Body", "author_id": null, "status": status, "version": version,
                             "created_at": 1, "updated_at": version, "published_at": published_at,
                             "tags": chosen, "scheduled_at": null});
            records.push(Record { id: id.clone(), version, doc: Some(doc) });
        }
    }
    records
}

/// Published articles per tag, from the newest record of each article.
fn expected(records: &[Record]) -> BTreeMap<String, i64> {
    let mut newest: BTreeMap<&str, &Record> = BTreeMap::new();
    for r in records {
        if newest.get(r.id.as_str()).is_none_or(|n| n.version < r.version) {
            newest.insert(&r.id, r);
        }
    }
    let mut counts = BTreeMap::new();
    for doc in newest.values().filter_map(|r| r.doc.as_ref()).filter(|d| d["status"] == "PUBLISHED") {
        for tag in doc["tags"].as_array().expect("tags") {
            *counts.entry(tag.as_str().expect("tag").to_string()).or_default() += 1;
        }
    }
    counts
}

struct Stack {
    _pg: TestPostgres,
    broker: TestBroker,
    registry: ServiceHandle,
    admin: tokio_postgres::Client,
    topic: String,
    encoder: sluice_avro::RegistryEncoder,
    producer: FutureProducer,
}

impl Stack {
    async fn produce(&self, records: &[Record]) {
        let mut acks = Vec::new();
        for r in records {
            let bytes = r.doc.as_ref().map(|d| self.encoder.encode_value(sluice_avro::Value::from(d.clone())));
            let bytes = bytes.transpose().expect("encode");
            let mut record = FutureRecord::<str, [u8]>::to(&self.topic).key(&r.id);
            if let Some(bytes) = &bytes {
                record = record.payload(bytes);
            }
            acks.push(self.producer.send_result(record).map_err(|(e, _)| e).expect("queue"));
        }
        for ack in acks {
            ack.await.expect("delivery").map_err(|(e, _)| e).expect("produce");
        }
    }

    async fn counts(&self) -> BTreeMap<String, i64> {
        let rows = self.admin.query("select tag, articles from tag_counts.tag_counts", &[]).await;
        rows.map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect()).unwrap_or_default()
    }

    /// Whether the stored positions reach the end of every partition.
    async fn caught_up(&self) -> bool {
        let schema = SchemaName::parse(SCHEMA).expect("schema");
        let metadata = Arc::new(sluice_kafka::metadata_client(&self.broker.bootstrap()).expect("metadata client"));
        let Ok(positions) =
            sluice_store_postgres::stored_positions(&self.admin, &schema, PROJECTION, &self.topic).await
        else {
            return false;
        };
        let lag = sluice_projection::lag::projection_lag(metadata, &positions, &self.topic).await;
        lag.is_ok_and(|partitions| !partitions.is_empty() && partitions.iter().all(|p| p.messages == 0))
    }

    /// Waits until every record is applied and the counts are `expected`.
    async fn wait_for(&self, expected: &BTreeMap<String, i64>, service: &ServiceHandle) {
        let start = tokio::time::Instant::now();
        while !(self.caught_up().await && self.counts().await == *expected) {
            assert!(
                start.elapsed() < DEADLINE,
                "counts {:?}, expected {expected:?}\n{}",
                self.counts().await,
                service.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_counts_follow_the_newest_record_through_duplicates_older_records_and_erasures() {
    let pg = TestPostgres::start();
    let broker = TestBroker::start();
    let database = pg.create_database().await;
    let admin = pg.connect(database.rsplit('/').next().expect("database name")).await;
    let mut registry = sluice_testkit::start_registry(&broker.bootstrap()).await;
    registry.wait_ready().await;
    let prefix = random_name("tags");
    let topic = format!("{prefix}.article.state");
    let schemas = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas");
    let text = std::fs::read_to_string(format!("{schemas}/article/v3.avsc")).expect("schema");
    let encoder = sluice_avro::RegistryEncoder::register(
        &sluice_testkit::registry_writer(&registry),
        &format!("{topic}-value"),
        &text,
    )
    .await
    .expect("register");
    let spec = TopicSpec { name: topic.clone(), partitions: 3, cleanup: CleanupPolicy::Compact };
    sluice_kafka::ensure_topics(&broker.bootstrap(), &[spec]).await.expect("topic");
    let producer = sluice_kafka::producer(&broker.bootstrap(), "tag-counts-test").expect("producer");
    let s = Stack { _pg: pg, broker, registry, admin, topic, encoder, producer };

    let mut history = history();
    s.produce(&history).await;
    let service = ServiceHandle::start(
        "tag-counts",
        &[
            ("SLUICE_DATABASE_URL", database.clone()),
            ("SLUICE_BROKERS", s.broker.bootstrap()),
            ("SLUICE_REGISTRY_URL", s.registry.base_url()),
            ("SLUICE_TOPIC_PREFIX", prefix.clone()),
            ("SLUICE_PROJECTION", PROJECTION.to_string()),
            ("SLUICE_SCHEMAS_DIR", schemas.to_string()),
        ],
    )
    .await;
    let counts = expected(&history);
    assert!(counts.len() >= 4 && counts.values().any(|&n| n > 3), "the history publishes several tags: {counts:?}");
    s.wait_for(&counts, &service).await;

    // Every record again, then each article's first version after its newest: nothing changes.
    let firsts: Vec<Record> = history.iter().filter(|r| r.version == 1).cloned().collect();
    s.produce(&history).await;
    s.produce(&firsts).await;
    s.wait_for(&counts, &service).await;

    // Erase some published articles, then a late older record of one of them: it does not come back.
    let newest = |id: &str| history.iter().filter(|r| r.id == id).max_by_key(|r| r.version).cloned();
    let erased: Vec<Record> = (0..40)
        .filter_map(|n| newest(&format!("article-{n}")))
        .filter(|r| r.doc.as_ref().is_some_and(|d| d["status"] == "PUBLISHED" && d["tags"] != json!([])))
        .take(3)
        .map(|r| Record { id: r.id, version: r.version + 1, doc: None })
        .collect();
    assert_eq!(erased.len(), 3, "the history has published, tagged articles to erase");
    let late = newest(&erased[0].id).expect("a record of the erased article");
    s.produce(&erased).await;
    s.produce(&[late]).await;
    history.extend(erased);
    let after = expected(&history);
    assert_ne!(after, counts, "the erasures take tags away");
    s.wait_for(&after, &service).await;
}
