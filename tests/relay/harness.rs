//! A database with an outbox, a broker, and relays to start and kill. The
//! relay runs as the least-privilege role of `deploy/sql/roles.sql`; the
//! outbox and the publication are made by the command API's role, as in a
//! production set-up.
#![allow(dead_code)]

use sluice_core::headers;
use sluice_kafka::rdkafka::Message;
use sluice_kafka::rdkafka::consumer::Consumer;
use sluice_kafka::rdkafka::message::Headers;
use sluice_testkit::{ServiceHandle, TestBroker, TestPostgres, random_name};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

pub const DEADLINE: Duration = Duration::from_secs(240);

pub struct RelayStack {
    pub pg: TestPostgres,
    pub broker: TestBroker,
    /// The administrator's URL of the database.
    pub db: String,
    pub db_name: String,
    /// The relay's (least-privilege) URL of the database.
    pub relay_db: String,
    pub prefix: String,
    pub slot: String,
    pub publication: String,
}

/// One record as read back from a topic.
#[derive(Debug, Clone)]
pub struct Seen {
    pub key: String,
    pub version: i64,
    pub partition: i32,
    pub offset: i64,
}

/// The role the relay runs as: `roles.sql`'s, unless a test run overrides it
/// (TESTKIT_RELAY_ROLE=postgres, to try an older relay that needed more).
fn relay_role() -> String {
    std::env::var("TESTKIT_RELAY_ROLE").unwrap_or_else(|_| "sluice_relay".into())
}

impl RelayStack {
    pub async fn start() -> RelayStack {
        let pg = TestPostgres::start();
        let broker = TestBroker::start();
        let mut stack = RelayStack {
            pg,
            broker,
            db: String::new(),
            db_name: String::new(),
            relay_db: String::new(),
            prefix: String::new(),
            slot: String::new(),
            publication: String::new(),
        };
        stack.next_database().await;
        stack
    }

    /// Switches to a fresh database (same server and broker) with roles, the
    /// outbox and the publication, and fresh topic, slot and publication names.
    pub async fn next_database(&mut self) {
        self.db = self.pg.create_database().await;
        self.db_name = self.db.rsplit('/').next().expect("db name").to_string();
        self.prefix = random_name("relay");
        self.slot = random_name("slot");
        self.publication = random_name("pub");
        let admin = self.client().await;
        let roles = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/sql/roles.sql"))
            .expect("deploy/sql/roles.sql");
        admin.batch_execute(&roles).await.expect("roles.sql");
        admin.batch_execute("set role sluice_command").await.expect("become sluice_command");
        sluice_outbox::ensure_table(&admin, &sluice_outbox::OutboxTable::parse("cms.outbox").expect("name"))
            .await
            .expect("outbox table");
        // As roles.sql says: the administrator publishes the outbox once it exists.
        admin
            .batch_execute(&format!(
                "reset role; create publication {} for table cms.outbox with (publish = 'insert')",
                self.publication
            ))
            .await
            .expect("publication");
        self.relay_db = format!("postgres://{}@127.0.0.1:{}/{}", relay_role(), self.pg.port, self.db_name);
    }

    pub async fn relay(&self, extra: &[(&str, String)]) -> ServiceHandle {
        let mut env = vec![
            ("SLUICE_DATABASE_URL", self.relay_db.clone()),
            ("SLUICE_BROKERS", self.broker.bootstrap()),
            ("SLUICE_TOPIC_PREFIX", self.prefix.clone()),
            ("SLUICE_SLOT", self.slot.clone()),
            ("SLUICE_PUBLICATION", self.publication.clone()),
        ];
        env.extend_from_slice(extra);
        ServiceHandle::start("outbox-relay", &env).await
    }

    /// An administrator's connection.
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
    pub async fn write<C: tokio_postgres::GenericClient>(
        client: &C,
        key: &str,
        versions: std::ops::RangeInclusive<i64>,
    ) {
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

    /// Writes `keys` aggregates `k0..` with versions 1..=`versions` in one statement.
    pub async fn write_bulk(client: &tokio_postgres::Client, keys: i64, versions: i64) {
        client
            .execute(
                "insert into cms.outbox (id, aggregatetype, aggregateid, type, payload, aggregate_version)
                 select gen_random_uuid(), 'thing', 'k' || k, 'ThingChanged', convert_to('k' || k || ':' || v, 'UTF8'), v
                 from generate_series(1, $2::bigint) v, generate_series(0, $1::bigint - 1) k
                 order by v, k",
                &[&keys, &versions],
            )
            .await
            .expect("bulk outbox insert");
    }

    /// Drops the slot, as an operator would after losing it. The relay has
    /// exited, but PostgreSQL may not have seen its WAL sender go yet: the
    /// slot stays active (and cannot be dropped) until it has.
    pub async fn drop_slot(&self) {
        let client = self.client().await;
        sluice_testkit::wait_until("the exited relay's slot to be released", DEADLINE, || {
            let (client, slot) = (&client, &self.slot);
            async move {
                let active: bool = client
                    .query_one("select active from pg_replication_slots where slot_name = $1", &[slot])
                    .await
                    .ok()?
                    .get(0);
                (!active).then_some(())
            }
        })
        .await;
        client.execute("select pg_drop_replication_slot($1)", &[&self.slot]).await.expect("drop the slot");
    }

    pub async fn outbox_count(&self) -> i64 {
        self.client().await.query_one("select count(*) from cms.outbox", &[]).await.expect("count").get(0)
    }

    /// Waits until the outbox holds `n` rows (every other row relayed and deleted).
    pub async fn wait_outbox_count(&self, n: i64) {
        let client = self.client().await;
        sluice_testkit::wait_until(&format!("the outbox to hold {n} rows"), DEADLINE, || {
            let client = &client;
            async move {
                let count: i64 = client.query_one("select count(*) from cms.outbox", &[]).await.ok()?.get(0);
                (count == n).then_some(())
            }
        })
        .await;
    }

    /// Waits until the slot's confirmed position reaches the server's current
    /// WAL position as of now: everything committed so far was handled.
    pub async fn wait_slot_confirmed_now(&self, what: &str) {
        let client = self.client().await;
        let now: String = client.query_one("select pg_current_wal_lsn()::text", &[]).await.expect("lsn").get(0);
        sluice_testkit::wait_until(what, DEADLINE, || {
            let (client, slot, now) = (&client, &self.slot, &now);
            async move {
                let done: bool = client
                    .query_one(
                        "select confirmed_flush_lsn >= $2::text::pg_lsn from pg_replication_slots where slot_name = $1",
                        &[slot, now],
                    )
                    .await
                    .ok()?
                    .get(0);
                done.then_some(())
            }
        })
        .await;
    }

    /// Waits until the slot retains less than 1 MB of WAL (its confirmed
    /// position caught up with the server); returns the bytes retained.
    pub async fn wait_slot_caught_up(&self, what: &str) -> f64 {
        let client = self.client().await;
        sluice_testkit::wait_until(what, DEADLINE, || {
            let (client, slot) = (&client, &self.slot);
            async move {
                let retained: f64 = client
                    .query_one(
                        "select pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::float8
                         from pg_replication_slots where slot_name = $1",
                        &[slot],
                    )
                    .await
                    .ok()?
                    .get(0);
                (retained < 1e6).then_some(retained)
            }
        })
        .await
    }

    /// Reads the state topic from the start until `expected` distinct
    /// (key, version) pairs are seen; returns every record in order.
    pub async fn read_until(&self, expected: usize, deadline: Duration) -> Vec<Seen> {
        self.read(&self.topic(), expected, deadline, true).await
    }

    /// Reads the state topic from the start until `expected` records (not
    /// necessarily distinct) are seen.
    pub async fn read_all(&self, expected: usize, deadline: Duration) -> Vec<Seen> {
        self.read(&self.topic(), expected, deadline, false).await
    }

    /// Records in the state topic (0 before it exists).
    pub fn topic_total(&self) -> i64 {
        let consumer = sluice_kafka::metadata_client(&self.broker.bootstrap()).expect("client");
        sluice_kafka::watermarks(&consumer, &self.topic()).map_or(0, |w| w.iter().map(|w| w.high).sum())
    }

    /// Waits until the state topic holds more than `than` records.
    pub async fn wait_topic_beyond(&self, than: i64) {
        sluice_testkit::wait_until(&format!("more than {than} records in the topic"), DEADLINE, || {
            let total = self.topic_total();
            async move { (total > than).then_some(total) }
        })
        .await;
    }

    /// Every record of the state topic up to its current end (offsets may
    /// have gaps: tansu compacts when it starts).
    pub async fn read_to_end(&self) -> Vec<Seen> {
        self.broker.read_to_end(&self.topic()).await.iter().map(seen_record).collect()
    }

    async fn read(&self, topic: &str, expected: usize, deadline: Duration, distinct_only: bool) -> Vec<Seen> {
        let consumer = sluice_kafka::consumer(&self.broker.bootstrap(), &random_name("reader")).expect("consumer");
        sluice_testkit::wait_until("the state topic", deadline, || {
            let ok = sluice_kafka::partition_count(&consumer, topic).is_ok_and(|n| n > 0);
            async move { ok.then_some(()) }
        })
        .await;
        consumer.subscribe(&[topic]).expect("subscribe");
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
            let record = seen_record(&m);
            distinct.insert((record.key.clone(), record.version));
            seen.push(record);
        }
        seen
    }
}

fn seen_record<M: Message>(m: &M) -> Seen {
    let key = String::from_utf8_lossy(m.key().expect("key")).into_owned();
    let version = m
        .headers()
        .and_then(|h| h.iter().find(|x| x.key == headers::AGGREGATE_VERSION).and_then(|x| x.value))
        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
        .expect("version header");
    assert_eq!(m.payload(), Some(format!("{key}:{version}").as_bytes()), "payload forwarded unchanged");
    Seen { key, version, partition: m.partition(), offset: m.offset() }
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

/// What compaction would keep must be each key's newest version: the last
/// record of every key (in offset order) carries its highest version. Needs
/// every record of the topic, read after the relays went quiet.
pub fn assert_last_record_is_newest(seen: &[Seen]) {
    let mut last: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    let mut highest: HashMap<&str, i64> = HashMap::new();
    for s in seen {
        let entry = last.entry(&s.key).or_insert((s.offset, s.version));
        if s.offset >= entry.0 {
            *entry = (s.offset, s.version);
        }
        let h = highest.entry(&s.key).or_insert(s.version);
        *h = (*h).max(s.version);
    }
    for (key, (offset, version)) in last {
        assert_eq!(version, highest[key], "{key}'s last record (offset {offset}) is version {version}, not its newest");
    }
}

pub fn expected(keys: &[String], versions: i64) -> HashMap<String, i64> {
    keys.iter().map(|k| (k.clone(), versions)).collect()
}

/// A counter or gauge from a service's `/metrics`, summed over labels.
pub async fn metric(service: &ServiceHandle, name: &str) -> f64 {
    let body = reqwest::get(format!("{}/metrics", service.base_url()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
