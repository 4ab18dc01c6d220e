//! The write side does not depend on the read side: commands are accepted
//! while the broker, the relay, Redis and the query API are down, and the
//! outbox delivers them once the relay and the broker come up.

use serde_json::json;
use sluice_kafka::rdkafka::Message;
use sluice_kafka::rdkafka::consumer::Consumer;
use sluice_testkit::{TestBroker, TestPostgres, random_name};
use std::collections::HashSet;
use std::time::Duration;

mod common;

use common::TOKEN;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_accepted_with_only_postgres_up_and_delivered_later() {
    let pg = TestPostgres::start();
    let db = pg.create_database().await;
    let prefix = random_name("res");
    // The registry keeps its schemas in a broker of its own; the broker the
    // relay publishes to starts later.
    let registry_broker = TestBroker::start();
    let registry = sluice_testkit::start_registry(&registry_broker.bootstrap()).await;
    // Nothing listens on the query side: it is down.
    let command = common::command_api(&db, &registry.base_url(), &prefix, "http://127.0.0.1:9").await;

    let http = reqwest::Client::new();
    let mut ids = HashSet::new();
    for i in 0..20 {
        let r = http
            .post(format!("{}/articles", command.base_url()))
            .bearer_auth(TOKEN)
            .json(&json!({"title": format!("Offline {i}")}))
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), 202);
        let body: serde_json::Value = r.json().await.expect("json");
        ids.insert(body["id"].as_str().expect("id").to_string());
    }
    let held: i64 = pg
        .connect(db.rsplit('/').next().expect("db name"))
        .await
        .query_one("select count(*) from cms.outbox", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(held, 20, "the outbox holds every accepted command");

    // The broker and the relay come up: every command is published.
    let broker = TestBroker::start();
    let _relay = common::relay(&db, &broker.bootstrap(), &prefix).await;
    let topic = format!("{prefix}.article.state");
    let consumer = sluice_kafka::consumer(&broker.bootstrap(), &random_name("group")).expect("consumer");
    sluice_testkit::wait_until("the state topic", Duration::from_secs(60), || {
        let ok = sluice_kafka::partition_count(&consumer, &topic).is_ok_and(|n| n > 0);
        async move { ok.then_some(()) }
    })
    .await;
    consumer.subscribe(&[&topic]).expect("subscribe");
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while seen.len() < ids.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {} commands reached the topic",
            seen.len(),
            ids.len()
        );
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await {
            seen.insert(String::from_utf8_lossy(m.key().expect("key")).into_owned());
        }
    }
    assert_eq!(seen, ids);
}
