//! A projection whose store loses its data while it runs (Redis restarted
//! without persistence) notices and rebuilds from the compacted topic.

mod common;

use serde_json::json;
use sluice_avro::RegistryEncoder;
use sluice_kafka::rdkafka::producer::{FutureProducer, FutureRecord};
use sluice_kafka::rdkafka::util::Timeout;
use sluice_kafka::{CleanupPolicy, TopicSpec};
use sluice_testkit::{ServiceHandle, TestBroker, TestRedis, random_name, wait_until};
use std::time::Duration;

async fn produce(producer: &FutureProducer, topic: &str, encoder: &RegistryEncoder, id: &str) {
    let value = json!({"id": id, "slug": id, "title": id, "body": "b", "author_id": null, "status": "DRAFT",
                       "version": 1, "created_at": 1, "updated_at": 1, "published_at": null, "tags": [], "scheduled_at": null});
    let bytes = encoder.encode_value(sluice_avro::Value::from(value)).expect("encode");
    producer
        .send(FutureRecord::<str, [u8]>::to(topic).key(id).payload(&bytes), Timeout::Never)
        .await
        .map_err(|(e, _)| e)
        .expect("produce");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_rebuilds_when_its_store_loses_its_data() {
    let broker = TestBroker::start();
    let redis = TestRedis::start();
    let mut registry = ServiceHandle::start("schema-registry", &[("SLUICE_BROKERS", broker.bootstrap())]).await;
    registry.wait_ready().await;
    let prefix = random_name("loss");
    let topic = format!("{prefix}.article.state");
    let schema = std::fs::read_to_string(format!("{}/article/v3.avsc", common::schemas_dir())).expect("schema");
    let encoder =
        RegistryEncoder::register(&registry.base_url(), &format!("{topic}-value"), &schema).await.expect("register");
    sluice_kafka::ensure_topics(
        &broker.bootstrap(),
        &[TopicSpec { name: topic.clone(), partitions: 3, cleanup: CleanupPolicy::Compact }],
    )
    .await
    .expect("topic");
    let producer = sluice_kafka::producer(&broker.bootstrap(), "store-loss-test").expect("producer");
    for i in 0..10 {
        produce(&producer, &topic, &encoder, &format!("a{i}")).await;
    }
    let _projector = common::projector(&broker, &redis, &registry.base_url(), &prefix, "p", "").await;
    let mut conn = redis.connection().await;
    let ids_key = "sluice:{p}:article:ids";
    let count = |conn: &mut redis::aio::MultiplexedConnection| {
        let mut conn = conn.clone();
        async move { redis::cmd("SCARD").arg(ids_key).query_async::<usize>(&mut conn).await.ok() }
    };
    wait_until("10 articles", Duration::from_secs(60), || {
        let c = count(&mut conn);
        async move { c.await.filter(|n| *n == 10) }
    })
    .await;

    // Redis loses everything; the next record reveals it.
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.expect("flushall");
    produce(&producer, &topic, &encoder, "a10").await;
    wait_until("the rebuilt read model with all 11 articles", Duration::from_secs(60), || {
        let c = count(&mut conn);
        async move { c.await.filter(|n| *n == 11) }
    })
    .await;
    assert!(common::doc(&redis, "p", "a0").await["title"] == "a0");
}
