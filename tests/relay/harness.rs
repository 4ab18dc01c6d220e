//! A database with an outbox, a broker, and relays to start and kill.
#![allow(dead_code)]

use sluice_core::headers;
use sluice_kafka::rdkafka::Message;
use sluice_kafka::rdkafka::consumer::Consumer;
use sluice_kafka::rdkafka::message::Headers;
use sluice_testkit::{ServiceHandle, TestBroker, TestPostgres, random_name};
use std::collections::HashMap;
use std::time::Duration;

pub struct RelayStack {
    pub pg: TestPostgres,
    pub broker: TestBroker,
    pub db: String,
    pub db_name: String,
    pub prefix: String,
    pub slot: String,
    pub publication: String,
}

/// One record as read back from the state topic.
#[derive(Debug, Clone)]
pub struct Seen {
    pub key: String,
    pub version: i64,
    pub partition: i32,
    pub offset: i64,
}

impl RelayStack {
    pub async fn start() -> RelayStack {
        let pg = TestPostgres::start();
        let db = pg.create_database().await;
        let db_name = db.rsplit('/').next().expect("db name").to_string();
        let client = pg.connect(&db_name).await;
        sluice_outbox::ensure_table(&client, &sluice_outbox::OutboxTable::parse("cms.outbox").expect("name"))
            .await
            .expect("outbox table");
        RelayStack {
            pg,
            broker: TestBroker::start(),
            db,
            db_name,
            prefix: random_name("relay"),
            slot: random_name("slot"),
            publication: random_name("pub"),
        }
    }

    pub async fn relay(&self, extra: &[(&str, String)]) -> ServiceHandle {
        let mut env = vec![
            ("SLUICE_DATABASE_URL", self.db.clone()),
            ("SLUICE_BROKERS", self.broker.bootstrap()),
            ("SLUICE_TOPIC_PREFIX", self.prefix.clone()),
            ("SLUICE_SLOT", self.slot.clone()),
            ("SLUICE_PUBLICATION", self.publication.clone()),
        ];
        env.extend_from_slice(extra);
        ServiceHandle::start("outbox-relay", &env).await
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        self.pg.connect(&self.db_name).await
    }

    /// Partition count of `topic`.
    pub fn broker_metadata(&self, topic: &str) -> i32 {
        let consumer = sluice_kafka::metadata_client(&self.broker.bootstrap()).expect("client");
        sluice_kafka::partition_count(&consumer, topic).expect("partitions")
    }

    pub fn topic(&self) -> String {
        format!("{}.thing.state", self.prefix)
    }

    /// Writes `versions` of aggregate `key`, one transaction per version, in order.
    pub async fn write(client: &tokio_postgres::Client, key: &str, versions: std::ops::RangeInclusive<i64>) {
        for v in versions {
            client
                .execute(
                    "insert into cms.outbox (id, aggregatetype, aggregateid, type, payload, aggregate_version)
                     values (gen_random_uuid(), 'thing', $1, 'ThingChanged', $2, $3)",
                    &[&key, &format!("{key}:{v}").into_bytes(), &v],
                )
                .await
                .expect("outbox insert");
        }
    }

    /// Reads the state topic from the start until `expected` distinct
    /// (key, version) pairs are seen; returns every record in order.
    pub async fn read_until(&self, expected: usize, deadline: Duration) -> Vec<Seen> {
        self.read(expected, deadline, true).await
    }

    /// Reads the state topic from the start until `expected` records (not
    /// necessarily distinct) are seen.
    pub async fn read_all(&self, expected: usize, deadline: Duration) -> Vec<Seen> {
        self.read(expected, deadline, false).await
    }

    async fn read(&self, expected: usize, deadline: Duration, distinct_only: bool) -> Vec<Seen> {
        let topic = self.topic();
        let consumer = sluice_kafka::consumer(&self.broker.bootstrap(), &random_name("reader")).expect("consumer");
        sluice_testkit::wait_until("the state topic", deadline, || {
            let ok = sluice_kafka::partition_count(&consumer, &topic).is_ok_and(|n| n > 0);
            async move { ok.then_some(()) }
        })
        .await;
        consumer.subscribe(&[&topic]).expect("subscribe");
        let mut seen = Vec::new();
        let mut distinct = std::collections::HashSet::new();
        let start = tokio::time::Instant::now();
        let count = |seen: &Vec<Seen>, distinct: &std::collections::HashSet<(String, i64)>| {
            if distinct_only { distinct.len() } else { seen.len() }
        };
        while count(&seen, &distinct) < expected {
            assert!(
                start.elapsed() < deadline,
                "only {} of {expected} records after {deadline:?}",
                count(&seen, &distinct)
            );
            let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await else { continue };
            let key = String::from_utf8_lossy(m.key().expect("key")).into_owned();
            let version = m
                .headers()
                .and_then(|h| h.iter().find(|x| x.key == headers::AGGREGATE_VERSION).and_then(|x| x.value))
                .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
                .expect("version header");
            assert_eq!(m.payload(), Some(format!("{key}:{version}").as_bytes()), "payload forwarded unchanged");
            distinct.insert((key.clone(), version));
            seen.push(Seen { key, version, partition: m.partition(), offset: m.offset() });
        }
        seen
    }
}

/// Per key, after dropping records a consumer would skip (version not newer
/// than what it has), the versions must be exactly 1..=n: nothing lost and
/// nothing out of order.
pub fn assert_per_key_order(seen: &[Seen], expected: &HashMap<String, i64>) {
    let mut applied: HashMap<&str, i64> = HashMap::new();
    let mut partition_of: HashMap<&str, i32> = HashMap::new();
    for s in seen {
        assert_eq!(*partition_of.entry(&s.key).or_insert(s.partition), s.partition, "{} moved partition", s.key);
        let current = applied.entry(&s.key).or_insert(0);
        if s.version <= *current {
            continue; // a duplicate from an unconfirmed transaction
        }
        assert_eq!(s.version, *current + 1, "{} jumped from version {} to {}", s.key, current, s.version);
        *current = s.version;
    }
    for (key, n) in expected {
        assert_eq!(applied.get(key.as_str()).copied(), Some(*n), "{key} is missing versions");
    }
}
