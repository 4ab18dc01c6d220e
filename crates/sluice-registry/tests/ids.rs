//! Schema ids are bound once and never handed to another schema: not after a
//! permanent delete and compaction of the `_schemas` topic, not by a
//! follower, and not when two instances both believe they lead.

mod registry_client;

use registry_client::{Client, code, record, registry};
use serde_json::{Value, json};
use sluice_kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use sluice_kafka::rdkafka::message::Message;
use sluice_kafka::rdkafka::producer::FutureRecord;
use sluice_kafka::rdkafka::util::Timeout;
use sluice_kafka::rdkafka::{Offset, TopicPartitionList};
use sluice_kafka::{CleanupPolicy, TopicSpec};
use sluice_testkit::{TestBroker, random_name};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

type Record = (Vec<u8>, Option<Vec<u8>>);

/// The end offset of the single partition of `topic`.
async fn end_offset(broker: &TestBroker, topic: &str) -> i64 {
    let consumer = sluice_kafka::metadata_client(&broker.bootstrap()).expect("metadata client");
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || sluice_kafka::watermarks(&consumer, &topic))
        .await
        .expect("join")
        .expect("watermarks")[0]
        .high
}

/// Every record of `topic`, in order.
async fn read_all(broker: &TestBroker, topic: &str) -> Vec<Record> {
    let end = end_offset(broker, topic).await;
    let brokers = broker.bootstrap();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = sluice_kafka::rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", random_name("ids-test"))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "5")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&topic, 0, Offset::Beginning).expect("assignment");
        consumer.assign(&assignment).expect("assign");
        let mut records = Vec::new();
        let mut position = 0;
        while position < end {
            match consumer.poll(Duration::from_secs(30)) {
                Some(Ok(m)) => {
                    records.push((m.key().unwrap_or_default().to_vec(), m.payload().map(<[u8]>::to_vec)));
                    position = m.offset() + 1;
                }
                Some(Err(e)) => panic!("read {topic}: {e}"),
                None => panic!("no record of {topic} after offset {position} (end {end})"),
            }
        }
        records
    })
    .await
    .expect("join")
}

/// What log compaction keeps: the latest record of each key, in log order,
/// without the keys whose latest record is a tombstone (their tombstones
/// expire too).
fn compacted(records: &[Record]) -> Vec<Record> {
    let mut latest: HashMap<&[u8], usize> = HashMap::new();
    for (i, (key, _)) in records.iter().enumerate() {
        latest.insert(key, i);
    }
    records
        .iter()
        .enumerate()
        .filter(|(i, (key, value))| latest[key.as_slice()] == *i && value.is_some())
        .map(|(_, r)| r.clone())
        .collect()
}

async fn write_topic(broker: &TestBroker, topic: &str, records: &[Record]) {
    let spec = TopicSpec { name: topic.into(), partitions: 1, cleanup: CleanupPolicy::Compact };
    sluice_kafka::ensure_topics(&broker.bootstrap(), &[spec]).await.expect("create topic");
    let producer = sluice_kafka::producer(&broker.bootstrap(), "ids-test").expect("producer");
    for (key, value) in records {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).key(key.as_slice()).partition(0);
        if let Some(v) = value {
            record = record.payload(v.as_slice());
        }
        producer.send(record, Timeout::Never).await.map_err(|(e, _)| e).expect("produce");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_freed_by_a_permanent_delete_and_compaction_is_never_given_to_another_schema() {
    let broker = TestBroker::start();
    let kept = record(r#"{"name":"kept","type":"int"}"#);
    let purged = record(r#"{"name":"purged","type":"string"}"#);
    let newcomer = record(r#"{"name":"newcomer","type":"long"}"#);
    {
        let first = registry(&broker, &[("SLUICE_TOPIC", "_schemas".into())]).await;
        let c = Client::new(&first);
        assert_eq!(c.register("kept-value", &kept).await.1["id"], 1);
        assert_eq!(c.register("purged-value", &purged).await.1["id"], 2);
        assert_eq!(c.delete("/subjects/purged-value").await.1, json!([1]));
        assert_eq!(c.delete("/subjects/purged-value?permanent=true").await.1, json!([1]));
    }
    // The broker's compaction may not run: write what it would keep.
    let after_compaction = compacted(&read_all(&broker, "_schemas").await);
    write_topic(&broker, "_schemas_compacted", &after_compaction).await;

    let restarted = registry(&broker, &[("SLUICE_TOPIC", "_schemas_compacted".into())]).await;
    let c = Client::new(&restarted);
    assert_eq!(c.get("/subjects").await.1, json!(["kept-value"]));
    assert_eq!(c.get("/subjects/kept-value/versions/1").await.1["id"], 1);
    let (status, answer) = c.register("new-value", &newcomer).await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["id"].as_u64().expect("id");
    assert!(id > 2, "id {id} was already given to another schema before the permanent delete");
    assert_eq!(code(&c.get("/schemas/ids/2").await.1), Some(40403), "id 2 stays unbound");
    assert_eq!(c.get(&format!("/schemas/ids/{id}")).await.1["schema"], newcomer);

    // And once more after a restart on the same (compacted) topic.
    drop(restarted);
    let again = registry(&broker, &[("SLUICE_TOPIC", "_schemas_compacted".into())]).await;
    let c = Client::new(&again);
    let another = record(r#"{"name":"another","type":"double"}"#);
    let next = c.register("another-value", &another).await.1["id"].as_u64().expect("id");
    assert!(next > id, "id {next} after {id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_forwards_writes_and_never_allocates_an_id_itself() {
    let broker = TestBroker::start();
    let schema = record(r#"{"name":"a","type":"int"}"#);
    // A follower whose leader is down refuses writes and writes nothing.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let nowhere = format!("http://127.0.0.1:{port}");
    let orphan = registry(&broker, &[("SLUICE_LEADER_URL", nowhere)]).await;
    let o = Client::new(&orphan);
    let before = end_offset(&broker, "_schemas").await;
    let (status, answer) = o.register("f-value", &schema).await;
    assert_eq!((status, code(&answer)), (500, Some(50003)), "{answer}");
    let (status, answer) = o.put("/config/f-value", json!({"compatibility": "NONE"})).await;
    assert_eq!((status, code(&answer)), (500, Some(50003)), "{answer}");
    let (status, answer) = o.delete("/subjects/f-value").await;
    assert_eq!((status, code(&answer)), (500, Some(50003)), "{answer}");
    assert_eq!(end_offset(&broker, "_schemas").await, before, "the follower wrote to the schemas topic");
    // Reads and compatibility tests are answered locally.
    assert_eq!(o.get("/subjects").await, (200, json!([])));
    let (status, answer) = o.post("/compatibility/subjects/f-value/versions", json!({"schema": schema})).await;
    assert_eq!((status, answer), (200, json!({"is_compatible": true})));
    drop(orphan);

    // With its leader up, the leader allocates.
    let leader = registry(&broker, &[]).await;
    let l = Client::new(&leader);
    assert_eq!(l.register("l-value", &record(r#"{"name":"first","type":"int"}"#)).await.1["id"], 1);
    let follower = registry(&broker, &[("SLUICE_LEADER_URL", leader.base_url())]).await;
    let f = Client::new(&follower);
    let (status, answer) = f.register("f-value", &schema).await;
    assert_eq!((status, answer["id"].as_u64()), (200, Some(2)), "{answer}");
    assert_eq!(l.get("/schemas/ids/2").await.1["schema"], schema);
}

/// Two instances that both believe they lead, registering different schemas
/// at the same time into shared and own subjects: every id they hand out is
/// bound to exactly one schema, as both of them and a third, fresh instance
/// see it, and every registration keeps its version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_leaders_never_bind_one_id_to_two_schemas() {
    const PER_LEADER: usize = 30;
    let broker = TestBroker::start();
    let a = registry(&broker, &[]).await;
    let b = registry(&broker, &[]).await;
    let (ca, cb) = (Client::new(&a), Client::new(&b));
    assert_eq!(ca.put("/config", json!({"compatibility": "NONE"})).await.0, 200);
    sluice_testkit::wait_until("b to read the configuration", Duration::from_secs(60), || async {
        (cb.get("/config").await.1 == json!({"compatibilityLevel": "NONE"})).then_some(())
    })
    .await;

    async fn run(client: &Client, leader: &str) -> Vec<(String, String, u64)> {
        let mut given = Vec::new();
        for i in 0..PER_LEADER {
            let subject = if i % 2 == 0 { "shared-value".to_string() } else { format!("{leader}-value") };
            let schema = record(&format!(r#"{{"name":"{leader}_{i}","type":"int"}}"#));
            let (status, answer) = client.register(&subject, &schema).await;
            assert_eq!(status, 200, "{leader} #{i}: {answer}");
            given.push((subject, schema, answer["id"].as_u64().expect("id")));
        }
        given
    }
    let (from_a, from_b) = tokio::join!(run(&ca, "a"), run(&cb, "b"));
    let given: Vec<(String, String, u64)> = from_a.into_iter().chain(from_b).collect();

    let mut by_id: BTreeMap<u64, &str> = BTreeMap::new();
    for (_, schema, id) in &given {
        if let Some(other) = by_id.insert(*id, schema) {
            assert_eq!(other, schema, "id {id} was given to two different schemas");
        }
    }
    let c = registry(&broker, &[]).await;
    let cc = Client::new(&c);
    for (name, client) in [("a", &ca), ("b", &cb), ("a fresh instance", &cc)] {
        sluice_testkit::wait_until(&format!("{name} to serve every registration"), Duration::from_secs(60), || async {
            for (subject, schema, id) in &given {
                if client.get(&format!("/schemas/ids/{id}")).await.1["schema"] != *schema {
                    return None;
                }
                let (_, found) = client.post(&format!("/subjects/{subject}"), json!({"schema": schema})).await;
                if found["id"] != json!(id) {
                    return None;
                }
            }
            Some(())
        })
        .await;
    }
    // How often the two collided: every lost claim is a retry.
    let claims = read_all(&broker, "_schemas")
        .await
        .iter()
        .filter(|(key, _)| String::from_utf8_lossy(key).contains("SLUICE_CLAIM"))
        .count();
    println!("{} registrations took {claims} claims", given.len());
    assert!(claims >= given.len(), "every registration claims its id and version");
    // Each registration has its own version in the shared subject.
    let (_, versions) = cc.get("/subjects/shared-value/versions").await;
    let shared = given.iter().filter(|(s, _, _)| s == "shared-value").count();
    assert_eq!(versions.as_array().map(Vec::len), Some(shared), "{versions}");
    for version in versions.as_array().into_iter().flatten() {
        let (_, v): (u16, Value) = cc.get(&format!("/subjects/shared-value/versions/{version}")).await;
        assert_eq!(by_id.get(&v["id"].as_u64().expect("id")).copied(), v["schema"].as_str(), "{v}");
    }
}
