//! The Redis projector: version guard, dead letters, and a store that loses
//! its data while the projection runs.

mod common;

use serde_json::json;
use sluice_avro::RegistryEncoder;
use sluice_kafka::rdkafka::Message;
use sluice_kafka::rdkafka::consumer::Consumer;
use sluice_kafka::rdkafka::message::Headers;
use sluice_kafka::rdkafka::producer::{FutureProducer, FutureRecord};
use sluice_kafka::rdkafka::util::Timeout;
use sluice_kafka::{CleanupPolicy, TopicSpec};
use sluice_testkit::{ServiceHandle, TestBroker, TestRedis, random_name, wait_until};
use std::time::Duration;

struct Setup {
    broker: TestBroker,
    redis: TestRedis,
    registry: ServiceHandle,
    prefix: String,
    topic: String,
    encoder: RegistryEncoder,
    producer: FutureProducer,
}

impl Setup {
    async fn start() -> Setup {
        let broker = TestBroker::start();
        let redis = TestRedis::start();
        let mut registry = ServiceHandle::start("schema-registry", &[("SLUICE_BROKERS", broker.bootstrap())]).await;
        registry.wait_ready().await;
        let prefix = random_name("proj");
        let topic = format!("{prefix}.article.state");
        let schema = std::fs::read_to_string(format!("{}/article/v3.avsc", common::schemas_dir())).expect("schema");
        let encoder = RegistryEncoder::register(&registry.base_url(), &format!("{topic}-value"), &schema)
            .await
            .expect("register");
        let spec = TopicSpec { name: topic.clone(), partitions: 3, cleanup: CleanupPolicy::Compact };
        sluice_kafka::ensure_topics(&broker.bootstrap(), &[spec]).await.expect("topic");
        let producer = sluice_kafka::producer(&broker.bootstrap(), "projector-test").expect("producer");
        Setup { broker, redis, registry, prefix, topic, encoder, producer }
    }

    async fn article(&self, id: &str, version: i64, title: &str) {
        let value = json!({"id": id, "slug": id, "title": title, "body": "b", "author_id": null, "status": "DRAFT",
                           "version": version, "created_at": 1, "updated_at": 1, "published_at": null, "tags": [],
                           "scheduled_at": null});
        let bytes = self.encoder.encode_value(sluice_avro::Value::from(value)).expect("encode");
        self.raw(id, &bytes).await;
    }

    async fn raw(&self, key: &str, bytes: &[u8]) {
        let record = FutureRecord::<str, [u8]>::to(&self.topic).key(key).payload(bytes);
        self.producer.send(record, Timeout::Never).await.map_err(|(e, _)| e).expect("produce");
    }

    async fn projector(&self, projection: &str) -> ServiceHandle {
        common::projector(&self.broker, &self.redis, &self.registry.base_url(), &self.prefix, projection, "").await
    }

    async fn count(&self, projection: &str) -> usize {
        let mut conn = self.redis.connection().await;
        redis::cmd("SCARD")
            .arg(format!("sluice:{{{projection}}}:article:ids"))
            .query_async(&mut conn)
            .await
            .unwrap_or(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_versions_and_duplicates_change_nothing_and_bad_records_go_to_the_dlq() {
    let s = Setup::start().await;
    s.article("x", 2, "second").await;
    s.article("x", 1, "first, arriving late").await;
    s.article("x", 2, "second, duplicated").await;
    s.raw("bad", br#"{"not": "avro"}"#).await;
    s.article("y", 1, "after the bad one").await;
    let _projector = s.projector("g").await;

    let x = common::doc(&s.redis, "g", "x").await;
    assert_eq!((x["title"].as_str(), x["version"].as_i64()), (Some("second"), Some(2)));
    assert_eq!(common::doc(&s.redis, "g", "y").await["title"], "after the bad one");

    // The undecodable record is in <topic>.dlq, original bytes, with why and where from.
    let consumer = sluice_kafka::consumer(&s.broker.bootstrap(), &random_name("dlq")).expect("consumer");
    consumer.subscribe(&[&format!("{}.dlq", s.topic)]).expect("subscribe");
    let msg =
        tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await.expect("a dead letter").expect("recv");
    assert_eq!(msg.key(), Some(&b"bad"[..]));
    assert_eq!(msg.payload(), Some(&br#"{"not": "avro"}"#[..]));
    let header = |name: &str| {
        msg.headers()
            .and_then(|h| h.iter().find(|x| x.key == name).and_then(|x| x.value))
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let reason = header("sluice.dlq.reason").unwrap_or_default();
    assert!(reason.contains("undecodable"), "{reason}");
    assert_eq!(header("sluice.dlq.source_topic").as_deref(), Some(s.topic.as_str()));
    assert!(header("sluice.dlq.source_offset").is_some());
    assert_eq!(header("sluice.dlq.projection").as_deref(), Some("g"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_rebuilds_when_its_store_loses_its_data() {
    let s = Setup::start().await;
    for i in 0..10 {
        s.article(&format!("a{i}"), 1, "t").await;
    }
    let _projector = s.projector("p").await;
    wait_until("10 articles", Duration::from_secs(60), || async { (s.count("p").await == 10).then_some(()) }).await;

    // Redis loses everything; the next record reveals it.
    let mut conn = s.redis.connection().await;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.expect("flushall");
    s.article("a10", 1, "t").await;
    wait_until("the rebuilt read model with all 11 articles", Duration::from_secs(60), || async {
        (s.count("p").await == 11).then_some(())
    })
    .await;
    assert_eq!(common::doc(&s.redis, "p", "a0").await["id"], "a0");
}
