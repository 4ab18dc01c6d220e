//! The Redis projector against a schema registry that is behind, hangs or
//! restarts: records wait for their schema, none is dead-lettered.

mod common;

use serde_json::json;
use sluice_avro::{RegistryEncoder, Schema};
use sluice_kafka::rdkafka::producer::{FutureProducer, FutureRecord};
use sluice_kafka::rdkafka::util::Timeout;
use sluice_kafka::{CleanupPolicy, TopicSpec};
use sluice_testkit::{ServiceHandle, TestBroker, TestRedis, random_name, wait_until};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

struct Setup {
    broker: TestBroker,
    redis: TestRedis,
    registry: ServiceHandle,
    prefix: String,
    topic: String,
    producer: FutureProducer,
}

fn schema_text(version: u32) -> String {
    std::fs::read_to_string(format!("{}/article/v{version}.avsc", common::schemas_dir())).expect("schema")
}

fn article(id: &str, version: i64) -> serde_json::Value {
    json!({"id": id, "slug": id, "title": "t", "body": "b", "author_id": null, "status": "DRAFT",
           "version": version, "created_at": 1, "updated_at": 1, "published_at": null, "tags": [],
           "scheduled_at": null})
}

impl Setup {
    async fn start() -> Setup {
        let broker = TestBroker::start();
        let redis = TestRedis::start();
        let mut registry = sluice_testkit::start_registry(&broker.bootstrap()).await;
        registry.wait_ready().await;
        let prefix = random_name("reg");
        let topic = format!("{prefix}.article.state");
        let spec = TopicSpec { name: topic.clone(), partitions: 3, cleanup: CleanupPolicy::Compact };
        sluice_kafka::ensure_topics(&broker.bootstrap(), &[spec]).await.expect("topic");
        let producer = sluice_kafka::producer(&broker.bootstrap(), "projector-registry-test").expect("producer");
        Setup { broker, redis, registry, prefix, topic, producer }
    }

    async fn register(&self, subject: &str, version: u32) -> RegistryEncoder {
        RegistryEncoder::register(&sluice_testkit::registry_writer(&self.registry), subject, &schema_text(version))
            .await
            .expect("register")
    }

    async fn produce(&self, key: &str, bytes: &[u8]) {
        let record = FutureRecord::<str, [u8]>::to(&self.topic).key(key).payload(bytes);
        self.producer.send(record, Timeout::Never).await.map_err(|(e, _)| e).expect("produce");
    }

    /// A projector that is not waited on for readiness (it may be blocked on
    /// the registry from its first record).
    async fn projector(&self, projection: &str) -> ServiceHandle {
        ServiceHandle::start(
            "projector-redis",
            &[
                ("SLUICE_AGGREGATES", "article".into()),
                ("SLUICE_REDIS_URL", self.redis.url()),
                ("SLUICE_BROKERS", self.broker.bootstrap()),
                ("SLUICE_REGISTRY_URL", self.registry.base_url()),
                ("SLUICE_TOPIC_PREFIX", self.prefix.clone()),
                ("SLUICE_PROJECTION", projection.to_string()),
                ("SLUICE_SCHEMAS_DIR", common::schemas_dir()),
            ],
        )
        .await
    }

    /// Records in `<topic>.dlq` (0 until the projector created it).
    async fn dead_letters(&self) -> i64 {
        let brokers = self.broker.bootstrap();
        let dlq = format!("{}.dlq", self.topic);
        tokio::task::spawn_blocking(move || {
            let client = sluice_kafka::metadata_client(&brokers).expect("metadata client");
            sluice_kafka::watermarks(&client, &dlq).map_or(0, |marks| marks.iter().map(|w| w.high).sum())
        })
        .await
        .expect("watermarks")
    }

    async fn has(&self, projection: &str, id: &str) -> bool {
        let mut conn = self.redis.connection().await;
        redis::cmd("EXISTS")
            .arg(format!("sluice:{{{projection}}}:article:{id}"))
            .query_async::<i64>(&mut conn)
            .await
            .is_ok_and(|n| n == 1)
    }

    /// Waits until the projector has retried a decode because of the registry
    /// at least `n` times; fails at once if something reached the DLQ.
    async fn wait_for_registry_retries(&self, projector: &ServiceHandle, n: f64) {
        wait_until("the projector to retry on the registry (instead of dead-lettering)", WAIT, || async {
            let dead = self.dead_letters().await;
            assert_eq!(dead, 0, "a decodable record was dead-lettered; projector log:\n{}", projector.log_tail());
            (common::metric(projector, "sluice_projection_registry_retries_total").await >= n).then_some(())
        })
        .await;
    }
}

/// A record framed with schema id 1 before the registry has any schema (as
/// a follower that has not replayed the write yet would answer): 404 for
/// that id is not a reason to dead-letter a good record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_whose_schema_id_the_registry_does_not_know_yet_waits_for_it() {
    let s = Setup::start().await;
    let schema = Schema::parse_str(&schema_text(3)).expect("v3");
    let value = sluice_avro::Value::from(article("early", 1)).resolve(&schema).expect("fits v3");
    let body = apache_avro::to_avro_datum(&schema, value).expect("encode");
    s.produce("early", &sluice_avro::frame(1, &body)).await;

    let mut projector = s.projector("unknown").await;
    s.wait_for_registry_retries(&projector, 2.0).await;

    let encoder = s.register(&format!("{}-value", s.topic), 3).await;
    assert_eq!(encoder.schema_id(), 1, "a fresh registry gives the first schema id 1");
    wait_until("the record to be applied once its schema is known", WAIT, || async {
        s.has("unknown", "early").await.then_some(())
    })
    .await;
    projector.wait_ready().await;
    assert_eq!(s.dead_letters().await, 0);
}

/// The registry hangs (connections accepted, never answered), dies
/// (connections refused) and starts again on the same address, while records
/// written with a schema the projector has not fetched yet arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_hangs_then_restarts_mid_stream_delays_records_but_loses_none() {
    let mut s = Setup::start().await;
    let current = s.register(&format!("{}-value", s.topic), 3).await;
    for i in 0..5 {
        let id = format!("a{i}");
        s.produce(&id, &current.encode_value(sluice_avro::Value::from(article(&id, 1))).expect("encode")).await;
    }
    let mut projector = s.projector("outage").await;
    projector.wait_ready().await;

    // Another writer's schema (a new id) the projector has never fetched.
    let older = s.register(&format!("{}-older-writer", s.prefix), 2).await;
    assert_ne!(older.schema_id(), current.schema_id());
    let v2 = |id: &str| {
        let mut value = article(id, 1);
        let fields = value.as_object_mut().expect("object");
        fields.remove("scheduled_at");
        older.encode_value(sluice_avro::Value::from(value)).expect("encode with v2")
    };

    // Hung: each look-up runs into its time-out.
    s.registry.freeze();
    for i in 0..5 {
        s.produce(&format!("b{i}"), &v2(&format!("b{i}"))).await;
    }
    s.wait_for_registry_retries(&projector, 2.0).await;
    // Gone: connections are refused.
    s.registry.kill_hard();
    let retries = common::metric(&projector, "sluice_projection_registry_retries_total").await;
    s.wait_for_registry_retries(&projector, retries + 2.0).await;

    s.registry.restart().await;
    for i in 5..10 {
        s.produce(&format!("b{i}"), &v2(&format!("b{i}"))).await;
    }
    for i in 0..10 {
        let id = format!("b{i}");
        wait_until(&format!("{id} to be applied after the outage"), WAIT, || async {
            s.has("outage", &id).await.then_some(())
        })
        .await;
    }
    assert_eq!(s.dead_letters().await, 0);
}

/// SIGTERM while a decode waits on a registry that does not answer: the
/// projector stops (the batch in hand is read again at the next start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_projector_that_waits_on_a_hung_registry() {
    let s = Setup::start().await;
    let encoder = s.register(&format!("{}-value", s.topic), 3).await;
    let mut projector = s.projector("hung").await;
    s.registry.freeze();
    s.produce("x", &encoder.encode_value(sluice_avro::Value::from(article("x", 1))).expect("encode")).await;
    wait_until("the projector to read the record", WAIT, || async {
        (common::metric(&projector, "sluice_projection_records_total").await >= 1.0).then_some(())
    })
    .await;

    let status = projector.terminate();
    s.registry.thaw();
    assert!(status.success(), "projector did not stop cleanly: {status}; log:\n{}", projector.log_tail());
    assert_eq!(s.dead_letters().await, 0);
}
