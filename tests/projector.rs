//! The Redis projector: version guard, dead letters, and a store that loses
//! its data or rolls back while the projection runs.

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
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const PARTITIONS: i32 = 3;

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
        let mut registry = sluice_testkit::start_registry(&broker.bootstrap()).await;
        registry.wait_ready().await;
        let prefix = random_name("proj");
        let topic = format!("{prefix}.article.state");
        let schema = std::fs::read_to_string(format!("{}/article/v3.avsc", common::schemas_dir())).expect("schema");
        let encoder =
            RegistryEncoder::register(&sluice_testkit::registry_writer(&registry), &format!("{topic}-value"), &schema)
                .await
                .expect("register");
        let spec = TopicSpec { name: topic.clone(), partitions: PARTITIONS, cleanup: CleanupPolicy::Compact };
        sluice_kafka::ensure_topics(&broker.bootstrap(), &[spec]).await.expect("topic");
        let producer = sluice_kafka::producer(&broker.bootstrap(), "projector-test").expect("producer");
        Setup { broker, redis, registry, prefix, topic, encoder, producer }
    }

    async fn article(&self, id: &str, version: i64, title: &str) {
        self.raw(id, &self.encode(id, version, title)).await;
    }

    fn encode(&self, id: &str, version: i64, title: &str) -> Vec<u8> {
        let value = json!({"id": id, "slug": id, "title": title, "body": "b", "author_id": null, "status": "DRAFT",
                           "version": version, "created_at": 1, "updated_at": 1, "published_at": null, "tags": [],
                           "scheduled_at": null});
        self.encoder.encode_value(sluice_avro::Value::from(value)).expect("encode")
    }

    /// Version `version` of every key, queued at once, acknowledged; the
    /// truth (what the read model must end with) follows.
    async fn round(&self, keys: &[String], version: i64, truth: &mut BTreeMap<String, i64>) {
        let mut acks = Vec::new();
        for key in keys {
            let bytes = self.encode(key, version, &format!("v{version}"));
            let record = FutureRecord::<str, [u8]>::to(&self.topic).key(key).payload(&bytes);
            acks.push(self.producer.send_result(record).map_err(|(e, _)| e).expect("queue"));
        }
        for ack in acks {
            ack.await.expect("delivery").map_err(|(e, _)| e).expect("produce");
        }
        for key in keys {
            truth.insert(key.clone(), version);
        }
    }

    /// One new key on every partition, so that every partition has a batch to apply.
    async fn tick_every_partition(&self, truth: &mut BTreeMap<String, i64>) {
        for partition in 0..PARTITIONS {
            let key = random_name(&format!("tick{partition}"));
            let bytes = self.encode(&key, 1, "tick");
            let record = FutureRecord::<str, [u8]>::to(&self.topic).key(&key).payload(&bytes).partition(partition);
            self.producer.send(record, Timeout::Never).await.map_err(|(e, _)| e).expect("produce");
            truth.insert(key, 1);
        }
    }

    /// Whether the positions the projection stored reach the end of every partition.
    async fn caught_up(&self, projection: &str) -> bool {
        let mut conn = self.redis.connection().await;
        let metadata = Arc::new(sluice_kafka::metadata_client(&self.broker.bootstrap()).expect("metadata client"));
        let lag = match sluice_store_redis::stored_positions(&mut conn, projection, &self.topic).await {
            Ok(positions) => sluice_projection::lag::projection_lag(metadata, &positions, &self.topic).await,
            Err(e) => Err(e),
        };
        lag.is_ok_and(|partitions| partitions.iter().all(|p| p.messages == 0))
    }

    async fn wait_caught_up(&self, projection: &str) {
        wait_until("the stored positions to reach the end of every partition", Duration::from_secs(120), || async {
            self.caught_up(projection).await.then_some(())
        })
        .await;
    }

    /// Keys whose stored version differs from the truth: (key, stored, expected).
    async fn differences(&self, projection: &str, truth: &BTreeMap<String, i64>) -> Vec<(String, Option<i64>, i64)> {
        let mut conn = self.redis.connection().await;
        let mut wrong = Vec::new();
        for (key, expected) in truth {
            let stored: Option<i64> = redis::cmd("HGET")
                .arg(format!("sluice:{{{projection}}}:article:{key}"))
                .arg("version")
                .query_async(&mut conn)
                .await
                .expect("HGET");
            if stored != Some(*expected) {
                wrong.push((key.clone(), stored, *expected));
            }
        }
        wrong
    }

    async fn assert_read_model_is_the_truth(&self, projection: &str, truth: &BTreeMap<String, i64>) {
        let wrong = self.differences(projection, truth).await;
        assert!(
            wrong.is_empty(),
            "{} of {} keys are not at their latest version (key, stored, latest): {:?}",
            wrong.len(),
            truth.len(),
            &wrong[..wrong.len().min(10)]
        );
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

    // `sluice dlq list` shows it: topic, partition, offset, age, reason, source.
    let out = std::process::Command::new(sluice_testkit::service_binary("sluice"))
        .args(["dlq", "list", "--topic", &format!("{}.dlq", s.topic), "--brokers", &s.broker.bootstrap()])
        .output()
        .expect("run sluice dlq list");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("1 dead letters"), "{stdout}");
    let line = stdout.lines().find(|l| l.contains("key=bad")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains(&format!("{}.dlq [0:0] age ", s.topic)) && line.contains(&format!("from {} partition", s.topic)),
        "{line}"
    );
    assert!(stdout.contains("reason: undecodable"), "{stdout}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_rolled_back_under_load_is_caught_up_again_from_the_positions_it_holds() {
    let mut s = Setup::start().await;
    let keys: Vec<String> = (0..60).map(|i| format!("k{i}")).collect();
    let mut truth = BTreeMap::new();
    s.round(&keys, 1, &mut truth).await;
    let projector = s.projector("rb").await;

    // A backup taken while the projector is applying a load...
    let mut during = truth.clone();
    let load = async {
        for version in 2..=8 {
            s.round(&keys, version, &mut during).await;
        }
    };
    let backup = async {
        wait_until("the projector to apply some of the load", Duration::from_secs(120), || async {
            let mut conn = s.redis.connection().await;
            let v: Option<i64> =
                redis::cmd("HGET").arg("sluice:{rb}:article:k0").arg("version").query_async(&mut conn).await.ok()?;
            (v? >= 2).then_some(())
        })
        .await;
        s.redis.snapshot().await
    };
    let ((), backup) = tokio::join!(load, backup);
    truth = during;
    // ...and more after it, so that every key changes after the backup.
    for version in 9..=10 {
        s.round(&keys, version, &mut truth).await;
    }
    s.wait_caught_up("rb").await;
    s.assert_read_model_is_the_truth("rb", &truth).await;

    // The store goes back to the backup (marker and older positions included)
    // while new records keep coming.
    let fresh: Vec<String> = (0..30).map(|i| format!("m{i}")).collect();
    s.redis.restore(&backup).await;
    s.round(&fresh, 1, &mut truth).await;
    s.tick_every_partition(&mut truth).await;
    s.wait_caught_up("rb").await;
    s.assert_read_model_is_the_truth("rb", &truth).await;
    let restarts = common::metric(
        &projector,
        r#"sluice_projection_session_restarts_total{projection="rb",reason="position_mismatch"}"#,
    );
    assert!(restarts.await >= 1.0, "the rollback was noticed by a position check");
}

/// The state the start-up race used to leave behind (positions read, store
/// emptied, marker set again), reached deterministically: the store is
/// emptied and re-marked in one step while the projector is idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_emptied_behind_a_marker_that_is_still_there_is_rebuilt() {
    let s = Setup::start().await;
    let keys: Vec<String> = (0..20).map(|i| format!("a{i}")).collect();
    let mut truth = BTreeMap::new();
    s.round(&keys, 1, &mut truth).await;
    let projector = s.projector("em").await;
    s.wait_caught_up("em").await;

    let mut conn = s.redis.connection().await;
    let _: () = redis::pipe()
        .atomic()
        .cmd("FLUSHALL")
        .ignore()
        .cmd("SET")
        .arg(sluice_store_redis::keys::marker("em"))
        .arg(sluice_store_redis::KEY_FORMAT)
        .ignore()
        .query_async(&mut conn)
        .await
        .expect("flush and re-mark");
    s.tick_every_partition(&mut truth).await;
    s.wait_caught_up("em").await;
    s.assert_read_model_is_the_truth("em", &truth).await;
    let restarts = common::metric(
        &projector,
        r#"sluice_projection_session_restarts_total{projection="em",reason="position_mismatch"}"#,
    );
    assert!(restarts.await >= 1.0, "the emptied store was noticed by a position check");
}

/// Three replicas of one projector share the partitions through a consumer
/// group; one is killed (kill -9) during a load and a fourth joins: at the
/// end the read model is the truth, and the work was shared, not repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_partitions_and_survive_a_kill_and_a_newcomer() {
    let s = Setup::start().await;
    let keys: Vec<String> = (0..150).map(|k| format!("k{k}")).collect();
    let mut truth = BTreeMap::new();
    s.round(&keys, 1, &mut truth).await;
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(s.projector("scale").await);
    }
    for version in 2..=30 {
        s.round(&keys, version, &mut truth).await;
        if version == 10 {
            replicas[0].kill_hard();
        }
        if version == 20 {
            replicas.push(s.projector("scale").await);
        }
    }
    s.tick_every_partition(&mut truth).await;
    s.wait_caught_up("scale").await;
    wait_until("every key at its latest version", Duration::from_secs(120), || async {
        s.differences("scale", &truth).await.is_empty().then_some(())
    })
    .await;
    s.assert_read_model_is_the_truth("scale", &truth).await;

    // Shared: the surviving first replicas each read part of the records,
    // not all of them (as replicas that each assigned every partition would).
    let produced = (keys.len() * 30 + PARTITIONS as usize) as f64;
    for replica in &replicas[1..3] {
        let read = common::metric(replica, "sluice_projection_records_total").await;
        assert!(read > 0.0 && read < produced, "a replica read {read} of {produced} records");
    }
}

/// A projector whose reader schema cannot read the records dead-letters
/// them; once it runs with a reader that can, `sluice dlq replay` re-drives
/// them through `<topic>.retry` and the version guard: the missing one is
/// applied, the one since superseded changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_re_driven_through_the_retry_topic_once_their_cause_is_fixed() {
    let s = Setup::start().await;
    s.article("a1", 1, "one").await;
    s.article("a2", 1, "two").await;
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/schemas-incompatible");
    let mut broken = ServiceHandle::start(
        "projector-redis",
        &[
            ("SLUICE_AGGREGATES", "article".into()),
            ("SLUICE_REDIS_URL", s.redis.url()),
            ("SLUICE_BROKERS", s.broker.bootstrap()),
            ("SLUICE_REGISTRY_URL", s.registry.base_url()),
            ("SLUICE_TOPIC_PREFIX", s.prefix.clone()),
            ("SLUICE_PROJECTION", "r".into()),
            ("SLUICE_SCHEMAS_DIR", fixture.into()),
            ("SLUICE_READER_VERSIONS", "article=2".into()),
        ],
    )
    .await;
    broken.wait_ready().await;
    assert_eq!(common::metric(&broken, "sluice_projection_dead_letter_records_total").await, 2.0);
    assert_eq!(s.count("r").await, 0);
    assert!(broken.terminate().success());

    // The cause is fixed (a reader that reads them); a1 moves on meanwhile.
    let _fixed = s.projector("r").await;
    s.article("a1", 2, "one, later").await;
    wait_until("a1 at version 2", Duration::from_secs(60), || async {
        common::try_doc(&s.redis, "r", "a1").await.filter(|d| d["version"] == 2)
    })
    .await;

    let out = std::process::Command::new(sluice_testkit::service_binary("sluice"))
        .args(["dlq", "replay", "--topic", &format!("{}.dlq", s.topic), "--brokers", &s.broker.bootstrap()])
        .output()
        .expect("run sluice dlq replay");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("2 dead letters re-driven") && stdout.contains(&format!("{}.retry", s.topic)), "{stdout}");
    wait_until("a2 applied from the retry topic", Duration::from_secs(60), || async {
        common::try_doc(&s.redis, "r", "a2").await.filter(|d| d["title"] == "two")
    })
    .await;
    s.wait_caught_up("r").await;
    let a1 = common::doc(&s.redis, "r", "a1").await;
    assert_eq!((a1["version"].as_i64(), a1["title"].as_str()), (Some(2), Some("one, later")), "a1 was rolled back");
}

/// A store whose positions are beyond the end of the topic (the topic was
/// recreated, the broker lost its data) is not resumed from: that would
/// skip every new record up to the stored position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_beyond_the_end_of_the_topic_are_refused_not_skipped_to() {
    let s = Setup::start().await;
    for i in 0..5 {
        s.article(&format!("b{i}"), 1, "t").await;
    }
    let mut first = s.projector("beyond").await;
    assert!(first.terminate().success());
    let mut conn = s.redis.connection().await;
    let positions = sluice_store_redis::keys::positions("beyond", &s.topic);
    for partition in 0..PARTITIONS {
        let _: () =
            redis::cmd("HSET").arg(&positions).arg(partition).arg("1000:0").query_async(&mut conn).await.expect("HSET");
    }
    s.article("new", 1, "after the reset").await;
    let second = ServiceHandle::start(
        "projector-redis",
        &[
            ("SLUICE_AGGREGATES", "article".into()),
            ("SLUICE_REDIS_URL", s.redis.url()),
            ("SLUICE_BROKERS", s.broker.bootstrap()),
            ("SLUICE_REGISTRY_URL", s.registry.base_url()),
            ("SLUICE_TOPIC_PREFIX", s.prefix.clone()),
            ("SLUICE_PROJECTION", "beyond".into()),
            ("SLUICE_SCHEMAS_DIR", common::schemas_dir()),
        ],
    )
    .await;
    wait_until("the projector to refuse the positions", Duration::from_secs(60), || {
        let log = second.log_tail();
        async move { log.contains("is beyond the end of the partition").then_some(()) }
    })
    .await;
    assert!(!second.is_ready().await, "a projector that cannot resume said it was ready");
    assert!(common::try_doc(&s.redis, "beyond", "new").await.is_none());
}

/// A broker that goes away and comes back (kill -9, restart on the same
/// data) neither ends the projector nor leaves it stuck: records written
/// after it returns are projected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_goes_on_after_the_broker_restarts() {
    let mut s = Setup::start().await;
    s.article("before", 1, "t").await;
    let mut projector = s.projector("b").await;
    wait_until("the first article", Duration::from_secs(60), || async { (s.count("b").await == 1).then_some(()) })
        .await;

    s.broker.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.broker.restart();
    for i in 0..6 {
        s.article(&format!("after{i}"), 1, "t").await;
    }
    for _ in 0..600 {
        if s.count("b").await == 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let consumer = sluice_kafka::metadata_client(&s.broker.bootstrap()).expect("client");
    let marks = sluice_kafka::watermarks(&consumer, &s.topic);
    assert_eq!(s.count("b").await, 7, "watermarks {marks:?}; log:\n{}", projector.log_text());
    assert!(projector.is_ready().await, "ready again after the outage; log:\n{}", projector.log_tail());
    projector.terminate();
}
